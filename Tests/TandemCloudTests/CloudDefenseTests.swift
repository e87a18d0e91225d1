import Foundation
import Synchronization
import TandemCloud
import TandemCore
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A worker built in this process as `tandem-cloud serve` builds it, with its full model written to `directory`,
/// on `broker`, its configuration adjusted by `adjust`.
func defenseWorker(
    broker: MosquittoBroker, directory: String, adjust: (inout CloudWorker.Configuration) throws -> Void = { _ in }
) async throws -> InProcessWorker {
    try fullModelArtifact().write(to: URL(fileURLWithPath: "\(directory)/full.tandem"))
    var configuration = try InProcessWorker.configuration(
        brokerPort: broker.port, modelPath: "\(directory)/full.tandem", dataDirectory: "\(directory)/data",
        workerID: "1")
    configuration.http = nil
    try adjust(&configuration)
    let worker = try InProcessWorker(configuration)
    let ready = await waitUntil(startLimit) {
        worker.log.contains("serving") && worker.log.contains("listening for labels")
    }
    guard ready else {
        _ = await worker.terminate()
        throw CloudStartError("the worker did not come up:\n\(worker.log)")
    }
    return worker
}

/// The value of one Prometheus sample, `name{labels} value`.
func metric(_ text: String, _ name: String, _ labels: String = "") -> Double? {
    let prefix = labels.isEmpty ? "\(name) " : "\(name){\(labels)} "
    return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
}

/// How many lines of `text` hold `needle`.
func occurrences(of needle: String, in text: String) -> Int {
    text.split(separator: "\n").filter { $0.contains(needle) }.count
}

/// A device's own client on the test broker.
func deviceClient(_ broker: MosquittoBroker, _ id: String) async throws -> MQTTClient {
    let client = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: id))
    try await client.connect()
    return client
}

/// What the cloud does with what devices send: rate limits, size and shape limits, labels bound to their device.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct CloudDefenseTests {
    @Test(
        "a device over its escalation limit is refused (not stored, not answered), counted by reason and logged once; another device is answered"
    )
    func escalationRateLimit() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let worker = try await defenseWorker(broker: broker, directory: scratch.url.path) {
                $0.escalationLimit = RateLimit(perSecond: 0.01, burst: 5)
            }
            let observer = try await deviceClient(broker, "observer")
            let verdicts = Mutex<[String: Set<UUID>]>([:])
            let subscription = try await observer.subscribe(to: "tandem/v1/f/+/verdicts", qos: .atLeastOnce) {
                message in
                if let verdict = try? Verdict(decoding: message.payload) {
                    verdicts.withLock { _ = $0[message.topic, default: []].insert(verdict.escalationId) }
                }
            }
            let greedy = try await deviceClient(broker, "greedy"), honest = try await deviceClient(broker, "honest")
            var generator = SeededGenerator(seed: 11)
            for _ in 0..<15 {
                try await greedy.publish(
                    MQTTMessage(
                        topic: "tandem/v1/f/greedy/escalations",
                        payload: try escalation(id: UUID(), device: "greedy", generator: &generator), qos: .atLeastOnce)
                )
            }
            let honestIDs = (0..<3).map { _ in UUID() }
            for id in honestIDs {
                try await honest.publish(
                    MQTTMessage(
                        topic: "tandem/v1/f/honest/escalations",
                        payload: try escalation(id: id, device: "honest", generator: &generator), qos: .atLeastOnce))
            }
            #expect(
                await waitUntil {
                    verdicts.withLock { $0["tandem/v1/f/honest/verdicts"] } == Set(honestIDs)
                        && verdicts.withLock { $0["tandem/v1/f/greedy/verdicts"]?.count } == 5
                }, "\(verdicts.withLock { $0 })\n\(worker.log)")
            try await Task.sleep(for: .milliseconds(500))
            let statistics = worker.worker.server.statistics
            #expect(statistics.refused == [.rateLimited: 10] && statistics.rejected == 10, "\(statistics)")
            #expect(statistics.answered == 8 && statistics.received == 8)
            let store = try SampleStore(path: scratch.url.appendingPathComponent("data/tandem.sqlite").path)
            #expect(try store.counts().rows == 8, "a refused escalation is not stored")
            let text = worker.worker.metrics.render()
            #expect(metric(text, "tandem_cloud_escalations_rejected_total", "reason=\"rateLimited\"") == 10, "\(text)")
            #expect(metric(text, "tandem_cloud_escalations_rejected_total", "reason=\"malformed\"") == 0, "\(text)")
            #expect(
                occurrences(of: "is over its escalation limit", in: worker.log) == 1,
                "one line per device per minute:\n\(worker.log)")
            #expect(worker.log.contains("device f/greedy is over its escalation limit (0.01/s, burst 5)"))
            subscription.cancel()
            for client in [observer, greedy, honest] { await client.disconnect() }
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }

    @Test("an escalation larger than the model's input could need, or of another shape, is refused before it is stored")
    func sizeAndShape() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let worker = try await defenseWorker(broker: broker, directory: scratch.url.path)
            let device = try await deviceClient(broker, "d1")
            let topic = "tandem/v1/f/d1/escalations"
            // 8 × 3 windows: an escalation (version 2, with its deadline and last use) is at most 2,417 bytes.
            #expect(EscalationPayload.maximumEncodedBytes(channels: 3, length: 8) == 2417)
            try await device.publish(
                MQTTMessage(topic: topic, payload: [UInt8](repeating: 0x54, count: 3 << 20), qos: .atLeastOnce))
            var generator = SeededGenerator(seed: 5)
            let wrongShape = try EscalationPayload(
                id: UUID(), device: "d1", stream: "vib", modelVersion: "edge-1", windowStart: 0, windowEnd: 1,
                sampleRateHz: 100, channels: 3, length: 9, window: (0..<27).map { _ in generator.nextGaussian() },
                topK: [.init(label: 0, probability: 0.5)], confidence: 0.5
            ).encoded()
            #expect(wrongShape.count <= 2417, "refused for its shape, not its size")
            try await device.publish(MQTTMessage(topic: topic, payload: wrongShape, qos: .atLeastOnce))
            let good = UUID()
            try await device.publish(
                MQTTMessage(
                    topic: topic, payload: try escalation(id: good, device: "d1", generator: &generator),
                    qos: .atLeastOnce))
            #expect(await waitUntil { worker.worker.server.statistics.answered == 1 }, "\(worker.log)")
            let statistics = worker.worker.server.statistics
            #expect(statistics.refused == [.tooLarge: 1, .wrongShape: 1], "\(statistics)")
            let store = try SampleStore(path: scratch.url.appendingPathComponent("data/tandem.sqlite").path)
            #expect(try store.ids() == [good], "only the good one is stored")
            let text = worker.worker.metrics.render()
            #expect(metric(text, "tandem_cloud_escalations_rejected_total", "reason=\"tooLarge\"") == 1, "\(text)")
            #expect(metric(text, "tandem_cloud_escalations_rejected_total", "reason=\"wrongShape\"") == 1, "\(text)")
            await device.disconnect()
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }

    @Test(
        "a device labels only its own escalations: another device's, another fleet's or an oversized label is refused and counted; a label for an id not stored waits; labels are rate-limited per device"
    )
    func labelsBoundToTheirDevice() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let worker = try await defenseWorker(broker: broker, directory: scratch.url.path) {
                $0.labelLimit = RateLimit(perSecond: 0.01, burst: 3)
            }
            let store = try SampleStore(path: scratch.url.appendingPathComponent("data/tandem.sqlite").path)
            let a = try await deviceClient(broker, "a"), b = try await deviceClient(broker, "b")
            var generator = SeededGenerator(seed: 6)
            let own = UUID()
            try await a.publish(
                MQTTMessage(
                    topic: "tandem/v1/f/a/escalations",
                    payload: try escalation(id: own, device: "a", generator: &generator),
                    qos: .atLeastOnce))
            #expect(await waitUntil { (try? store.verdict(for: own)) != nil }, "\(worker.log)")
            func label(_ client: MQTTClient, _ topic: String, _ id: UUID, _ name: String) async throws {
                try await client.publish(
                    MQTTMessage(
                        topic: topic, payload: GroundTruthLabel(escalationId: id, label: name).encoded(),
                        qos: .atLeastOnce))
            }
            let intake = worker.worker.listener.labels
            // b claims a's escalation; a device named a in another fleet does too.
            try await label(b, "tandem/v1/f/b/labels", own, "c2")
            try await label(b, "tandem/v1/g/a/labels", own, "c2")
            #expect(await waitUntil { intake.statistics.rejected[.otherDevice] == 2 }, "\(intake.statistics)")
            #expect(try store.label(for: own) == nil)
            // A label larger than any label is refused before it is read.
            try await b.publish(
                MQTTMessage(
                    topic: "tandem/v1/f/b/labels", payload: [UInt8](repeating: 0x20, count: 8 << 10),
                    qos: .atLeastOnce))
            #expect(await waitUntil { intake.statistics.rejected[.tooLarge] == 1 }, "\(intake.statistics)")
            // a labels its own, and one not stored yet, which is kept but does not count.
            let early = UUID()
            try await label(a, "tandem/v1/f/a/labels", own, "c1")
            try await label(a, "tandem/v1/f/a/labels", early, "c0")
            #expect(await waitUntil { intake.statistics.stored == 2 }, "\(intake.statistics)")
            #expect(try store.label(for: own) == 1 && store.label(for: early) == 0)
            #expect(intake.statistics.pending == 1)
            #expect(try store.labelCount(recordedAfter: 0) == 1, "the waiting label does not count toward retraining")
            // a is over its limit of 3 now: the next ones are refused and logged once.
            for _ in 0..<4 { try await label(a, "tandem/v1/f/a/labels", UUID(), "c0") }
            #expect(await waitUntil { intake.statistics.rejected[.rateLimited] == 3 }, "\(intake.statistics)")
            #expect(intake.statistics.stored == 3)
            let text = worker.worker.metrics.render()
            for (reason, count) in [("otherDevice", 2.0), ("tooLarge", 1), ("rateLimited", 3)] {
                #expect(
                    metric(text, "tandem_cloud_labels_rejected_total", "reason=\"\(reason)\",source=\"mqtt\"") == count,
                    "\(reason): \(text)")
            }
            #expect(occurrences(of: "is over its label limit", in: worker.log) == 1, "\(worker.log)")
            // The device whose escalation it is still gets its verdicts.
            let later = UUID()
            try await a.publish(
                MQTTMessage(
                    topic: "tandem/v1/f/a/escalations",
                    payload: try escalation(id: later, device: "a", generator: &generator), qos: .atLeastOnce))
            #expect(await waitUntil { (try? store.verdict(for: later)) != nil }, "\(worker.log)")
            for client in [a, b] { await client.disconnect() }
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }
}
