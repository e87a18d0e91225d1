import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TandemCore
import TandemFleet

/// One `tandem-cloud serve` process: the escalation server, the fleet view and label intake over MQTT, the
/// retraining loop if it trains, the HTTP API and the statistics line, run as one `ServiceGroup`.
///
/// ``make(configuration:logger:)`` builds it from a ``Configuration``, the same way for the executable and for
/// tests. A graceful shutdown (SIGTERM or SIGINT, or ``shutdown()``) stops the group newest service first: the
/// HTTP server stops accepting and finishes its requests, the trainer stops between phases and releases its
/// lease, the MQTT listeners unsubscribe and disconnect, and last the escalation server answers what it has
/// queued, waits (up to 10 s) for the broker to acknowledge every verdict and disconnects. Whatever still runs
/// when the grace period ends is cancelled. ``run(handlingSignals:)`` then returns, and the process
/// exits 0. A service that fails (the HTTP address is taken, say) shuts the others down the same way and its
/// error is thrown.
public final class CloudWorker: Sendable {
    /// The escalation server.
    public let server: EscalationServer
    /// The fleet view and MQTT label intake.
    public let listener: FleetListener
    /// The HTTP API, unless disabled.
    public let api: CloudHTTPAPI?
    /// The retraining loop, if this worker trains.
    public let trainer: RetrainingService?
    /// The worker's metrics.
    public let metrics: CloudMetrics
    let statisticsInterval: Double
    let shutdownGracePeriod: Duration?
    /// Carries the `worker` metadata.
    let logger: Logger
    private let lifecycle = Mutex(Lifecycle.idle)

    /// Where the worker's service group is.
    enum Lifecycle: Sendable {
        /// ``run(handlingSignals:)`` has not started the group.
        case idle
        /// ``shutdown()`` came first: the group is never started.
        case shutDownBeforeRunning
        /// The group runs.
        case running(ServiceGroup)
        /// The group ran and ended.
        case finished

        /// ``run(handlingSignals:)`` starts `group`; false if it must not.
        mutating func start(_ group: ServiceGroup) -> Bool {
            guard case .idle = self else { return false }
            self = .running(group)
            return true
        }

        /// ``shutdown()``: the group to shut down, if one runs.
        mutating func shutDown() -> ServiceGroup? {
            switch self {
            case .idle:
                self = .shutDownBeforeRunning
                return nil
            case .running(let group): return group
            case .shutDownBeforeRunning, .finished: return nil
            }
        }
    }

    /// A worker's parts; ``make(configuration:logger:)`` builds them.
    init(
        server: EscalationServer, listener: FleetListener, api: CloudHTTPAPI?, trainer: RetrainingService?,
        metrics: CloudMetrics, statisticsInterval: Double, shutdownGracePeriod: Duration?, logger: Logger
    ) {
        self.server = server
        self.listener = listener
        self.api = api
        self.trainer = trainer
        self.metrics = metrics
        self.statisticsInterval = statisticsInterval
        self.shutdownGracePeriod = shutdownGracePeriod
        self.logger = logger
    }

    /// Runs every part until a graceful shutdown (or until one of them fails), then stops them in order.
    ///
    /// - Parameter handlingSignals: Whether SIGTERM and SIGINT shut the worker down; tests that run a worker in
    ///   their own process pass false and call ``shutdown()``.
    /// - Throws: The first error a service threw.
    public func run(handlingSignals: Bool = true) async throws {
        // The group's and the HTTP server's own lines only when something is wrong.
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        var services: [any Service] = [server, listener]
        if let trainer { services.append(trainer) }
        if let api {
            services.append(api.application(logger: quiet) { [logger] in logger.info("http: listening on \($0)") })
        }
        services.append(
            StatisticsReporter(server: server, labels: listener.labels, interval: statisticsInterval, logger: logger))
        var configuration = ServiceGroupConfiguration(
            services: services.map {
                .init(
                    service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup)
            }, gracefulShutdownSignals: handlingSignals ? [.sigterm, .sigint] : [], logger: quiet)
        configuration.maximumGracefulShutdownDuration = shutdownGracePeriod
        let group = ServiceGroup(configuration: configuration)
        guard lifecycle.withLock({ $0.start(group) }) else {
            logger.info("stopped before it ran")
            return
        }
        defer { lifecycle.withLock { $0 = .finished } }
        try await group.run()
        logger.info("stopped; \(server.statistics); labels \(listener.labels.statistics)")
    }

    /// Shuts the worker down gracefully, as SIGTERM does; returns at once (``run(handlingSignals:)``
    /// returns when every part has stopped).
    public func shutdown() async {
        guard let group = lifecycle.withLock({ $0.shutDown() }) else { return }
        await group.triggerGracefulShutdown()
    }
}

/// Writes the statistics line every `interval` seconds until the group shuts down.
private struct StatisticsReporter: Service {
    let server: EscalationServer
    let labels: LabelIntake
    let interval: Double
    let logger: Logger

    func run() async throws {
        guard interval > 0 else {
            // Nothing to do but stay in the group until it stops.
            try? await gracefulShutdown()
            return
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(interval)) }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { return }
            logger.info("\(server.statistics); labels \(labels.statistics)")
        }
    }
}
