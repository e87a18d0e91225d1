import Foundation
import Synchronization
import TandemCloud
import TandemCore
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

/// Stored escalations that can never be answered end as terminal rows: tried a bounded number of times, logged once,
/// counted, never reclaimed again; recovery goes on answering the others.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct UnanswerableEscalationTests {
    @Test("stored rows of another shape or that no longer decode become terminal at once, each logged once")
    func wrongShapeAndUndecodable() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let dir = scratch.url.path
            try FileManager.default.createDirectory(atPath: "\(dir)/data", withIntermediateDirectories: true)
            // Rows a worker left behind (stored before shapes were checked at receipt, or damaged since).
            let wrong = UUID(), broken = UUID()
            var generator = SeededGenerator(seed: 8)
            let old = Date().timeIntervalSince1970 - 60
            do {
                let store = try SampleStore(path: "\(dir)/data/tandem.sqlite")
                let wrongShape = try EscalationPayload(
                    id: wrong, device: "d1", stream: "vib", modelVersion: "edge-1", windowStart: 0, windowEnd: 1,
                    sampleRateHz: 100, channels: 2, length: 5, window: (0..<10).map { _ in generator.nextGaussian() },
                    topK: [.init(label: 0, probability: 0.5)], confidence: 0.5
                ).encoded()
                for (id, payload) in [(wrong, wrongShape), (broken, [1, 2, 3] as [UInt8])] {
                    try store.insert(
                        SampleStore.Escalation(
                            id: id, device: "d1", stream: "vib", payload: payload,
                            responseTopic: "tandem/v1/f/d1/verdicts", edgeLabel: 0, edgeConfidence: 0.5,
                            edgeModel: "edge-1", receivedAt: old, fleet: "f"))
                }
            }
            let worker = try await defenseWorker(broker: broker, directory: dir)
            #expect(await waitUntil { worker.worker.server.statistics.terminal == 2 }, "\(worker.log)")
            // An honest escalation meanwhile is answered.
            let device = try await deviceClient(broker, "d1")
            let fresh = UUID()
            try await device.publish(
                MQTTMessage(
                    topic: "tandem/v1/f/d1/escalations",
                    payload: try escalation(id: fresh, device: "d1", generator: &generator), qos: .atLeastOnce))
            #expect(await waitUntil { worker.worker.server.statistics.answered == 1 }, "\(worker.log)")
            // Longer than the 5 s after which an unanswered row would be claimed again.
            try await Task.sleep(for: .seconds(7))
            #expect(occurrences(of: "\(wrong)", in: worker.log) == 1, "\(worker.log)")
            #expect(occurrences(of: "\(broken)", in: worker.log) == 1, "\(worker.log)")
            #expect(worker.log.contains("(wrongShape: its window is not of the model's shape 8×3)"))
            #expect(worker.log.contains("(undecodable: its stored payload does not decode)"))
            #expect(worker.worker.server.statistics.terminal == 2)
            #expect(occurrences(of: "left unanswered", in: worker.log) <= 1, "no claim repeats:\n\(worker.log)")
            let store = try SampleStore(path: "\(dir)/data/tandem.sqlite")
            #expect(try store.terminalCounts() == [.wrongShape: 1, .undecodable: 1])
            let text = worker.worker.metrics.render()
            #expect(metric(text, "tandem_cloud_escalations_terminal_total", "reason=\"wrongShape\"") == 1, "\(text)")
            #expect(metric(text, "tandem_cloud_escalations_terminal_total", "reason=\"undecodable\"") == 1, "\(text)")
            await device.disconnect()
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }

    @Test(
        "an escalation whose verdict the broker refuses is tried answerAttempts times, then given up, logged once and never tried again"
    )
    func refusedVerdictGivenUp() async throws {
        let acl = """
            user cloud
            topic read tandem/v1/#
            topic write tandem/v1/f/ok/verdicts

            user device
            topic readwrite tandem/v1/#
            """
        let options = MosquittoBroker.Options(users: ["cloud": "cloud-pass", "device": "device-pass"], acl: acl)
        try await MosquittoBroker.with(options) { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let dir = scratch.url.path
            try "cloud-pass\n".write(toFile: "\(dir)/cloud.password", atomically: true, encoding: .utf8)
            let worker = try await defenseWorker(broker: broker, directory: dir) {
                $0.broker = try MQTTBrokerConfiguration(
                    url: "mqtt://localhost:\(broker.port)", username: "cloud", passwordFile: "\(dir)/cloud.password")
                $0.answerAttempts = 2
            }
            var configuration = MQTTClientConfiguration(port: broker.port, clientID: "device")
            configuration.username = "device"
            configuration.password = "device-pass"
            let device = try MQTTClient(configuration: configuration)
            try await device.connect()
            var generator = SeededGenerator(seed: 9)
            let blocked = UUID(), ok = UUID()
            for (id, name) in [(blocked, "blocked"), (ok, "ok")] {
                try await device.publish(
                    MQTTMessage(
                        topic: "tandem/v1/f/\(name)/escalations",
                        payload: try escalation(id: id, device: name, generator: &generator), qos: .atLeastOnce))
            }
            let store = try SampleStore(path: "\(dir)/data/tandem.sqlite")
            #expect(await waitUntil { (try? store.verdict(for: ok)) != nil }, "\(worker.log)")
            #expect(
                await waitUntil(.seconds(30)) { worker.worker.server.statistics.terminal == 1 }, "\(worker.log)")
            #expect(worker.worker.server.statistics.verdictsRefused == 2, "\(worker.worker.server.statistics)")
            // Two more claim periods: nothing is tried again.
            try await Task.sleep(for: .seconds(7))
            #expect(worker.worker.server.statistics.verdictsRefused == 2, "\(worker.worker.server.statistics)")
            #expect(occurrences(of: "giving up on", in: worker.log) == 1, "\(worker.log)")
            #expect(worker.log.contains("(gaveUp: still unanswered after 2 tries): \(blocked)"), "\(worker.log)")
            #expect(occurrences(of: "the broker refused the verdict for \(blocked)", in: worker.log) == 2)
            #expect(try store.terminalCounts() == [.gaveUp: 1] && store.verdict(for: blocked) == nil)
            let text = worker.worker.metrics.render()
            #expect(metric(text, "tandem_cloud_verdicts_refused_total") == 2, "\(text)")
            #expect(metric(text, "tandem_cloud_escalations_terminal_total", "reason=\"gaveUp\"") == 1, "\(text)")
            await device.disconnect()
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }
}
