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
            let dir = scratch.url.path
            try fullModelArtifact().write(to: URL(fileURLWithPath: "\(dir)/full.tandem"))
            var configuration = try InProcessWorker.configuration(
                brokerPort: broker.port, modelPath: "\(dir)/full.tandem", dataDirectory: "\(dir)/data", workerID: "1")
            configuration.http = nil
            let worker = try InProcessWorker(configuration)
            #expect(await waitUntil(startLimit) { worker.log.contains("serving") }, "\(worker.log)")
            let device = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: "pump-1"))
            try await device.connect()
            let answered = Mutex(Set<UUID>())
            let subscription = try await device.subscribe(to: "tandem/v1/f/pump-1/verdicts", qos: .atLeastOnce) {
                message in
                if let verdict = try? Verdict(decoding: message.payload) {
                    answered.withLock { _ = $0.insert(verdict.escalationId) }
                }
            }
            var generator = SeededGenerator(seed: 8)
            let now = Date().timeIntervalSince1970
            func send(_ deadline: (verdict: Double, lastUse: Double)?) async throws -> UUID {
                let id = UUID()
                var payload = try EscalationPayload(
                    decoding: try escalation(id: id, device: "pump-1", generator: &generator))
                (payload.deadline, payload.lastUse) = (deadline?.verdict, deadline?.lastUse)
                try await device.publish(
                    MQTTMessage(
                        topic: "tandem/v1/f/pump-1/escalations", payload: try payload.encoded(), qos: .atLeastOnce))
                return id
            }
            let inTime = try await send((now + 30, now + 90))
            let late = try await send((now - 5, now + 55))
            let expired = try await send((now - 70, now - 10))
            let noDeadline = try await send(nil)
            let server = worker.worker.server
            #expect(
                await waitUntil {
                    answered.withLock { $0 } == [inTime, late, noDeadline] && server.statistics.expired == 1
                },
                "\(server.statistics)")
            try await Task.sleep(for: .milliseconds(300))
            #expect(!answered.withLock { $0.contains(expired) })
            let statistics = server.statistics
            #expect(statistics.inTime == 2 && statistics.late == 1 && statistics.answered == 3, "\(statistics)")
            #expect(
                worker.log.contains("past their edge's last use of a verdict, stored for training"), "\(worker.log)")
            // Stored for training, terminal: the recovery never claims it.
            let store = try SampleStore(path: "\(dir)/data/tandem.sqlite")
            #expect(Set(try store.ids()) == [inTime, late, expired, noDeadline])
            #expect(try store.terminalCounts() == [.expired: 1])
            subscription.cancel()
            await device.disconnect()
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }

    @Test(
        "when more wait than a batch takes, the urgent ones go first, in arrival order, then the others; expired ones always"
    )
    func urgentFirst() {
        let queue = BatchQueue<Int>()
        for i in 0..<10 { queue.put(i) }
        let even = { (i: Int) in i.isMultiple(of: 2) }
        #expect(queue.take(maximum: 4, maximumWait: 0, idle: 0, urgent: even) == [0, 2, 4, 6])
        #expect(queue.take(maximum: 4, maximumWait: 0, idle: 0, urgent: even) == [1, 3, 5, 8])
        #expect(queue.take(maximum: 4, maximumWait: 0, idle: 0, urgent: even) == [7, 9])
        #expect(queue.take(maximum: 4, maximumWait: 0, idle: 0, urgent: even) == [])
        // Expired ones need no model: they are always taken, beyond the maximum.
        for i in 0..<10 { queue.put(i) }
        let expired = { (i: Int) in i == 7 || i == 9 }
        #expect(queue.take(maximum: 2, maximumWait: 0, idle: 0, urgent: even, expired: expired) == [0, 2, 7, 9])
        #expect(queue.take(maximum: 2, maximumWait: 0, idle: 0, urgent: even, expired: expired) == [4, 6])
        #expect(queue.take(maximum: 4, maximumWait: 0, idle: 0, urgent: even, expired: expired) == [1, 3, 5, 8])
    }
}
