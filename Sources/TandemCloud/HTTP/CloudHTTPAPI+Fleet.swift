import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import Synchronization
import TandemFleet
import TandemProtocol

/// The fleet page and the routes behind its actions (docs/CLOUD.md "Fleet page").
extension CloudHTTPAPI {
    /// Seconds between two live updates of the page.
    static let eventIntervalSeconds = 2.0
    /// The longest one event stream stays open; the browser reconnects by itself (`retry:`), so a worker's graceful
    /// shutdown never waits on a page left open.
    static let eventStreamSeconds = 300.0
    /// Answered, unlabelled escalations the label queue ranks (the most recent).
    static let queueCandidates = 2000
    /// Live-update streams served at once; one more is refused (503): each builds its own snapshot every interval.
    static let maximumEventStreams = 16

    /// Adds `GET /`, the page's script and style sheet, `GET /v1/events`, `GET /v1/labels/queue`, and the
    /// rollout and pin actions.
    func addFleetRoutes(to router: Router<BasicRequestContext>) {
        let headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
            // The page runs its own script only: a device name that slipped through escaping could not run one.
            .contentSecurityPolicy:
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ]
        router.get("/") { _, _ in
            let html = FleetPage.document(try fleetSnapshot())
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
        }
        router.get("ui/fleet.js") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/javascript; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: FleetPage.script)))
        }
        router.get("ui/fleet.css") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: FleetPage.stylesheet)))
        }
        router.get("v1/events") { _, _ in try eventStream() }
        router.get("v1/labels/queue") { _, _ in try JSONBody.response(encoding: ["queue": try labelQueue()]) }
        router.post("v1/rollouts/:fleet/promote") { request, context in
            try await rolloutAction(request, fleet: try context.parameters.require("fleet"), promote: true)
        }
        router.post("v1/rollouts/:fleet/rollback") { request, context in
            try await rolloutAction(request, fleet: try context.parameters.require("fleet"), promote: false)
        }
        router.post("v1/pins") { request, _ in try await pinAction(request, unpin: false) }
        router.post("v1/pins/unpin") { request, _ in try await pinAction(request, unpin: true) }
    }

    /// What the page shows now; takes a sample of every device's escalation rate for the sparklines.
    func fleetSnapshot() throws -> FleetPage.Snapshot {
        let devices = devices()
        let now = Date()
        let history = history.sample(
            devices.map { (key: "\($0.fleet)/\($0.status.device)", rate: $0.status.escalationRate) },
            now: now.timeIntervalSince1970)
        let (rollouts, problems) = readRollouts()
        return FleetPage.Snapshot(
            devices: devices, history: history, production: try? registry.productionVersion(), rollouts: rollouts,
            rolloutProblems: problems, actionFleet: rolloutController?()?.distributor.fleet,
            training: try? training(), queue: try labelQueue(), classNames: labels.classNames, now: now)
    }

    func labelQueue() throws -> [LabelQueue.Entry] {
        do {
            return LabelQueue().rank(try store.unlabelled(limit: Self.queueCandidates), classNames: labels.classNames)
        } catch {
            throw APIError(.internalServerError, "store", "\(error)")
        }
    }

    /// `text/event-stream`: a `fleet` event with every section's HTML at once and then every
    /// ``eventIntervalSeconds``, for ``eventStreamSeconds`` at most or until the worker shuts down.
    private func eventStream() throws -> Response {
        let api = self
        let streams = eventStreams
        guard streams.count.add(1, ordering: .relaxed).newValue <= Self.maximumEventStreams else {
            streams.count.subtract(1, ordering: .relaxed)
            throw APIError(
                .serviceUnavailable, "too many live views",
                "\(Self.maximumEventStreams) live-update streams are open already; reload later")
        }
        let body = ResponseBody { writer in
            defer { streams.count.subtract(1, ordering: .relaxed) }
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            let deadline = ContinuousClock.now.advanced(by: .seconds(Self.eventStreamSeconds))
            while ContinuousClock.now < deadline && !Task.isCancelled && !Task.isShuttingDownGracefully {
                let sections = FleetPage.sections(try api.fleetSnapshot())
                let json = try JSONSerialization.data(withJSONObject: sections, options: [.sortedKeys])
                var event = ByteBuffer(string: "event: fleet\ndata: ")
                event.writeBytes(json)
                event.writeString("\n\n")
                try await writer.write(event)
                try? await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: .milliseconds(Int(Self.eventIntervalSeconds * 1000)))
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store"], body: body)
    }

    /// Every rollout state file of the registry's directory, and the ones that could not be read.
    func readRollouts() -> (rollouts: [Rollout], problems: [String]) {
        var rollouts: [Rollout] = []
        var problems: [String] = []
        for url in Rollout.stateFiles(in: registry.directory) {
            do {
                rollouts.append(try Rollout.read(from: url))
            } catch {
                problems.append("\(url.lastPathComponent): \(error.message)")
            }
        }
        return (rollouts, problems)
    }

    /// The controller of `fleet`, or the reason this worker cannot act on it.
    private func controller(for fleet: String) throws(APIError) -> RolloutController {
        guard let controller = rolloutController?() else {
            throw APIError(
                .serviceUnavailable, "no rollout controller",
                "this worker does not drive rollouts (only a worker started with --trainer does, once connected)")
        }
        guard controller.distributor.fleet == fleet else {
            throw APIError(
                .notFound, "not found",
                "this worker drives the rollouts of fleet \(controller.distributor.fleet), not \(fleet)")
        }
        return controller
    }

    private struct ActionBody: Decodable {
        var reason: String?
        var fleet: String?
        var device: String?
        var version: String?
    }

    private func actionBody(_ request: Request) async throws -> ActionBody {
        let bytes = try await request.body.collect(upTo: configuration.maximumBodyBytes)
        guard bytes.readableBytes > 0 else { return ActionBody() }
        do {
            return try JSONDecoder().decode(ActionBody.self, from: Data(buffer: bytes))
        } catch {
            throw APIError(.badRequest, "bad request", "expected a JSON object with string fields: \(error)")
        }
    }

    /// `POST /v1/rollouts/{fleet}/promote|rollback`, optionally with `{"reason": …}`.
    private func rolloutAction(_ request: Request, fleet: String, promote: Bool) async throws -> Response {
        try authorize(request)
        let body = try await actionBody(request)
        let controller = try controller(for: fleet)
        let reason = "operator (HTTP API)" + (body.reason.map { ": \(String($0.prefix(500)))" } ?? "")
        let rollout: Rollout
        do throws(RegistryError) {
            rollout =
                promote ? try await controller.promote(reason: reason) : try await controller.rollBack(reason: reason)
        } catch {
            throw Self.apiError(error)
        }
        logger.notice(
            "http: rollout of \(rollout.version) in fleet \(fleet) \(promote ? "promoted" : "rolled back") by an operator"
        )
        return try JSONBody.response(encoding: rollout)
    }

    /// `POST /v1/pins` `{"fleet", "device", "version"}`, `POST /v1/pins/unpin` `{"fleet", "device"}`.
    private func pinAction(_ request: Request, unpin: Bool) async throws -> Response {
        try authorize(request)
        let body = try await actionBody(request)
        guard let fleet = body.fleet, let device = body.device else {
            throw APIError(.badRequest, "bad request", "fleet and device are required")
        }
        let controller = try controller(for: fleet)
        do throws(RegistryError) {
            if unpin {
                let was = try await controller.unpin(device: device)
                return JSONBody.response(["device": device, "unpinned": was])
            }
            guard let version = body.version else {
                throw RegistryError(.badVersionName, "version is required to pin")
            }
            try await controller.pin(device: device, version: version)
            return JSONBody.response(["device": device, "pinned": version])
        } catch {
            throw Self.apiError(error)
        }
    }

    /// A registry error as the status a client can act on.
    private static func apiError(_ error: RegistryError) -> APIError {
        switch error.code {
        case .rolloutState: APIError(.conflict, "conflict", error.message)
        case .unknownVersion: APIError(.notFound, "not found", error.message)
        case .badVersionName, .badDeviceName, .signing: APIError(.badRequest, "bad request", error.message)
        default: APIError(.internalServerError, "registry", error.message)
        }
    }
}

/// The live-update streams a worker's HTTP API has open.
final class EventStreamCount: Sendable {
    let count = Atomic<Int>(0)
}
