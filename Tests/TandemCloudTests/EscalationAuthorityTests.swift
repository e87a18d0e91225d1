import Foundation
import Synchronization
import TandemCore
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

/// A device's identity and its verdicts' destination come from its topic, never from what it asks for.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct EscalationAuthorityTests {
    @Test(
        "a verdict goes to the escalating device's own topic whatever response topic it asks for; a payload naming another device is refused and counted"
    )
    func verdictsGoToTheTopicsDevice() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let dir = scratch.url.path
            try fullModelArtifact().write(to: URL(fileURLWithPath: "\(dir)/full.tandem"))
            let worker = try InProcessWorker(
                try InProcessWorker.configuration(
                    brokerPort: broker.port, modelPath: "\(dir)/full.tandem", dataDirectory: "\(dir)/data",
                    workerID: "1"))
            #expect(await waitUntil(startLimit) { worker.log.contains("serving") }, "\(worker.log)")
            let observer = try MQTTClient(
                configuration: MQTTClientConfiguration(port: broker.port, clientID: "observer"))
            try await observer.connect()
            let arrivals = Mutex<[String: [UUID]]>([:])
            let subscription = try await observer.subscribe(to: "tandem/v1/f/+/verdicts", qos: .atLeastOnce) {
                message in
                if let verdict = try? Verdict(decoding: message.payload) {
                    arrivals.withLock { $0[message.topic, default: []].append(verdict.escalationId) }
                }
            }
            let attacker = try MQTTClient(
                configuration: MQTTClientConfiguration(port: broker.port, clientID: "mallory"))
            try await attacker.connect()
            var generator = SeededGenerator(seed: 3)
            // Asks for the verdict on the victim's topic.
            let redirected = UUID()
            try await attacker.publish(
                MQTTMessage(
                    topic: "tandem/v1/f/mallory/escalations",
                    payload: try escalation(id: redirected, device: "mallory", generator: &generator),
                    qos: .atLeastOnce, retain: false,
                    properties: MQTTPublishProperties(responseTopic: "tandem/v1/f/victim/verdicts")))
            // Claims to be the victim in its payload.
            let impersonated = UUID()
            try await attacker.publish(
                MQTTMessage(
                    topic: "tandem/v1/f/mallory/escalations",
                    payload: try escalation(id: impersonated, device: "victim", generator: &generator),
                    qos: .atLeastOnce))
            #expect(
                await waitUntil { arrivals.withLock { $0["tandem/v1/f/mallory/verdicts"] } == [redirected] },
                "\(arrivals.withLock { $0 })")
            #expect(await waitUntil { worker.worker.server.statistics.rejected == 1 })
            try await Task.sleep(for: .milliseconds(300))
            #expect(arrivals.withLock { $0["tandem/v1/f/victim/verdicts"] } == nil)
            #expect(worker.worker.server.statistics.answered == 1)
            #expect(worker.log.contains("the payload names device 'victim', the topic 'mallory'"))
            subscription.cancel()
            await observer.disconnect()
            await attacker.disconnect()
            #expect(await worker.terminate() == 0)
        }
    }
}
