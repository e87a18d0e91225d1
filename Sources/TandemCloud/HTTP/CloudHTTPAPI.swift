import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import TandemCore
import TandemFleet
import TandemProtocol

/// The worker's HTTP API (docs/CLOUD.md "HTTP API"): health, Prometheus metrics, the fleet view, the model
/// registry, rollout states, and ground-truth labels.
///
/// Reading routes are open; every mutating route needs `Authorization: Bearer <token>`, and without a
/// configured token it is refused (503), never open. Errors are JSON `{"error": …, "reason": …}`.
public struct CloudHTTPAPI: Sendable {
    /// Where the server listens.
    public struct Address: Sendable, Equatable, CustomStringConvertible {
        /// Host name or IP address.
        public var host: String
        /// TCP port; 0 lets the system choose (the chosen one is logged).
        public var port: Int

        /// Creates an address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// Reads `host:port` (`[v6-address]:port` for IPv6).
        ///
        /// - Throws: ``APIConfigurationError`` if it is not that form or the port is not 0…65535.
        public init(parsing text: String) throws(APIConfigurationError) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (0...65535).contains(port)
            else { throw APIConfigurationError("'\(text)' is not host:port with a port in 0…65535") }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw APIConfigurationError("'\(text)' names no host") }
            self.init(host: host, port: port)
        }

        /// `host:port`.
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Settings.
    public struct Configuration: Sendable {
        /// Where to listen.
        public var address = Address(host: "127.0.0.1", port: 8080)
        /// The bearer token mutating routes require; nil refuses them.
        public var token: String?
        /// The largest request body accepted, in bytes.
        public var maximumBodyBytes = 1 << 20
        /// Seconds a connection may stay open without a request part arriving or a response being written (a client
        /// that connects and sends nothing, or dribbles a request); the server closes it then. Default 30.
        public var idleTimeoutSeconds = 30.0
        /// Connections served at once; more wait in the listen backlog until one closes. Default 64.
        public var maximumConnections = 64

        /// The defaults: 127.0.0.1:8080, no token, 1 MiB bodies, 30 s idle timeout, 64 connections.
        public init() {}
    }

    /// The configuration.
    public let configuration: Configuration
    let registry: ModelRegistry
    let store: any EscalationStore
    let labels: LabelIntake
    let metrics: CloudMetrics
    let devices: @Sendable () -> [FleetMonitor.Device]
    let health: @Sendable () -> [String: String]
    let training: @Sendable () throws -> TrainingView
    let logger: Logger
    let fleetTotals = FleetCounterTotals()
    let history = FleetHistory()
    let eventStreams = EventStreamCount()
    let rolloutController: (@Sendable () -> RolloutController?)?
    let auditActions: AuditActionCounter

    /// `GET /v1/training`: whether this worker trains, its running round, the lease, the recorded rounds.
    public struct TrainingView: Sendable, Encodable {
        /// The training lease as stored (it may have expired).
        public struct Lease: Sendable, Encodable {
            public var holder: String
            public var expiresAt: Double
        }
        /// A recorded round.
        public struct Round: Sendable, Encodable {
            public var startedAt: Double
            public var finishedAt: Double
            public var passed: Bool
            public var outcome: String?
            public var version: String?
            public var summary: String
        }
        /// Whether this worker runs the retraining loop.
        public var trainer: Bool
        /// This worker's running round, if any.
        public var current: RoundProgress.Snapshot?
        /// The lease.
        public var lease: Lease?
        /// The latest recorded rounds (by any worker sharing the store), the most recent first.
        public var rounds: [Round]

        /// A view read from `store` (nil: no store that keeps rounds) and this worker's `progress`.
        public init(trainer: Bool, progress: RoundProgress?, store: (any TrainingStore)?, limit: Int = 20) throws {
            self.trainer = trainer
            current = progress?.current
            lease = try store?.trainingLease().map { Lease(holder: $0.holder, expiresAt: $0.expiresAt) }
            rounds = try (store?.rounds(limit: limit) ?? []).map {
                Round(
                    startedAt: $0.startedAt, finishedAt: $0.finishedAt, passed: $0.passed, outcome: $0.outcome,
                    version: $0.version, summary: $0.summary)
            }
        }
    }

    /// Creates the API over a worker's parts.
    ///
    /// - Parameters:
    ///   - registry: The model registry (its directory also holds the rollout states).
    ///   - store: The sample store (row counts for `/metrics`).
    ///   - labels: Where `POST /v1/labels` goes.
    ///   - metrics: What `/metrics` renders.
    ///   - devices: The fleet view now.
    ///   - health: Extra fields of `/healthz` (`broker`, `worker`, …).
    ///   - training: What `/v1/training` shows (default: no trainer, rounds from `store` if it keeps them).
    ///   - rolloutController: The controller the rollout and pin routes act through (the trainer's, once it runs);
    ///     nil: this worker refuses them (503).
    ///   - logger: Where failed requests are logged.
    public init(
        configuration: Configuration, registry: ModelRegistry, store: any EscalationStore, labels: LabelIntake,
        metrics: CloudMetrics, devices: @escaping @Sendable () -> [FleetMonitor.Device],
        health: @escaping @Sendable () -> [String: String] = { [:] },
        training: (@Sendable () throws -> TrainingView)? = nil,
        rolloutController: (@Sendable () -> RolloutController?)? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.registry = registry
        self.store = store
        self.labels = labels
        self.metrics = metrics
        self.devices = devices
        self.health = health
        self.training =
            training ?? { [store] in try TrainingView(trainer: false, progress: nil, store: store as? any TrainingStore)
            }
        self.rolloutController = rolloutController
        self.logger = logger
        auditActions = AuditActionCounter(url: registry.directory.appendingPathComponent(AuditLog.fileName))
    }

    /// The routes.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        // Middleware wraps only the routes added after it.
        router.add(middleware: APIErrorMiddleware(logger: logger))
        router.get("healthz") { _, _ in
            var body: [String: Any] = ["status": "ok"]
            for (key, value) in health() { body[key] = value }
            return JSONBody.response(body)
        }
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: try renderMetrics())))
        }
        router.get("v1/devices") { _, _ in try JSONBody.response(encoding: DeviceList(devices())) }
        router.get("v1/models") { _, _ in try listModels() }
        router.get("v1/models/:version") { _, context in
            try artifact(version: try context.parameters.require("version"))
        }
        router.get("v1/rollouts") { _, _ in try listRollouts() }
        router.get("v1/training") { _, _ in try JSONBody.response(encoding: try training()) }
        router.get("v1/audits") { _, _ in try JSONBody.response(encoding: try audits()) }
        router.post("v1/labels") { request, _ in try await postLabels(request) }
        addFleetRoutes(to: router)
        return router
    }

    /// The application (a `Service`) serving ``router()`` at the configured address; `onListening` gets the
    /// address actually bound (the port chosen for port 0).
    public func application(logger: Logger, onListening: @escaping @Sendable (Address) -> Void = { _ in })
        -> some ApplicationProtocol
    {
        let address = configuration.address
        return Application(
            router: router(),
            server: .http1(
                configuration: HTTP1Channel.Configuration(
                    idleTimeout: .milliseconds(Int64((configuration.idleTimeoutSeconds * 1000).rounded())))),
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port), serverName: "tandem-cloud",
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maximumConnections)),
            onServerRunning: { channel in
                onListening(Address(host: address.host, port: channel.localAddress?.port ?? address.port))
            },
            logger: logger)
    }

    // MARK: - Routes

    private func renderMetrics() throws -> String {
        let counts = try store.counts()
        metrics.storeEscalations.record(counts.rows)
        metrics.storeAnswered.record(counts.answered)
        metrics.storeLabels.record(try store.labelCount())
        let terminal = try store.terminalCounts()
        metrics.setStoreTerminal(terminal)
        metrics.storePending.record(max(0, counts.rows - counts.answered - terminal.values.reduce(0, +)))
        if let rounds = store as? any TrainingStore { metrics.setRounds(try rounds.roundOutcomeCounts()) }
        metrics.setRolloutActions(auditActions.counts().actions)
        metrics.setAuditEstimates(try audits())
        let fleet = devices()
        _ = history.sample(
            fleet.map { (key: "\($0.fleet)/\($0.status.device)", rate: $0.status.escalationRate) },
            now: Date().timeIntervalSince1970)
        let online = fleet.filter { $0.status.state == .online }.count
        metrics.setDevices(online: online, offline: fleet.count - online)
        let growth = fleetTotals.growth(of: fleet)
        metrics.fleetWindows.increment(by: growth.windows)
        metrics.fleetEscalations.increment(by: growth.escalations)
        return metrics.render()
    }

    /// The audit estimates of the edge versions the registry holds (a version string comes from a device's
    /// payload: one the registry does not know is not reported, so a device cannot add metric series).
    private func audits() throws -> [String: AuditEstimate] {
        let known = Set(registry.list().versions.map(\.version))
        return try store.auditEstimates(receivedSince: 0).filter { known.contains($0.key) }
    }

    private func listModels() throws -> Response {
        let (versions, problems) = registry.list()
        struct Listing: Encodable {
            var production: String?
            var versions: [ModelVersionRecord]
            var problems: [Problem]
        }
        struct Problem: Encodable {
            var file: String
            var message: String
        }
        let production: String?
        do {
            production = try registry.productionVersion()
        } catch {
            throw APIError(.internalServerError, "registry", error.description)
        }
        return try JSONBody.response(
            encoding: Listing(
                production: production, versions: versions,
                problems: problems.map {
                    Problem(file: URL(fileURLWithPath: $0.path).lastPathComponent, message: $0.message)
                }))
    }

    private func artifact(version: String) throws -> Response {
        let bytes: [UInt8]
        do {
            bytes = try registry.artifactBytes(version: version)
        } catch {
            switch error.code {
            case .badVersionName: throw APIError(.badRequest, "bad request", error.message)
            case .unknownVersion: throw APIError(.notFound, "not found", error.message)
            default: throw APIError(.internalServerError, "registry", error.message)
            }
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/octet-stream", .eTag: "\"\(ModelArtifact.fileDigestHex(bytes))\"",
                .contentDisposition: "attachment; filename=\"\(version).\(ModelArtifact.fileExtension)\"",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func listRollouts() throws -> Response {
        let (rollouts, problems) = readRollouts()
        struct Listing: Encodable {
            var rollouts: [Rollout]
            var active: [String]
            var problems: [String]
        }
        return try JSONBody.response(
            encoding: Listing(
                rollouts: rollouts, active: rollouts.filter { !$0.isFinished }.map(\.fleet), problems: problems))
    }

    private func postLabels(_ request: Request) async throws -> Response {
        try authorize(request)
        let body = try await request.body.collect(upTo: configuration.maximumBodyBytes)
        let client = "POST /v1/labels"
        if TimeRangeLabel.isRangeForm(Array(buffer: body)) { return try postRangeLabel(Array(buffer: body), client) }
        let parsed: [GroundTruthLabel]
        do {
            parsed = try GroundTruthLabel.decodingList(Array(buffer: body))
        } catch {
            labels.refuse(error, source: .http, from: client)
            throw APIError(.badRequest, "bad request", error.message)
        }
        do throws(LabelError) {
            try labels.submit(parsed, from: client)
        } catch {
            if error.code == .store { throw APIError(.internalServerError, "store", error.message) }
            throw APIError(.badRequest, "bad request", error.message)
        }
        return JSONBody.response(["stored": parsed.count])
    }

    /// `POST /v1/labels` with `{"device", "stream", "start", "end", "class"}`: labels every escalation in the range.
    private func postRangeLabel(_ body: [UInt8], _ client: String) throws -> Response {
        let range: TimeRangeLabel
        do {
            range = try TimeRangeLabel(decoding: body)
        } catch {
            labels.refuse(error, source: .http, from: client)
            throw APIError(.badRequest, "bad request", error.message)
        }
        let labelled: Int
        do throws(LabelError) {
            labelled = try labels.submit(range, from: client)
        } catch {
            if error.code == .store { throw APIError(.internalServerError, "store", error.message) }
            throw APIError(.badRequest, "bad request", error.message)
        }
        return JSONBody.response(["labelled": labelled])
    }

    /// Checks the bearer token of a mutating request.
    func authorize(_ request: Request) throws(APIError) {
        guard let token = configuration.token else {
            throw APIError(
                .serviceUnavailable, "writes disabled",
                "no API token is configured (tandem-cloud serve --api-token-file); mutating routes are refused")
        }
        let challenge: HTTPFields = [.wwwAuthenticate: "Bearer realm=\"tandem-cloud\""]
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "unauthorized", "missing 'Authorization: Bearer <token>'", headers: challenge)
        }
        let prefix = "Bearer "
        guard header.count > prefix.count, header.lowercased().hasPrefix(prefix.lowercased()),
            Self.constantTimeEqual(Array(header.utf8.dropFirst(prefix.utf8.count)), Array(token.utf8))
        else {
            throw APIError(.unauthorized, "unauthorized", "the bearer token is not valid", headers: challenge)
        }
    }

    /// Compares without stopping at the first difference, so the time taken does not tell how much matched.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}

/// A bad `--http` or token setting.
public struct APIConfigurationError: Error, CustomStringConvertible, Sendable {
    /// What is wrong.
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// `GET /v1/devices`.
package struct DeviceList: Encodable {
    struct Entry: Encodable {
        var fleet: String
        var device: String
        var state: String
        var modelVersion: String?
        var modelUpdate: String?
        var policyVersion: String?
        var policyUpdate: String?
        var escalationRate: Double?
        var windows: Int?
        var escalations: Int?
        var inputErrors: Int?
        var inputErrorsByStream: [String: [String: Int]]?
        var lastSeen: Date?
    }

    var devices: [Entry]
    var online: Int
    var offline: Int

    package init(_ devices: [FleetMonitor.Device]) {
        self.devices = devices.map { d in
            Entry(
                fleet: d.fleet, device: d.status.device, state: d.status.state.rawValue,
                modelVersion: d.status.modelVersion,
                modelUpdate: d.status.modelUpdate?.description, policyVersion: d.status.policyVersion,
                policyUpdate: d.status.policyUpdate?.description, escalationRate: d.status.escalationRate,
                windows: d.status.windows,
                escalations: d.status.escalations, inputErrors: d.status.inputErrorTotal,
                inputErrorsByStream: d.status.inputErrors, lastSeen: d.lastSeen)
        }
        online = devices.filter { $0.status.state == .online }.count
        offline = devices.count - online
    }
}
