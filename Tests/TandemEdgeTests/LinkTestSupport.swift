import Foundation
import Synchronization
import TandemCore
import TandemMQTT
import TandemProtocol
import TandemTestSupport

@testable import TandemEdge

/// A source the test feeds line by line while the agent runs.
final class PushSource: LineSource {
    let description = "push"
    let channel = SourceChannel()
    private let splitter = Mutex(LineSplitter(maximumLineBytes: 4096))
    private let lineNumber = Mutex(1)

    func batches() -> LineBatches { LineBatches(channel: channel) }

    /// Hands `text` (whole lines) to the agent, waiting (without blocking a thread) while it is 8 batches behind.
    func push(_ text: String) async {
        var batch = LineBatch()
        batch.firstLineNumber = lineNumber.withLock { $0 }
        splitter.withLock { s in Array(text.utf8).withUnsafeBytes { s.feed($0, into: &batch) } }
        lineNumber.withLock { $0 += batch.lines.count }
        while channel.slots.wait(timeout: .now()) == .timedOut {
            try? await Task.sleep(for: .milliseconds(1))
        }
        channel.slots.signal()
        channel.deliver(batch)
    }

    func stop() {
        channel.stop()
        channel.finish()
    }
}

/// CSV lines `t,a,b,c` at 100 Hz with varied values, from sample `start`.
func sampleLines(from start: Int, count: Int, channels: Int = 3) -> String {
    var text = ""
    for i in start..<(start + count) {
        let values = (0..<channels).map { c in String(format: "%.4f", sin(Double(i) * 0.37 + Double(c)) * 3) }
        text += "\(Double(i) / 100)," + values.joined(separator: ",") + "\n"
    }
    return text
}

/// A stand-in for the cloud: answers every escalation on its response topic with a verdict whose label is
/// the edge's top class + 1 (so a verdict is recognisable), and remembers every escalation id it saw.
final class TestResponder: Sendable {
    final class Seen: Sendable {
        let ids = Mutex<[UUID]>([])
    }
    let client: MQTTClient
    let seen = Seen()
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(port: Int, classes: Int, persistentSession: Bool = false) async throws {
        client = try MQTTClient(
            configuration: MQTTClientConfiguration(
                port: port, clientID: "responder-\(UUID().uuidString.prefix(8))", cleanStart: !persistentSession,
                sessionExpirySeconds: persistentSession ? 3600 : 0,
                reconnect: .init(initialDelayMilliseconds: 50, maximumDelayMilliseconds: 500)))
        try await client.connect()
        let subscription = try await client.subscribe(to: "tandem/v1/+/+/escalations", qos: .atLeastOnce)
        let client = self.client
        let seen = self.seen
        task.withLock {
            $0 = Task {
                for await message in subscription {
                    guard let payload = try? EscalationPayload(decoding: message.payload) else { continue }
                    let correlation = withUnsafeBytes(of: payload.id.uuid) { Array($0) }
                    guard message.properties.correlationData == correlation,
                        let responseTopic = message.properties.responseTopic
                    else { continue }
                    seen.ids.withLock { $0.append(payload.id) }
                    let label = ((payload.topK.first.map { $0.label } ?? 0) + 1) % classes
                    var probabilities = [Float](repeating: 0.05, count: classes)
                    probabilities[label] = 1 - 0.05 * Float(classes - 1)
                    let verdict = Verdict(
                        escalationId: payload.id, label: label, probabilities: probabilities, modelVersion: "cloud-1")
                    let reply = MQTTMessage(
                        topic: responseTopic, payload: verdict.encoded(), qos: .atLeastOnce, retain: false)
                    _ = try? client.publish(reply, onComplete: nil)
                }
            }
        }
    }

    var ids: [UUID] { seen.ids.withLock { $0 } }

    func close() async {
        task.withLock { $0?.cancel() }
        await client.disconnect()
    }
}

/// A configuration for an in-process agent linked to the broker on `port`.
func linkedConfiguration(port: Int, directory: String, modelPath: String, device: String = "box1")
    -> AgentConfiguration
{
    var configuration = AgentConfiguration()
    configuration.device.id = device
    configuration.device.fleet = "test"
    configuration.broker.url = "mqtt://localhost:\(port)"
    configuration.broker.reconnectMaxSeconds = 1
    configuration.model.path = modelPath
    configuration.outbox.directory = directory + "/outbox"
    configuration.streams = [AgentConfiguration.Stream(name: "vib", channels: 3)]
    configuration.policy.threshold = 0.6
    configuration.policy.maxEscalationsPerSecond = 100_000
    configuration.statusIntervalSeconds = 3600
    return configuration
}

/// A scratch directory holding the test model, and a configuration linking an agent to `broker` with it.
func linkedSetup(_ broker: MosquittoBroker) throws -> (scratch: ScratchDirectory, configuration: AgentConfiguration) {
    let scratch = try ScratchDirectory()
    let modelPath = scratch.url.appendingPathComponent("model.tandem").path
    try TestModel.artifact().write(to: URL(fileURLWithPath: modelPath))
    return (scratch, linkedConfiguration(port: broker.port, directory: scratch.url.path, modelPath: modelPath))
}
