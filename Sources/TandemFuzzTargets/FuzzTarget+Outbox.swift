import Foundation
import TandemMQTT

#if canImport(Glibc)
    import Glibc
#endif

extension FuzzTarget {
    /// Outbox journal segments as a crash or a damaged disk may leave them, through recovery: open (cutting damaged
    /// tails), read back every message it recovered, append and remove as the outbox does, reopen.
    ///
    /// Input: a byte giving how many segment files (1–3), two bytes per cut, then the bytes split across them.
    /// Checks: every recovered message reads back; after the first recovery cut the damage off, the second finds
    /// none and recovers exactly what was left pending plus the message appended.
    static let outbox = FuzzTarget(
        name: "outbox",
        summary: "OutboxJournal recovery of damaged segments (OutboxRecord.read) → read back → append → reopen"
    ) { bytes in
        var input = FuzzInput(bytes)
        let segmentCount = 1 + input.choose(3)
        // Each cut is a byte offset (two bytes, little-endian) from the previous one.
        let cuts = (1..<segmentCount).map { _ in Int(input.byte()) | Int(input.byte()) << 8 }
        let contents = input.rest
        let directory = OutboxFixture.directory
        OutboxFixture.clear(directory)
        var start = 0
        var firstSequence: UInt64 = 1
        for k in 0..<segmentCount {
            let end = k == segmentCount - 1 ? contents.count : min(contents.count, start + cuts[k])
            let name = String(format: "%020llu.journal", firstSequence)
            _ = FileManager.default.createFile(
                atPath: "\(directory)/\(name)", contents: Data(contents[start..<end]))
            start = end
            firstSequence += 1 + UInt64(cuts.isEmpty ? 0 : cuts[k % cuts.count] % 8)
        }

        let journal: OutboxJournal
        do {
            journal = try OutboxJournal(directory: directory, segmentBytes: 4096, warn: { _ in })
        } catch {
            FuzzCheck.require(false, "recovery failed on a readable directory: \(error)")
            return .refused
        }
        let damaged = journal.truncatedTails > 0
        var reader = SegmentReader()
        for pending in journal.recovered {
            do {
                let message = try OutboxJournal.readMessage(at: pending.location, reader: &reader)
                FuzzCheck.require(message.topic == pending.topic, "a recovered message reads back with another topic")
            } catch {
                FuzzCheck.require(false, "message \(pending.sequence) was recovered but does not read back: \(error)")
            }
        }
        var expected = journal.recovered.map(\.sequence)
        do {
            if let first = expected.first {
                try journal.remove(sequence: first)
                expected.removeFirst()
            }
            let sequence = journal.nextSequence
            let record = try OutboxRecord.encodeMessage(OutboxFixture.message, sequence: sequence)
            _ = try journal.appendMessages(record, sizes: [record.count])
            try journal.sync()
            expected.append(sequence)
        } catch {
            FuzzCheck.require(false, "the recovered journal does not take a message: \(error)")
        }
        let reopened: OutboxJournal
        do {
            reopened = try OutboxJournal(directory: directory, segmentBytes: 4096, warn: { _ in })
        } catch {
            FuzzCheck.require(false, "the journal does not reopen: \(error)")
            return .refused
        }
        FuzzCheck.require(reopened.truncatedTails == 0, "the second recovery found damage the first one left")
        FuzzCheck.require(
            reopened.recovered.map(\.sequence) == expected,
            "reopened with \(reopened.recovered.map(\.sequence)) pending, expected \(expected)")
        withExtendedLifetime(journal) {}
        return damaged ? .refused : .accepted
    }
}

enum OutboxFixture {
    static let message = MQTTMessage(
        topic: "tandem/v1/plant/dev-1/escalations", payload: Array("window".utf8),
        properties: MQTTPublishProperties(correlationData: [1, 2, 3]))

    /// A directory of this process's own, on a RAM disk when there is one: the target writes a few files per input.
    static let directory: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = "\(base)/tandem-fuzz-outbox-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: OutboxFixture.directory) }
        return path
    }()

    /// Removes every file in `directory`.
    static func clear(_ directory: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            unlink("\(directory)/\(name)")
        }
    }
}
