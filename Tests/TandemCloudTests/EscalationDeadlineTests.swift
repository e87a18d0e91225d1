import Foundation
import Synchronization
import TandemCore
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

@testable import TandemCloud

/// Escalations carry their edge's verdict deadline and last use (payload version 2).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct EscalationDeadlineTests {
    @Test(
        "an escalation past its edge's last use is stored as a terminal `expired` row and not answered; one past its deadline is answered late, the others in time"
    )
    func expiredStoredNotAnswered() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let worker = try await InProcessWorker.serving(brokerPort: broker.port, directory: scratch.url.path)
            let device = try await VerdictInbox(brokerPort: broker.port, device: "pump-1")
            var generator = SeededGenerator(seed: 8)
            let now = Date().timeIntervalSince1970
            func send(_ deadline: (verdict: Double, lastUse: Double)?) async throws -> UUID {
                let id = UUID()
                var payload = try EscalationPayload(
                    decoding: try escalation(id: id, device: "pump-1", generator: &generator))
                (payload.deadline, payload.lastUse) = (deadline?.verdict, deadline?.lastUse)
                try await device.escalate(try payload.encoded())
                return id
            }
            let inTime = try await send((now + 30, now + 90))
            let late = try await send((now - 5, now + 55))
            let expired = try await send((now - 70, now - 10))
            let noDeadline = try await send(nil)
            let server = worker.worker.server
            #expect(
                await waitUntil {
                    Set(device.received.keys) == [inTime, late, noDeadline] && server.statistics.expired == 1
                },
                "\(server.statistics)")
            try await Task.sleep(for: .milliseconds(300))
            #expect(device.received[expired] == nil)
            let statistics = server.statistics
            #expect(statistics.inTime == 2 && statistics.late == 1 && statistics.answered == 3, "\(statistics)")
            #expect(
                worker.log.contains("past their edge's last use of a verdict, stored for training"), "\(worker.log)")
            // Stored for training, terminal: the recovery never claims it.
            let store = try SampleStore(path: "\(scratch.url.path)/data/tandem.sqlite")
            #expect(Set(try store.ids()) == [inTime, late, expired, noDeadline])
            #expect(try store.terminalCounts() == [.expired: 1])
            await device.close()
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }

    @Test("a deadline years ahead counts as 10 minutes ahead; nearer ones and none stay as they are")
    func deadlinesAreBounded() throws {
        var generator = SeededGenerator(seed: 2)
        var payload = try EscalationPayload(decoding: try escalation(id: UUID(), device: "d", generator: &generator))
        let now = 1_800_000_000.0
        #expect(EscalationServer.boundingDeadlines(of: payload, receivedAt: now) == payload)
        (payload.deadline, payload.lastUse) = (now + 0.5, now + 60.5)
        #expect(EscalationServer.boundingDeadlines(of: payload, receivedAt: now) == payload)
        (payload.deadline, payload.lastUse) = (4e9, 4e9 + 60)
        let bounded = EscalationServer.boundingDeadlines(of: payload, receivedAt: now)
        #expect(bounded.deadline == now + 600 && bounded.lastUse == now + 600)
    }

    @Test(
        "when more wait than a batch takes, the urgent ones go first, in arrival order, then the others; expired ones always"
    )
    func urgentFirst() {
        let queue = BatchQueue<Int>()
        // At time 100: the even ones can still be answered in time, 7 and 9 are past their last use.
        func put(_ i: Int) {
            queue.put(i, deadline: i.isMultiple(of: 2) ? 150 : 50, lastUse: i == 7 || i == 9 ? 90 : 200)
        }
        for i in 0..<10 where i != 7 && i != 9 { put(i) }
        #expect(queue.take(maximum: 4, maximumWait: 0, idle: 0, now: 100) == [0, 2, 4, 6])
        #expect(queue.take(maximum: 4, maximumWait: 0, idle: 0, now: 100) == [1, 3, 5, 8])
        #expect(queue.take(maximum: 4, maximumWait: 0, idle: 0, now: 100) == [])
        // Expired ones need no model: they are always taken, beyond the maximum.
        for i in 0..<10 { put(i) }
        #expect(queue.take(maximum: 2, maximumWait: 0, idle: 0, now: 100) == [0, 2, 7, 9])
        // Three urgent ones and two others fill a batch of five, handed over in arrival order.
        #expect(queue.take(maximum: 5, maximumWait: 0, idle: 0, now: 100) == [1, 3, 4, 6, 8])
        #expect(queue.take(maximum: 5, maximumWait: 0, idle: 0, now: 100) == [5])
        // Earlier, nothing has expired and every deadline is ahead: the oldest go first.
        for i in 0..<10 { put(i) }
        #expect(queue.take(maximum: 3, maximumWait: 0, idle: 0, now: 10) == [0, 1, 2])
        #expect(queue.count == 7)
    }
}
