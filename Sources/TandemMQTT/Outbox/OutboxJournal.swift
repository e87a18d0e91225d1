#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// The outbox's append-only journal: numbered segment files of framed records (see ``OutboxRecord``).
///
/// Message records and removal records (written on PUBACK or when a message is dropped) go to the active
/// segment. A segment is deleted once every message in it has been removed and every older segment is
/// gone; deleting only from the head keeps each removal record alive as long as the message it removes.
///
/// Not thread-safe: ``DurableOutbox`` uses it only under its lock.
package final class OutboxJournal {
    struct Segment {
        let firstSequence: UInt64
        let path: String
        var bytes: Int
        var liveMessages: Int
    }

    /// Where a message record sits: its segment file, offset and size.
    package struct RecordLocation: Sendable {
        package let path: String
        package let offset: Int
        package let size: Int
    }

    /// A message recovered from disk that was never removed: where it is and its topic (for messages),
    /// not its payload, which stays on disk until it is sent.
    package struct PendingMessage {
        package let sequence: UInt64
        package let location: RecordLocation
        package let topic: String
    }

    static let fileExtension = "journal"

    let directory: String
    let segmentBytes: Int
    private(set) var segments: [Segment] = []
    private var activeDescriptor: Int32 = -1
    private var removalBuffer: [UInt8] = []
    /// Whether bytes were written since the last `sync()`.
    private(set) var dirty = false
    /// The sequence number the next message gets.
    package private(set) var nextSequence: UInt64 = 1
    /// Messages recovered at open time, oldest first.
    package private(set) var recovered: [PendingMessage] = []
    /// How many torn or corrupt tails were cut off at open time.
    package private(set) var truncatedTails = 0

    /// Opens (creating if needed) the journal in `directory` and recovers what it holds.
    ///
    /// A torn or corrupt record ends its segment: the file is cut there and `warn` is told. Never fatal.
    /// - Throws: ``MQTTError`` with `.journalIO` when the directory or a file cannot be created or read.
    package init(directory: String, segmentBytes: Int, warn: (String) -> Void) throws {
        self.directory = directory
        self.segmentBytes = segmentBytes
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw MQTTError(.journalIO, "cannot create outbox directory \(directory): \(error)")
        }
        try recover(warn: warn)
        if segments.isEmpty {
            try startSegment(firstSequence: nextSequence)
        } else {
            try openActive()
        }
        compact()
    }

    deinit {
        if activeDescriptor >= 0 { close(activeDescriptor) }
    }

    /// Total bytes on disk, including removal records not yet written.
    package var totalBytes: Int {
        segments.reduce(0) { $0 + $1.bytes } + removalBuffer.count
    }

    // MARK: Recovery

    private func recover(warn: (String) -> Void) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MQTTError(.journalIO, "cannot list outbox directory \(directory): \(error)")
        }
        let numbered = names.compactMap { name -> (UInt64, String)? in
            guard name.hasSuffix(".\(Self.fileExtension)"),
                let number = UInt64(name.dropLast(Self.fileExtension.count + 1))
            else { return nil }
            return (number, name)
        }.sorted { $0.0 < $1.0 }

        var messages: [UInt64: (location: RecordLocation, topic: String, segment: Int)] = [:]
        var removed = Set<UInt64>()
        var highest: UInt64 = 0
        for (first, name) in numbered {
            let path = "\(directory)/\(name)"
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw MQTTError(.journalIO, "cannot read outbox segment \(path): \(error)")
            }
            let segmentIndex = segments.count
            var validLength = 0
            var failure: OutboxRecord.ReadFailure?
            data.withUnsafeBytes { bytes in
                while validLength < bytes.count {
                    do throws(OutboxRecord.ReadFailure) {
                        let (record, size) = try OutboxRecord.read(bytes, at: validLength)
                        switch record {
                        case .message(let sequence, let message):
                            let location = RecordLocation(path: path, offset: validLength, size: size)
                            messages[sequence] = (location, message.topic, segmentIndex)
                            highest = max(highest, sequence)
                        case .removal(let sequence):
                            removed.insert(sequence)
                        }
                        validLength += size
                    } catch {
                        failure = error
                        return
                    }
                }
            }
            if let failure {
                warn(
                    "outbox segment \(path): \(failure) record at byte \(validLength) of \(data.count); "
                        + "cutting off the damaged tail (\(data.count - validLength) bytes)")
                guard truncate(path, off_t(validLength)) == 0 else {
                    throw MQTTError(.journalIO, "cannot truncate outbox segment \(path): errno \(errno)")
                }
                truncatedTails += 1
            }
            segments.append(Segment(firstSequence: first, path: path, bytes: validLength, liveMessages: 0))
            highest = max(highest, first > 0 ? first - 1 : 0)
        }
        for (sequence, entry) in messages where !removed.contains(sequence) {
            recovered.append(PendingMessage(sequence: sequence, location: entry.location, topic: entry.topic))
            segments[entry.segment].liveMessages += 1
        }
        recovered.sort { $0.sequence < $1.sequence }
        nextSequence = highest + 1
    }

    // MARK: Writing

    /// Appends framed message records (of `sizes` bytes each, back to back in `records`), already numbered
    /// from ``nextSequence``, in one write.
    ///
    /// The bytes reach the kernel before this returns, so a killed process loses nothing; `sync()` makes
    /// them survive a power loss.
    /// - Returns: Where each record now is, for ``readMessage(at:)``.
    package func appendMessages(_ records: [UInt8], sizes: [Int]) throws -> [RecordLocation] {
        if segments[segments.count - 1].bytes >= segmentBytes {
            try flushRemovals()
            try startSegment(firstSequence: nextSequence)
            compact()
        }
        try flushRemovals()
        let segment = segments[segments.count - 1]
        try writeAll(records)
        var offset = segment.bytes
        let locations = sizes.map { size in
            defer { offset += size }
            return RecordLocation(path: segment.path, offset: offset, size: size)
        }
        segments[segments.count - 1].bytes += records.count
        segments[segments.count - 1].liveMessages += sizes.count
        nextSequence += UInt64(sizes.count)
        return locations
    }

    /// Reads back the message record at `location` (appended and not yet removed, so its segment exists),
    /// through `reader`, which keeps the last segment open between calls.
    ///
    /// Needs no journal lock: records are never rewritten, and a segment is deleted only once all its
    /// messages have been removed (a descriptor kept on a deleted segment is closed at the next call).
    /// - Throws: ``MQTTError`` with `.journalIO` if the file cannot be read or the record is damaged.
    package static func readMessage(at location: RecordLocation, reader: inout SegmentReader) throws -> MQTTMessage {
        let descriptor = try reader.descriptor(for: location.path)
        var bytes = [UInt8](repeating: 0, count: location.size)
        var done = 0
        while done < location.size {
            let n = bytes.withUnsafeMutableBytes {
                pread(descriptor, $0.baseAddress! + done, location.size - done, off_t(location.offset + done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw MQTTError(
                    .journalIO, "cannot read \(location.size) bytes at \(location.offset) of \(location.path)")
            }
            done += n
        }
        let decoded = bytes.withUnsafeBytes { raw -> Result<OutboxRecord.Decoded, OutboxRecord.ReadFailure> in
            do throws(OutboxRecord.ReadFailure) {
                return .success(try OutboxRecord.read(raw, at: 0).0)
            } catch {
                return .failure(error)
            }
        }
        switch decoded {
        case .success(.message(_, let message)):
            return message
        case .success(.removal):
            throw MQTTError(.journalIO, "no message record at \(location.offset) of \(location.path)")
        case .failure(let failure):
            throw MQTTError(.journalIO, "\(failure) record at \(location.offset) of \(location.path)")
        }
    }

    /// Records that message `sequence` left the outbox. Buffered: losing it in a crash only means a
    /// duplicate delivery after restart.
    package func remove(sequence: UInt64) throws {
        removalBuffer.append(contentsOf: OutboxRecord.encodeRemoval(sequence: sequence))
        if let index = segmentIndex(containing: sequence) {
            segments[index].liveMessages -= 1
        }
        if removalBuffer.count >= 64 * 1024 { try flushRemovals() }
        compact()
    }

    /// Writes buffered removal records to the active segment.
    func flushRemovals() throws {
        guard !removalBuffer.isEmpty else { return }
        let buffer = removalBuffer
        removalBuffer.removeAll(keepingCapacity: true)
        try writeAll(buffer)
        segments[segments.count - 1].bytes += buffer.count
    }

    /// Forces written bytes to stable storage.
    package func sync() throws {
        try flushRemovals()
        guard dirty else { return }
        guard fsync(activeDescriptor) == 0 else {
            throw MQTTError(.journalIO, "fsync of \(segments[segments.count - 1].path) failed: errno \(errno)")
        }
        dirty = false
    }

    /// Writes buffered removals and returns a duplicate of the active segment's descriptor for the caller to
    /// `fsync` and close outside the outbox's locks, or `nil` when nothing was written since the last sync.
    func descriptorToSync() throws -> Int32? {
        try flushRemovals()
        guard dirty else { return nil }
        let duplicate = dup(activeDescriptor)
        guard duplicate >= 0 else {
            throw MQTTError(.journalIO, "dup of \(segments[segments.count - 1].path) failed: errno \(errno)")
        }
        dirty = false
        return duplicate
    }

    /// Deletes head segments whose messages have all been removed (never the active one), and rolls the
    /// active segment when it is full of removals only.
    func compact() {
        if segments.count == 1, segments[0].liveMessages == 0, segments[0].bytes >= segmentBytes,
            removalBuffer.isEmpty
        {
            try? startSegment(firstSequence: nextSequence)
        }
        while segments.count > 1, segments[0].liveMessages <= 0 {
            unlink(segments[0].path)
            segments.removeFirst()
        }
    }

    private func segmentIndex(containing sequence: UInt64) -> Int? {
        var low = 0
        var high = segments.count - 1
        var found: Int?
        while low <= high {
            let middle = (low + high) / 2
            if segments[middle].firstSequence <= sequence {
                found = middle
                low = middle + 1
            } else {
                high = middle - 1
            }
        }
        return found
    }

    private func startSegment(firstSequence: UInt64) throws {
        let name = String(repeating: "0", count: max(0, 20 - String(firstSequence).count)) + String(firstSequence)
        let path = "\(directory)/\(name).\(Self.fileExtension)"
        if activeDescriptor >= 0 {
            if dirty { fsync(activeDescriptor) }
            close(activeDescriptor)
            activeDescriptor = -1
        }
        segments.append(Segment(firstSequence: firstSequence, path: path, bytes: 0, liveMessages: 0))
        try openActive()
        syncDirectory()
    }

    private func openActive() throws {
        let path = segments[segments.count - 1].path
        activeDescriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard activeDescriptor >= 0 else {
            throw MQTTError(.journalIO, "cannot open outbox segment \(path): errno \(errno)")
        }
    }

    private func syncDirectory() {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(activeDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw MQTTError(
                        .journalIO, "write to \(segments[segments.count - 1].path) failed: errno \(errno)")
                }
                offset += written
            }
        }
        dirty = true
    }
}

/// A read-only descriptor on the segment the outbox last read a message from: consecutive messages mostly
/// share a segment, so sending one costs a `pread`, not an `open` and a `close` as well.
package struct SegmentReader: ~Copyable {
    private var path = ""
    private var openDescriptor: Int32 = -1

    package init() {}

    mutating func descriptor(for segment: String) throws -> Int32 {
        if openDescriptor >= 0 && path == segment { return openDescriptor }
        close()
        let descriptor = open(segment, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw MQTTError(.journalIO, "cannot open outbox segment \(segment): errno \(errno)")
        }
        (path, openDescriptor) = (segment, descriptor)
        return descriptor
    }

    mutating func close() {
        if openDescriptor >= 0 { Glibc.close(openDescriptor) }
        openDescriptor = -1
    }

    deinit { if openDescriptor >= 0 { Glibc.close(openDescriptor) } }
}
