import Foundation
import TandemMQTT

#if canImport(Glibc)
    import Glibc
#endif

/// What makes an escalation durable the moment a worker acknowledges it, so that the sample store can take escalations
/// in batches, one transaction each, off the MQTT network thread.
///
/// libmosquitto acknowledges a QoS 1 message once the receiving callback returns. The network thread therefore appends
/// each accepted escalation (its topic, payload and arrival time) to this journal with one `write` — in the page
/// cache, so it survives the worker being killed, as a SQLite commit with `synchronous = NORMAL` does — and the
/// batching thread stores a whole batch in one transaction and then releases its records. A journal is a directory of
/// segments (`segment-{n}.log`, a new one every ``segmentBytes``); a segment is deleted once it is full and every
/// record in it was stored.
///
/// A worker holds an exclusive `flock` on `lock` in its journal directory while it runs. Whatever segments are left
/// in a directory whose lock is free — a worker that was killed — are read back (``orphans(in:)``,
/// ``read(segment:)``) and stored by the next worker that looks (at start, and with each look for unanswered
/// escalations), then deleted; a record cut short by the kill fails its CRC and is skipped.
///
/// Record: u32 body length, u32 CRC-32 of the body, body = float64 arrival time (Unix seconds), u16 topic length,
/// the topic (UTF-8), the payload; little-endian.
final class EscalationJournal: @unchecked Sendable {
    /// One journaled escalation message.
    struct Entry: Sendable, Equatable {
        var topic: String
        var payload: [UInt8]
        var receivedAt: Double
    }

    /// The directory of this worker's segments.
    let directory: URL
    /// Bytes after which a new segment is started.
    let segmentBytes: Int
    private let lock = NSLock()
    private var lockDescriptor: Int32 = -1
    private var segment = (number: 0, descriptor: Int32(-1), bytes: 0)
    /// Records appended and not yet released, by segment.
    private var outstanding: [Int: Int] = [:]
    private var scratch = [UInt8]()

    /// Opens (creating it, 0700) the journal directory `directory`, takes its lock and starts a segment numbered after
    /// any left there, which ``leftovers`` lists for the worker to store.
    ///
    /// - Throws: `CloudWorkerError` when the directory cannot be made, or another running worker holds its lock.
    init(directory: URL, segmentBytes: Int = 8 << 20, lockWaitSeconds: Double = 30) throws {
        self.directory = directory
        self.segmentBytes = max(4096, segmentBytes)
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let descriptor = open(directory.appendingPathComponent("lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CloudWorkerError(.invalidSetting, "journal \(directory.path): cannot open its lock: errno \(errno)")
        }
        // Another worker may hold it for a moment while it stores what this worker id left after a kill.
        var waited = 0.0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard waited < lockWaitSeconds else {
                Glibc.close(descriptor)
                throw CloudWorkerError(
                    .invalidSetting,
                    "journal \(directory.path) stayed locked for \(Int(lockWaitSeconds)) s: another running worker has the "
                        + "same id (worker ids must be unique)")
            }
            usleep(100_000)
            waited += 0.1
        }
        lockDescriptor = descriptor
        leftovers = Self.segments(in: directory)
        try lock.withLock { try openSegment(number: (leftovers.map(\.number).max() ?? 0) + 1) }
    }

    deinit {
        if segment.descriptor >= 0 { Glibc.close(segment.descriptor) }
        if lockDescriptor >= 0 { Glibc.close(lockDescriptor) }
    }

    /// Segments this journal's directory held when it was opened (an earlier run of this worker id).
    let leftovers: [(number: Int, url: URL)]

    /// Appends one escalation message.
    ///
    /// - Returns: The segment it went to, for ``release(_:)``.
    /// - Throws: `CloudWorkerError` when the write fails (a full disk); nothing is appended then.
    func append(topic: String, payload: [UInt8], receivedAt: Double) throws -> Int {
        try lock.withLock {
            guard segment.descriptor >= 0 || segment.bytes != .max else {
                throw CloudWorkerError(.invalidSetting, "journal \(directory.path) is closed")
            }
            if segment.descriptor < 0 { try openSegment(number: segment.number + 1) }
            if segment.bytes >= segmentBytes {
                let full = segment.number
                if segment.descriptor >= 0 { Glibc.close(segment.descriptor) }
                segment.descriptor = -1
                if outstanding[full, default: 0] == 0 { removeSegment(full) }
                try openSegment(number: full + 1)
            }
            let topicBytes = topic.utf8.count
            let body = 8 + 2 + topicBytes + payload.count
            scratch.removeAll(keepingCapacity: true)
            Self.put(UInt32(body), into: &scratch)
            Self.put(UInt32(0), into: &scratch)
            Self.put(receivedAt.bitPattern, into: &scratch)
            Self.put(UInt16(topicBytes), into: &scratch)
            scratch.append(contentsOf: topic.utf8)
            scratch.append(contentsOf: payload)
            let crc = scratch.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[8...])) }
            withUnsafeBytes(of: crc.littleEndian) { scratch.replaceSubrange(4..<8, with: $0) }
            try scratch.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(segment.descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else {
                        let failure = errno
                        // Reading a segment stops at a damaged record, so nothing may follow a partial one: cut it
                        // off, or go on in a new segment.
                        if offset > 0 && ftruncate(segment.descriptor, off_t(segment.bytes)) != 0 {
                            Glibc.close(segment.descriptor)
                            segment.descriptor = -1
                        }
                        throw CloudWorkerError(
                            .invalidSetting, "journal \(directory.path): write failed: errno \(failure)")
                    }
                    offset += written
                }
            }
            segment.bytes += scratch.count
            outstanding[segment.number, default: 0] += 1
            return segment.number
        }
    }

    /// Records in these segments (one entry per record) are in the store now; a full segment with nothing left
    /// outstanding is deleted.
    func release(_ segments: [Int]) {
        lock.withLock {
            for number in segments {
                let left = outstanding[number, default: 1] - 1
                outstanding[number] = left > 0 ? left : nil
                if left <= 0 && number != segment.number { removeSegment(number) }
            }
        }
    }

    /// Records appended and not yet released.
    var unreleased: Int { lock.withLock { outstanding.values.reduce(0, +) } }

    /// At a stop: closes the current segment — deleting it when every record is stored, so the next start has nothing
    /// to read back — and lets the journal's lock go (what is left is then another worker's to store). Appending
    /// afterwards fails.
    func close() {
        lock.withLock {
            if segment.descriptor >= 0 {
                Glibc.close(segment.descriptor)
                segment.descriptor = -1
                if outstanding[segment.number, default: 0] == 0 { removeSegment(segment.number) }
                segment.bytes = .max
            }
            if lockDescriptor >= 0 {
                Glibc.close(lockDescriptor)
                lockDescriptor = -1
            }
        }
    }

    private func openSegment(number: Int) throws {
        let url = Self.url(of: number, in: directory)
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CloudWorkerError(.invalidSetting, "journal \(url.path): cannot create: errno \(errno)")
        }
        segment = (number, descriptor, 0)
    }

    private func removeSegment(_ number: Int) {
        unlink(Self.url(of: number, in: directory).path)
    }

    static func url(of number: Int, in directory: URL) -> URL {
        directory.appendingPathComponent("segment-\(number).log")
    }

    /// The segments in `directory`, oldest first.
    static func segments(in directory: URL) -> [(number: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { name -> (Int, URL)? in
            guard name.hasPrefix("segment-"), name.hasSuffix(".log"),
                let number = Int(name.dropFirst("segment-".count).dropLast(".log".count))
            else { return nil }
            return (number, directory.appendingPathComponent(name))
        }.sorted { $0.0 < $1.0 }
    }

    /// Journal directories under `parent` other than `own` whose lock no running worker holds, with their segments:
    /// what killed workers left. Taking the lock here keeps two workers from reading one journal at once; the
    /// caller stores the entries and calls ``finish(orphan:)``.
    static func orphans(in parent: URL, except own: URL) -> [Orphan] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        return names.sorted().compactMap { name in
            let directory = parent.appendingPathComponent(name)
            guard directory.standardizedFileURL != own.standardizedFileURL else { return nil }
            let segments = segments(in: directory)
            guard !segments.isEmpty else { return nil }
            let descriptor = open(directory.appendingPathComponent("lock").path, O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else { return nil }
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                Glibc.close(descriptor)
                return nil
            }
            return Orphan(directory: directory, segments: segments, lockDescriptor: descriptor)
        }
    }

    /// A dead worker's journal, locked by the caller until ``EscalationJournal/finish(orphan:removing:)``.
    struct Orphan {
        var directory: URL
        var segments: [(number: Int, url: URL)]
        var lockDescriptor: Int32
    }

    /// Deletes the given segments of an orphan (those whose entries are stored) and lets its lock go.
    static func finish(orphan: Orphan, removing urls: [URL]) {
        for url in urls { unlink(url.path) }
        Glibc.close(orphan.lockDescriptor)
    }

    /// The records of one segment, and how many records could not be read (cut short or damaged: the rest of the
    /// segment after one is skipped, as its framing cannot be trusted).
    static func read(segment url: URL) -> (entries: [Entry], damaged: Int) {
        guard let data = FileManager.default.contents(atPath: url.path) else { return ([], 0) }
        let bytes = [UInt8](data)
        var entries = [Entry]()
        var offset = 0
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        while offset < bytes.count {
            guard bytes.count - offset >= 8 else { return (entries, 1) }
            let length = Int(u32(offset))
            let crc = u32(offset + 4)
            let start = offset + 8
            guard length >= 10, length <= bytes.count - start else { return (entries, 1) }
            let body = bytes[start..<(start + length)]
            guard body.withUnsafeBytes({ CRC32.checksum($0) }) == crc else { return (entries, 1) }
            var time: UInt64 = 0
            for k in 0..<8 { time |= UInt64(body[start + k]) << (8 * UInt64(k)) }
            let topicLength = Int(body[start + 8]) | Int(body[start + 9]) << 8
            guard topicLength <= length - 10 else { return (entries, 1) }
            let topic = String(decoding: body[(start + 10)..<(start + 10 + topicLength)], as: UTF8.self)
            entries.append(
                Entry(
                    topic: topic, payload: Array(body[(start + 10 + topicLength)...]),
                    receivedAt: Double(bitPattern: time)))
            offset = start + length
        }
        return (entries, 0)
    }

    private static func put<T: FixedWidthInteger>(_ value: T, into out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }
}
