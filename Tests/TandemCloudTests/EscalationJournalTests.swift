import Foundation
import Synchronization
import TandemCore
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

@testable import TandemCloud

/// Escalations are durable from their receipt (the journal) and reach the store in batches.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct EscalationJournalTests {
    @Test(
        "records read back as written; a full segment goes once released; a cut-short record ends the segment's reading"
    )
    func appendReadRelease() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let directory = scratch.url.appendingPathComponent("journal/1")
        let journal = try EscalationJournal(directory: directory, segmentBytes: 4096)
        let entries = (0..<5).map { i in
            EscalationJournal.Entry(
                topic: "tandem/v1/f/d\(i)/escalations", payload: [UInt8](repeating: UInt8(i), count: 1500),
                receivedAt: 1_700_000_000 + Double(i))
        }
        var segments = [Int]()
        for e in entries {
            segments.append(try journal.append(topic: e.topic, payload: e.payload, receivedAt: e.receivedAt))
        }
        // 1,544-byte records in 4 KiB segments: three to the first, then a new segment.
        #expect(segments == [1, 1, 1, 2, 2])
        let files = EscalationJournal.segments(in: directory)
        #expect(files.map(\.number) == [1, 2])
        #expect(EscalationJournal.read(segment: files[0].url).entries == Array(entries[0..<3]))
        #expect(EscalationJournal.read(segment: files[1].url).entries == Array(entries[3..<5]))
        #expect(journal.unreleased == 5)
        journal.release([1, 1])
        #expect(EscalationJournal.segments(in: directory).count == 2, "segment 1 still holds an unstored record")
        journal.release([1, 2])
        #expect(EscalationJournal.segments(in: directory).map(\.number) == [2], "full and stored: gone")
        // A record cut short by a kill: what precedes it is read, the rest counted as damaged.
        let handle = try FileHandle(forWritingTo: files[1].url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0x40, 0x00, 0x00, 0x00, 1, 2, 3]))
        try handle.close()
        let read = EscalationJournal.read(segment: files[1].url)
        #expect(read.entries == Array(entries[3..<5]) && read.damaged == 1)
        // The current segment goes at a stop only once everything in it is stored (one of segment 2's records never
        // was); the lock goes either way.
        #expect(journal.unreleased == 1)
        journal.close()
        #expect(EscalationJournal.segments(in: directory).map(\.number) == [2])
        let next = try EscalationJournal(directory: directory)
        #expect(next.leftovers.map(\.number) == [2])
        next.close()
        #expect(EscalationJournal.segments(in: directory).map(\.number) == [2], "it never stored segment 2's record")
        #expect(throws: CloudWorkerError.self) { try journal.append(topic: "t", payload: [1], receivedAt: 1) }
    }

    @Test("a journal is held by one running worker; one whose worker is gone is found, locked and finished by another")
    func orphans() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let parent = scratch.url.appendingPathComponent("journal")
        let mine = try EscalationJournal(directory: parent.appendingPathComponent("a"))
        var dead: EscalationJournal? = try EscalationJournal(directory: parent.appendingPathComponent("b"))
        _ = try dead?.append(topic: "tandem/v1/f/d/escalations", payload: [1, 2, 3], receivedAt: 5)
        #expect(throws: CloudWorkerError.self) {
            try EscalationJournal(directory: parent.appendingPathComponent("b"), lockWaitSeconds: 0.3)
        }
        #expect(EscalationJournal.orphans(in: parent, except: mine.directory).isEmpty, "b's worker still runs")
        dead = nil  // its worker is gone: the lock is free, the segment stays
        let found = EscalationJournal.orphans(in: parent, except: mine.directory)
        #expect(found.map(\.directory.lastPathComponent) == ["b"])
        #expect(EscalationJournal.orphans(in: parent, except: mine.directory).isEmpty, "locked by the first finder")
        let urls = found[0].segments.map(\.url)
        #expect(EscalationJournal.read(segment: urls[0]).entries.map(\.payload) == [[1, 2, 3]])
        EscalationJournal.finish(orphan: found[0], removing: urls)
        #expect(EscalationJournal.segments(in: parent.appendingPathComponent("b")).isEmpty)
        #expect(EscalationJournal.orphans(in: parent, except: mine.directory).isEmpty)
        // Ids are kept apart even where their characters are not safe in a file name.
        let names = ["edge/../x y", "edge_.._x_y", "..", "a/b", "a_b", "plain-1.2"].map(CloudWorker.journalName)
        #expect(
            Set(names).count == 6 && names[5] == "plain-1.2" && names.allSatisfy { !$0.contains("/") && $0 != ".." })
    }

    @Test(
        "what a killed worker journaled but had not stored is stored and answered by the next worker of the data directory"
    )
    func killedWorkersJournalIsStored() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let dir = scratch.url.path
            // As a worker killed between receipt and its batch leaves it: two records, the second cut short.
            var generator = SeededGenerator(seed: 12)
            let ids = [UUID(), UUID()]
            do {
                let dead = try EscalationJournal(directory: URL(fileURLWithPath: "\(dir)/data/journal/2"))
                for id in ids {
                    _ = try dead.append(
                        topic: "tandem/v1/f/pump-1/escalations",
                        payload: try escalation(id: id, device: "pump-1", generator: &generator),
                        receivedAt: Date().timeIntervalSince1970 - 60)
                }
            }
            let segment = EscalationJournal.segments(in: URL(fileURLWithPath: "\(dir)/data/journal/2"))[0].url
            let bytes = try Data(contentsOf: segment)
            try bytes.prefix(bytes.count - 10).write(to: segment)

            let device = try await VerdictInbox(brokerPort: broker.port, device: "pump-1")
            let worker = try await InProcessWorker.serving(brokerPort: broker.port, directory: dir)
            #expect(
                await waitUntil(startLimit) {
                    worker.log.contains(
                        "journal: stored 1 escalation(s) from the stopped worker's journal 2 that had not reached the store (1 unreadable record(s) skipped)"
                    )
                }, "\(worker.log)")
            #expect(await waitUntil { Set(device.received.keys) == [ids[0]] }, "\(worker.log)")
            let store = try SampleStore(path: "\(dir)/data/tandem.sqlite")
            #expect(try store.ids() == [ids[0]])
            #expect(EscalationJournal.segments(in: URL(fileURLWithPath: "\(dir)/data/journal/2")).isEmpty)

            // Its own escalations go through its journal, which is empty again after a clean stop.
            let id = UUID()
            try await device.escalate(try escalation(id: id, device: "pump-1", generator: &generator))
            #expect(await waitUntil { device.received[id] != nil })
            #expect(await waitUntil { (try? store.counts().answered) == 2 })
            await device.close()
            #expect(await worker.terminate() == 0, "\(worker.log)")
            #expect(EscalationJournal.segments(in: URL(fileURLWithPath: "\(dir)/data/journal/1")).isEmpty)
        }
    }
}
