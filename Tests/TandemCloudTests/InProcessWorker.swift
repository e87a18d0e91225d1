import Foundation
import Logging
import Synchronization
import TandemCloud
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

/// A worker built in the test's own process through ``CloudWorker/make(configuration:logger:)``, as
/// `tandem-cloud serve` builds it, and run without signal handlers; its log is kept in memory.
final class InProcessWorker: Sendable {
    let worker: CloudWorker
    let logs = LogCapture()
    private let task: Task<Void, any Error>
    private let finished = Finished()

    /// Set when the run ends.
    private final class Finished: Sendable {
        let flag = Atomic(false)
    }

    /// Makes the worker and starts running it.
    init(_ configuration: CloudWorker.Configuration) throws {
        let worker = try CloudWorker.make(configuration: configuration, logger: logs.logger())
        self.worker = worker
        let finished = finished
        task = Task {
            defer { finished.flag.store(true, ordering: .relaxed) }
            try await worker.run(handlingSignals: false)
        }
    }

    /// A configuration for a worker on the broker at `port`, with no statistics lines.
    static func configuration(brokerPort port: Int, modelPath: String, dataDirectory: String, workerID: String)
        throws -> CloudWorker.Configuration
    {
        var configuration = CloudWorker.Configuration(
            broker: try MQTTBrokerConfiguration(url: "mqtt://localhost:\(port)"), modelPath: modelPath)
        configuration.dataDirectory = dataDirectory
        configuration.workerID = workerID
        configuration.statisticsIntervalSeconds = 0
        return configuration
    }

    /// What it logged so far.
    var log: String { logs.contents }

    /// Whether ``CloudWorker/run(handlingSignals:)`` is still running.
    var isRunning: Bool { !finished.flag.load(ordering: .relaxed) }

    /// Shuts it down gracefully, as SIGTERM would, and waits: 0 if it stopped cleanly, 1 if it threw.
    func terminate() async -> Int32 {
        await worker.shutdown()
        do {
            try await task.value
            return 0
        } catch {
            logs.write("run threw: \(error)\n")
            return 1
        }
    }

    deinit {
        // A test that failed before terminating leaves nothing running behind it.
        let worker = worker
        Task { await worker.shutdown() }
    }
}

extension InProcessWorker {
    /// A worker with the small test full model (``fullModelArtifact(window:channels:classes:)``, written to
    /// `directory/full.tandem` unless `model` names another), its data in `directory/data`, no HTTP API; returned
    /// once it serves.
    static func serving(
        brokerPort: Int, directory: String, model: String? = nil,
        adjust: (inout CloudWorker.Configuration) -> Void = { _ in }
    ) async throws -> InProcessWorker {
        if model == nil { try fullModelArtifact().write(to: URL(fileURLWithPath: "\(directory)/full.tandem")) }
        var configuration = try configuration(
            brokerPort: brokerPort, modelPath: model ?? "\(directory)/full.tandem", dataDirectory: "\(directory)/data",
            workerID: "1")
        configuration.http = nil
        adjust(&configuration)
        let worker = try InProcessWorker(configuration)
        #expect(await waitUntil(startLimit) { worker.log.contains("serving") }, "\(worker.log)")
        return worker
    }
}

/// A device's MQTT client (fleet `f`) that escalates on its own topic and keeps every verdict it receives.
final class VerdictInbox: Sendable {
    let device: String
    let client: MQTTClient
    private let verdicts = Received()
    private let subscription: MQTTSubscription

    private final class Received: Sendable {
        let byID = Mutex([UUID: Verdict]())
    }

    init(brokerPort: Int, device: String) async throws {
        self.device = device
        client = try MQTTClient(configuration: MQTTClientConfiguration(port: brokerPort, clientID: device))
        try await client.connect()
        let verdicts = verdicts
        subscription = try await client.subscribe(to: "tandem/v1/f/\(device)/verdicts", qos: .atLeastOnce) {
            message in
            if let verdict = try? Verdict(decoding: message.payload) {
                verdicts.byID.withLock { $0[verdict.escalationId] = verdict }
            }
        }
    }

    /// The verdicts received so far, by escalation id.
    var received: [UUID: Verdict] { verdicts.byID.withLock { $0 } }

    /// Publishes an escalation's bytes on the device's escalations topic (QoS 1).
    func escalate(_ bytes: [UInt8]) async throws {
        try await client.publish(
            MQTTMessage(topic: "tandem/v1/f/\(device)/escalations", payload: bytes, qos: .atLeastOnce))
    }

    func close() async {
        subscription.cancel()
        await client.disconnect()
    }
}
