import Foundation
import TandemCore
import TandemFleet
import TandemFleetTestSupport
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

/// The desired-state rules as a pure value, with made-up statuses and times.
struct DesiredStateTests {
    func status(_ device: String, _ version: String?, state: DeviceStatus.State = .online) -> DeviceStatus {
        var status = DeviceStatus(device: device, state: state)
        status.modelVersion = version
        return status
    }

    func canary(cohort: [String], others: [String]) throws -> Rollout {
        var rollout = try Rollout.plan(
            fleet: "plant", version: "v2", previousVersion: "v1", devices: cohort + others,
            policy: RolloutPolicy(canaryPercent: 50), now: Date(timeIntervalSince1970: 0))
        _ = try rollout.start(now: Date(timeIntervalSince1970: 0))
        return rollout
    }

    @Test("a pin wins over a canary, which wins over production; the cohort follows the candidate, the rest production")
    func precedence() throws {
        // box-6 is in the 50 % cohort, box-0 is not (RolloutEndToEndTests).
        let rollout = try canary(cohort: ["box-6"], others: ["box-0"])
        #expect(rollout.cohort == ["box-6"])
        var desired = DesiredState(production: "v1", rollout: rollout, pins: ["box-9": "v0"])
        #expect(desired.version(for: "box-6") == "v2")
        #expect(desired.version(for: "box-0") == "v1")
        #expect(desired.version(for: "box-9") == "v0")
        desired.pins["box-6"] = "v1"
        #expect(desired.version(for: "box-6") == "v1")
        desired.rollout = nil
        #expect(desired.version(for: "box-0") == "v1")
        #expect(DesiredState().version(for: "box-0") == nil, "nothing in production, nothing to assign")
    }

    @Test("a device on another version is due once per interval, not while it downloads, not while offline")
    func rateLimited() {
        var desired = DesiredState(production: "v2", minimumIntervalSeconds: 30)
        let t0 = Date(timeIntervalSince1970: 1000)
        var offline = status("gone", "v1", state: .offline)
        offline.modelVersion = "v1"
        var downloading = status("busy", "v1")
        downloading.modelUpdate = .downloading("v2")
        let statuses = [
            "new": status("new", nil), "old": status("old", "v1"), "ok": status("ok", "v2"), "gone": offline,
            "busy": downloading,
        ]
        #expect(desired.due(statuses, now: t0) == ["v2": ["new", "old"]])
        #expect(desired.due(statuses, now: t0.addingTimeInterval(29)) == [:], "no storm within the interval")
        #expect(desired.due(statuses, now: t0.addingTimeInterval(30)) == ["v2": ["new", "old"]])
        // A new desired version (a pin) is due at once, whatever was sent before.
        desired.pins["old"] = "v1"
        #expect(desired.due(statuses, now: t0.addingTimeInterval(31)) == [:], "old already runs its pin")
        desired.pins["new"] = "v1"
        #expect(desired.due(statuses, now: t0.addingTimeInterval(31)) == ["v1": ["new"]])
        // What a rollout assigned counts as sent.
        desired.pins = [:]
        desired.noteSent("v2", to: ["old"], at: t0.addingTimeInterval(100))
        #expect(desired.due(statuses, now: t0.addingTimeInterval(101)) == ["v2": ["new"]])
    }

    @Test("a device that does not take its version waits twice as long each time, up to an hour; taking it resets")
    func backoff() {
        var desired = DesiredState(production: "v2", minimumIntervalSeconds: 30)
        var statuses = ["stuck": status("stuck", "v1")]
        var now = Date(timeIntervalSince1970: 1000)
        var sent: [Double] = []
        for second in 0..<20_000 {
            now = Date(timeIntervalSince1970: 1000 + Double(second))
            if !desired.due(statuses, now: now).isEmpty { sent.append(Double(second)) }
        }
        let gaps = zip(sent.dropFirst(), sent).map { $0 - $1 }
        #expect(Array(gaps.prefix(7)) == [30, 60, 120, 240, 480, 960, 1920], "\(gaps)")
        #expect(gaps.dropFirst(7).allSatisfy { $0 == 3600 }, "\(gaps)")
        // It takes v2, later comes back on v1 (restored from a backup): due at once, and the backoff starts over.
        statuses["stuck"] = status("stuck", "v2")
        #expect(desired.due(statuses, now: now.addingTimeInterval(1)) == [:])
        statuses["stuck"] = status("stuck", "v1")
        #expect(desired.due(statuses, now: now.addingTimeInterval(2)) == ["v2": ["stuck"]])
        #expect(desired.due(statuses, now: now.addingTimeInterval(32)) == ["v2": ["stuck"]])
        #expect(desired.due(statuses, now: now.addingTimeInterval(62)) == [:])
    }

    @Test("the interval is clamped; a non-finite one is the default")
    func clamped() {
        #expect(DesiredState(minimumIntervalSeconds: 0).minimumIntervalSeconds == 1)
        #expect(DesiredState(minimumIntervalSeconds: .nan).minimumIntervalSeconds == 30)
        #expect(DesiredState(minimumIntervalSeconds: 1e9).minimumIntervalSeconds == 86_400)
    }

    @Test(
        "pins are kept in pins-{fleet}.json, replaced by a later pin, removed by unpin; another fleet's file is an error"
    )
    func pinFile() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let pins = DevicePins(directory: scratch.url, fleet: "plant")
        #expect(try pins.read() == [:])
        try pins.pin("box-0", to: "v1")
        try pins.pin("box-1", to: "v1")
        try pins.pin("box-0", to: "v2")
        #expect(try DevicePins(directory: scratch.url, fleet: "plant").read() == ["box-0": "v2", "box-1": "v1"])
        #expect(try pins.unpin("box-0") == "v2")
        #expect(try pins.unpin("box-0") == nil)
        #expect(try pins.read() == ["box-1": "v1"])
        try FileManager.default.copyItem(at: pins.url, to: scratch.url.appendingPathComponent("pins-mine.json"))
        #expect(throws: RegistryError.self) { try DevicePins(directory: scratch.url, fleet: "mine").read() }
    }
}

/// The desired state against a real mosquitto and real edge agents running in-process: `box-6` falls in the 50 %
/// canary cohort, `box-0` does not.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DesiredStateEndToEndTests {
    /// A registry with `v1` in production and `v2` registered, the two agents serving v1, and a controller for
    /// fleet `plant` that re-assigns at most every 30 s.
    struct Fleet {
        let fixture: RegistryFixture
        let agents: [RunningAgent]
        let client: MQTTClient
        let monitor: FleetMonitor
        let controller: RolloutController
        let audit: AuditLog
        let port: Int

        init(broker: MosquittoBroker) async throws {
            port = broker.port
            fixture = try RegistryFixture()
            try fixture.register(try edgeArtifact(version: "v1"), source: "initial")
            try fixture.register(try edgeArtifact(version: "v2", seed: 2), source: "retrain")
            audit = AuditLog(url: fixture.registry.directory.appendingPathComponent("audit.jsonl"))
            client = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: "cloud"))
            try await client.connect()
            let distributor = ModelDistributor(client: client, fleet: "plant", signer: try fixture.signer())
            try await distributor.publish(
                version: "v1", from: fixture.registry, audit: audit, actor: "ana", assigningTo: ["box-0", "box-6"],
                production: true)
            let (fixture, port) = (fixture, port)
            agents = try ["box-0", "box-6"].map { try Self.agent($0, fixture: fixture, port: port) }
            monitor = try await FleetMonitor(client: client, fleet: "plant")
            controller = RolloutController(
                registry: fixture.registry, distributor: distributor, monitor: monitor, audit: audit, actor: "ana")
            let monitor = self.monitor
            #expect(
                await waitUntil {
                    ["box-0", "box-6"].allSatisfy { monitor.statuses[$0]?.modelUpdate == .active("v1") }
                }, "\(monitor.statuses)")
        }

        /// A new agent whose disk holds v1 (a box imaged before the promotion).
        func agent(_ device: String) throws -> RunningAgent {
            try Self.agent(device, fixture: fixture, port: port)
        }

        static func agent(_ device: String, fixture: RegistryFixture, port: Int) throws -> RunningAgent {
            try RunningAgent(
                device: device, port: port, directory: fixture.scratch.url,
                model: try fixture.registry.artifactBytes(version: "v1"), trustedKey: fixture.publicKeyPath)
        }

        /// Rolls v2 out to the 50 % cohort and promotes it by hand.
        func promote() async throws {
            let started = try await controller.start(
                version: "v2", policy: RolloutPolicy(canaryPercent: 50, soakSeconds: 3600, minimumCanaryWindows: 0))
            #expect(started.cohort == ["box-6"])
            let promoted = try await controller.promote(reason: "by hand")
            #expect(promoted.phase == .promoted)
            #expect(try fixture.registry.productionVersion() == "v2")
        }

        func desiredStateRecords(for device: String) -> [AuditRecord] {
            audit.read().records.filter { $0.action == "desired-state" && $0.devices.contains(device) }
        }

        func close(_ more: [RunningAgent] = []) async throws {
            for agent in agents + more { try await agent.stop() }
            monitor.stop()
            await client.disconnect()
            fixture.scratch.remove()
        }
    }

    @Test("a device first seen after a promotion runs the production version within 10 s, assigned once")
    func newDeviceGetsProduction() async throws {
        try await MosquittoBroker.with { broker in
            let fleet = try await Fleet(broker: broker)
            try await fleet.promote()
            let controller = fleet.controller
            let loop = Task { await controller.maintainDesiredState(interval: .milliseconds(200)) }
            defer { loop.cancel() }

            // box-0 (outside the cohort, assigned by the promotion) and box-6 (the canary) end on v2.
            #expect(await waitUntil { fleet.agents.allSatisfy { $0.agent.classifier.modelVersion == "v2" } })
            let online = ContinuousClock.now
            let late = try fleet.agent("box-late")
            #expect(
                await waitUntil(.seconds(10)) { late.agent.classifier.modelVersion == "v2" },
                "box-late still runs \(late.agent.classifier.modelVersion)")
            #expect(ContinuousClock.now - online < .seconds(10))
            #expect(await waitUntil { fleet.monitor.statuses["box-late"]?.modelUpdate == .active("v2") })
            // Devices already on production were left alone, and the newcomer was assigned once: its status showed
            // v1 for a while after the assignment, within the 30 s interval.
            try await Task.sleep(for: .seconds(1))
            let records = fleet.audit.read().records.filter { $0.action == "desired-state" }
            #expect(records.count == 1 && records.first?.devices == ["box-late"], "\(records)")
            #expect(records.first?.version == "v2")
            try await fleet.close([late])
        }
    }

    @Test("a pinned device stays on its pin through a promotion and is assigned production once unpinned")
    func pinnedDeviceStays() async throws {
        try await MosquittoBroker.with { broker in
            let fleet = try await Fleet(broker: broker)
            let controller = fleet.controller
            // box-6 would be the canary: pinned, it is left out, so the 50 % cohort is empty and nothing starts.
            try await controller.pin(device: "box-6", version: "v1")
            #expect(try controller.pins.read() == ["box-6": "v1"])
            #expect(FileManager.default.fileExists(atPath: controller.pins.url.path))
            await #expect(throws: RegistryError.self) {
                try await controller.start(version: "v2", policy: RolloutPolicy(canaryPercent: 50, soakSeconds: 0))
            }
            // With every other device in the cohort, box-0 takes v2; box-6 keeps v1 through the promotion.
            let started = try await controller.start(
                version: "v2", policy: RolloutPolicy(canaryPercent: 100, soakSeconds: 3600, minimumCanaryWindows: 0))
            #expect(started.cohort == ["box-0"] && started.others.isEmpty)
            _ = try await controller.promote(reason: "by hand")
            let loop = Task { await controller.maintainDesiredState(interval: .milliseconds(200)) }
            defer { loop.cancel() }
            let (box0, box6) = (fleet.agents[0], fleet.agents[1])
            #expect(await waitUntil { box0.agent.classifier.modelVersion == "v2" })
            try await Task.sleep(for: .seconds(2))
            #expect(box6.agent.classifier.modelVersion == "v1")
            #expect(fleet.monitor.statuses["box-6"]?.modelVersion == "v1")
            #expect(fleet.desiredStateRecords(for: "box-6").map(\.version) == ["v1"], "only the pin's assignment")

            #expect(try await controller.unpin(device: "box-6") == "v1")
            #expect(try controller.pins.read() == [:])
            #expect(await waitUntil(.seconds(10)) { box6.agent.classifier.modelVersion == "v2" })
            #expect(fleet.desiredStateRecords(for: "box-6").map(\.version) == ["v1", "v2"])

            // Pinning a device on v2 back to v1 goes back a release: the assignment must be a signed rollback,
            // which the agent takes (it refuses an older release without the flag).
            try await controller.pin(device: "box-0", version: "v1")
            #expect(
                await waitUntil(.seconds(10)) { box0.agent.classifier.modelVersion == "v1" },
                "\(String(describing: fleet.monitor.statuses["box-0"]?.modelUpdate))")
            try await fleet.close()
        }
    }

    @Test(
        "a pin to an unregistered or revoked version, with a bad device id, or an unpin of an unpinned device is refused"
    )
    func badPins() async throws {
        try await MosquittoBroker.with { broker in
            let fleet = try await Fleet(broker: broker)
            let controller = fleet.controller
            func code(_ body: () async throws -> Void) async -> RegistryError.Code? {
                do {
                    try await body()
                    return nil
                } catch let error as RegistryError {
                    return error.code
                } catch {
                    return nil
                }
            }
            #expect(await code { try await controller.pin(device: "box-0", version: "v9") } == .unknownVersion)
            #expect(await code { try await controller.pin(device: "box-0", version: "a/b") } == .badVersionName)
            #expect(await code { try await controller.pin(device: "box/0", version: "v1") } == .badDeviceName)
            #expect(await code { try await controller.pin(device: "models", version: "v1") } == .badDeviceName)
            #expect(await code { _ = try await controller.unpin(device: "box-0") } == .rolloutState)
            // v1 and v2 are signed by the fixture's key; once it is revoked for the fleet, devices refuse them.
            let secondURL = fleet.fixture.scratch.url.appendingPathComponent("second.key")
            _ = try SigningKeyFile.createKeyPair(at: secondURL)
            let signingState = FleetSigningState(directory: fleet.fixture.registry.directory, fleet: "plant")
            _ = try signingState.revoke(
                [try fleet.fixture.signer().keyID], signingWith: try SigningKeyFile.readPrivateKey(from: secondURL))
            #expect(await code { try await controller.pin(device: "box-0", version: "v2") } == .signing)
            #expect(try controller.pins.read() == [:], "nothing was pinned")
            try await fleet.close()
        }
    }
}
