import Foundation
import Synchronization
import TandemCore
import TandemMQTT

@testable import TandemEdge

/// A line source the test feeds while the agent runs.
final class FedSource: LineSource {
    let description = "fed"
    let channel = SourceChannel()
    private let splitter = Mutex(LineSplitter(maximumLineBytes: 4096))

    func batches() -> LineBatches { LineBatches(channel: channel) }

    /// Hands `text` (whole lines) to the agent, waiting while it is 8 batches behind.
    func push(_ text: String) async {
        var batch = LineBatch()
        splitter.withLock { s in Array(text.utf8).withUnsafeBytes { s.feed($0, into: &batch) } }
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

/// CSV lines `t,a,b,c` at 100 Hz, from sample `start`.
func csvLines(from start: Int, count: Int) -> String {
    var text = ""
    for i in start..<(start + count) {
        let values = (0..<3).map { c in String(format: "%.4f", sin(Double(i) * 0.37 + Double(c)) * 3) }
        text += "\(Double(i) / 100)," + values.joined(separator: ",") + "\n"
    }
    return text
}

/// Feeds `agents` the same CSV lines, 40 samples every 50 ms, until the task is cancelled.
func feed(_ agents: [RunningAgent]) -> Task<Void, Never> {
    Task {
        var sample = 0
        while !Task.isCancelled {
            let lines = csvLines(from: sample, count: 40)
            sample += 40
            for agent in agents { await agent.source.push(lines) }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// An edge agent running in-process against the broker on `port`, fed by a ``FedSource``.
struct RunningAgent {
    let agent: EdgeAgent
    let source: FedSource
    let run: Task<Void, any Error>
    let modelPath: String

    init(device: String, port: Int, directory: URL, model: [UInt8], trustedKey: String, channels: Int = 3) throws {
        let dir = directory.appendingPathComponent(device)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        modelPath = dir.appendingPathComponent("model.tandem").path
        try Data(model).write(to: URL(fileURLWithPath: modelPath))
        var configuration = AgentConfiguration()
        configuration.device.id = device
        configuration.device.fleet = "plant"
        configuration.broker.url = "mqtt://localhost:\(port)"
        configuration.broker.reconnectMaxSeconds = 1
        configuration.model.path = modelPath
        configuration.model.trustedKeys = [trustedKey]
        configuration.outbox.directory = dir.appendingPathComponent("outbox").path
        configuration.streams = [AgentConfiguration.Stream(name: "vib", channels: channels)]
        configuration.policy.threshold = 0.6
        configuration.policy.maxEscalationsPerSecond = 100_000
        configuration.statusIntervalSeconds = 0.2
        let classifier = try EdgeModelFiles(path: modelPath).open(configuration.model) { _ in }
        source = FedSource()
        let link = try EdgeLink(configuration: configuration, log: { _ in })
        agent = try EdgeAgent(
            configuration: configuration, classifier: classifier, sources: [source], sinks: [], link: link,
            log: { _ in })
        let agent = self.agent
        run = Task { try await agent.run() }
    }

    func stop() async throws {
        source.stop()
        try await run.value
    }
}
