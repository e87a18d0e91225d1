import Foundation
import Logging
import Synchronization
import TandemCloud
import TandemMQTT

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
