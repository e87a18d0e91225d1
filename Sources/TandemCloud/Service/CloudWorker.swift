import Foundation
import Logging
import ServiceLifecycle
import TandemCore
import TandemFleet

/// One `tandem-cloud serve` process: the escalation server, the fleet view and label intake over MQTT, the HTTP
/// API and the statistics line, run as one `ServiceGroup`.
///
/// SIGTERM or SIGINT shuts the group down gracefully, newest service first: the HTTP server stops accepting
/// and finishes its requests, the MQTT listeners unsubscribe and disconnect, and last the escalation server
/// answers what it has queued, waits (up to 10 s) for the broker to acknowledge every verdict and
/// disconnects. ``run(additionalServices:)`` then returns, and the process exits 0. A service that fails
/// (the HTTP address is taken, say) shuts the others down the same way and its error is thrown.
public final class CloudWorker: Sendable {
    /// The escalation server.
    public let server: EscalationServer
    /// The fleet view and MQTT label intake.
    public let listener: FleetListener
    /// The HTTP API, unless disabled.
    public let api: CloudHTTPAPI?
    /// The worker's metrics.
    public let metrics: CloudMetrics
    let statisticsInterval: Double
    let log: @Sendable (String) -> Void

    /// Builds a worker's parts; nothing connects or listens before ``run(additionalServices:)``.
    ///
    /// - Parameters:
    ///   - configuration: Broker and batching settings of the escalation server.
    ///   - model: The full model; `manifest` its artifact's manifest (its class names resolve labels).
    ///   - edgeInputs: Edge model input specs, as for ``EscalationServer``.
    ///   - store: The sample store.
    ///   - dataDirectory: The registry's directory (models, production, rollout states).
    ///   - registry: The registry in `dataDirectory`, if the caller opened it already; the escalation server
    ///     looks up edge versions it does not know there (a retrained model's windows).
    ///   - http: The HTTP API's settings, or nil for none.
    ///   - training: What the API's `/v1/training` shows (default: no trainer, the store's recorded rounds).
    ///   - statisticsInterval: Seconds between statistics lines (0: only the last one).
    ///   - log: Lines for standard error.
    /// - Throws: ``RegistryError`` if the registry directory cannot be used, ``MQTTError`` if a client cannot
    ///   be created.
    public init(
        configuration: EscalationServer.Configuration, model: FloatModel, manifest: ModelManifest,
        edgeInputs: [String: InputSpec] = [:], store: any EscalationStore, dataDirectory: URL,
        registry: ModelRegistry? = nil,
        http: CloudHTTPAPI.Configuration?, training: (@Sendable () throws -> CloudHTTPAPI.TrainingView)? = nil,
        statisticsInterval: Double, log: @escaping @Sendable (String) -> Void
    ) throws {
        let metrics = CloudMetrics()
        self.metrics = metrics
        self.statisticsInterval = statisticsInterval
        self.log = log
        server = try EscalationServer(
            configuration: configuration, model: model, manifest: manifest, edgeInputs: edgeInputs, registry: registry,
            store: store, metrics: metrics, log: log)
        let labels = LabelIntake(classNames: manifest.classNames, store: store, metrics: metrics, log: log)
        let listener = try FleetListener(configuration: configuration, labels: labels, log: log)
        self.listener = listener
        if let http {
            let server = server
            api = CloudHTTPAPI(
                configuration: http, registry: try registry ?? ModelRegistry(directory: dataDirectory), store: store,
                labels: labels, metrics: metrics, devices: { listener.devices },
                health: {
                    [
                        "worker": configuration.workerID, "model": manifest.version,
                        "broker": server.client.connectionState.isConnected && listener.isConnected
                            ? "connected" : "disconnected",
                    ]
                }, training: training, log: log)
        } else {
            api = nil
        }
    }

    /// Runs every part until SIGTERM/SIGINT (or one of them fails), then stops them in order.
    ///
    /// - Parameter additionalServices: More services to run in the same group (started after the escalation
    ///   server and the listeners, stopped before them).
    /// - Throws: The first error a service threw.
    public func run(additionalServices: [any Service] = []) async throws {
        var logger = Logger(label: "tandem-cloud", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .warning
        var services: [any Service] = [EscalationService(server: server), listener]
        services += additionalServices
        if let api {
            let log = log
            services.append(api.application(logger: logger) { log("http: listening on \($0)") })
        }
        services.append(
            StatisticsReporter(server: server, labels: listener.labels, interval: statisticsInterval, log: log))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map {
                    .init(
                        service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup)
                }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        log(
            "worker \(server.configuration.workerID): stopped; \(server.statistics); labels \(listener.labels.statistics)"
        )
    }
}

/// The escalation server as a `Service`: a graceful shutdown (or cancellation) calls ``EscalationServer/stop()``,
/// which answers what is queued before ``EscalationServer/run()`` returns.
private struct EscalationService: Service {
    let server: EscalationServer

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await server.run()
            } onCancel: {
                server.stop()
            }
        } onGracefulShutdown: {
            server.log("worker \(server.configuration.workerID): stopping")
            server.stop()
        }
    }
}

/// Writes the statistics line every `interval` seconds until the group shuts down.
private struct StatisticsReporter: Service {
    let server: EscalationServer
    let labels: LabelIntake
    let interval: Double
    let log: @Sendable (String) -> Void

    func run() async throws {
        guard interval > 0 else {
            // Nothing to do but stay in the group until it stops.
            try? await gracefulShutdown()
            return
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(interval)) }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { return }
            log("worker \(server.configuration.workerID): \(server.statistics); labels \(labels.statistics)")
        }
    }
}

/// The retraining loop as a `Service`: a graceful shutdown stops it between phases (releasing the lease).
public struct RetrainingLifecycle: Service {
    let service: RetrainingService

    /// Wraps `service`.
    public init(_ service: RetrainingService) { self.service = service }

    public func run() async throws {
        let service = service
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await service.run()
            } onCancel: {
                service.stop()
            }
        } onGracefulShutdown: {
            service.stop()
        }
    }
}
