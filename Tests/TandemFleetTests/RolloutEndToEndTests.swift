import Foundation
import TandemCore
import TandemEdge
import TandemFleet
import TandemFleetTestSupport
import TandemMQTT
import TandemTestSupport
import Testing

/// Staged rollouts against a real mosquitto and real edge agents running in-process: `box-6` falls in the
/// 50 % canary cohort (bucket 1857), `box-0` does not (bucket 5382).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct RolloutEndToEndTests {
    /// A registry with `v1` in production and `v2` registered, a broker, the two agents serving v1 and a
    /// controller for fleet `plant`.
    struct Fleet {
        let fixture: RegistryFixture
        let canary: RunningAgent
        let base: RunningAgent
        let client: MQTTClient
        let monitor: FleetMonitor
        let controller: RolloutController
        let audit: AuditLog

        init(broker: MosquittoBroker, v1: ModelArtifact, v2: ModelArtifact) async throws {
            fixture = try RegistryFixture()
            try fixture.register(v1, source: "initial")
            try fixture.register(v2, source: "retrain")
            audit = AuditLog(url: fixture.registry.directory.appendingPathComponent("audit.jsonl"))
            client = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: "cloud"))
            try await client.connect()
            let distributor = ModelDistributor(client: client, fleet: "plant", signer: try fixture.signer())
            try await distributor.publish(
                version: "v1", from: fixture.registry, audit: audit, actor: "ana", assigningTo: ["box-0", "box-6"],
                production: true)
            let v1Bytes = try fixture.registry.artifactBytes(version: "v1")
            canary = try RunningAgent(
                device: "box-6", port: broker.port, directory: fixture.scratch.url, model: v1Bytes,
                trustedKey: fixture.publicKeyPath)
            base = try RunningAgent(
                device: "box-0", port: broker.port, directory: fixture.scratch.url, model: v1Bytes,
                trustedKey: fixture.publicKeyPath)
            monitor = try await FleetMonitor(client: client, fleet: "plant")
            controller = RolloutController(
                registry: fixture.registry, distributor: distributor, monitor: monitor, audit: audit, actor: "ana")
            let monitor = self.monitor
            #expect(
                await waitUntil {
                    ["box-0", "box-6"].allSatisfy { monitor.statuses[$0]?.modelUpdate == .active("v1") }
                }, "\(monitor.statuses)")
        }

        /// Drives the rollout until it finishes or `limit` passes.
        func drive(limit: Duration = .seconds(30)) async throws -> Rollout? {
            let controller = self.controller
            let driver = Task { try await controller.run(interval: .milliseconds(100)) }
            let timeout = Task {
                try? await Task.sleep(for: limit)
                driver.cancel()
            }
            defer { timeout.cancel() }
            return try await driver.value
        }

        func close() async throws {
            try await canary.stop()
            try await base.stop()
            monitor.stop()
            await client.disconnect()
            fixture.scratch.remove()
        }
    }

    @Test("the canary agent takes the signed candidate and reports it active; after the soak the fleet is promoted")
    func promotes() async throws {
        try await MosquittoBroker.with { broker in
            let fleet = try await Fleet(
                broker: broker, v1: try edgeArtifact(version: "v1"), v2: try edgeArtifact(version: "v2", seed: 2))
            let started = try await fleet.controller.start(
                version: "v2", policy: RolloutPolicy(canaryPercent: 50, soakSeconds: 0.5, minimumCanaryWindows: 0))
            #expect(started.cohort == ["box-6"] && started.others == ["box-0"] && started.phase == .canary)
            // Only the canary moves during the canary.
            #expect(await waitUntil { fleet.canary.agent.classifier.modelVersion == "v2" })
            #expect(fleet.base.agent.classifier.modelVersion == "v1")

            let finished = try await fleet.drive()
            #expect(finished?.phase == .promoted, "\(String(describing: finished))")
            #expect(try fleet.fixture.registry.productionVersion() == "v2")
            #expect(await waitUntil { fleet.base.agent.classifier.modelVersion == "v2" })
            #expect(await waitUntil { fleet.monitor.statuses["box-0"]?.modelUpdate == .active("v2") })
            #expect(try ModelArtifact.read(from: URL(fileURLWithPath: fleet.canary.modelPath)).manifest.version == "v2")
            let records = fleet.audit.read().records
            #expect(records.map(\.action) == ["publish", "assign", "production", "rollout-start", "rollout-promote"])
            #expect(records[3].devices == ["box-6"] && records[3].actor == "ana")
            #expect(records[4].devices == ["box-0"] && records[4].actor == "rollout")
            #expect(try await fleet.controller.current()?.phase == .promoted)
            try await fleet.close()
        }
    }

    @Test(
        "a candidate that escalates far more than the baseline is rolled back and the canary agent takes v1 again (a signed rollback)"
    )
    func rollsBack() async throws {
        try await MosquittoBroker.with { broker in
            // v1 is sure of every window; v2's near-zero weights give uniform probabilities, all below 0.6.
            let fleet = try await Fleet(
                broker: broker, v1: try edgeArtifact(version: "v1", scale: 20),
                v2: try edgeArtifact(version: "v2", seed: 2, scale: 0.0001))
            let canary = fleet.canary
            let base = fleet.base
            let feeder = feed([canary, base])
            defer { feeder.cancel() }
            #expect(await waitUntil { (fleet.monitor.statuses["box-0"]?.windows ?? 0) >= 40 })

            let started = try await fleet.controller.start(
                version: "v2",
                policy: RolloutPolicy(
                    canaryPercent: 50, soakSeconds: 600, maximumEscalationRateIncrease: 0.2, minimumCanaryWindows: 30))
            #expect(started.cohort == ["box-6"])
            let finished = try await fleet.drive()
            #expect(finished?.phase == .rolledBack, "\(String(describing: finished))")
            #expect(finished?.endReason?.contains("escalation rate") == true, "\(finished?.endReason ?? "")")
            let observed = try #require(finished?.lastObservation)
            #expect((observed.canaryEscalationRate ?? 0) > 0.9 && (observed.baselineEscalationRate ?? 1) < 0.1)

            // The canary ran v2, and is back on v1, from the file as well.
            #expect(await waitUntil { fleet.monitor.statuses["box-6"]?.modelUpdate == .active("v1") })
            #expect(canary.agent.classifier.modelVersion == "v1")
            #expect(try ModelArtifact.read(from: URL(fileURLWithPath: canary.modelPath)).manifest.version == "v1")
            #expect(
                try ModelArtifact.read(from: URL(fileURLWithPath: canary.modelPath + ".previous")).manifest.version
                    == "v2")
            #expect(base.agent.classifier.modelVersion == "v1")
            #expect(try fleet.fixture.registry.productionVersion() == "v1")
            let last = try #require(fleet.audit.read().records.last)
            #expect(last.action == "rollout-rollback" && last.version == "v1" && last.devices == ["box-6"])
            #expect(last.actor == "rollout")
            feeder.cancel()
            try await fleet.close()
        }
    }

    @Test("a phased rollout's step assigns the candidate to the devices it adds (rollout-step), then promotes")
    func phasedPromotes() async throws {
        try await MosquittoBroker.with { broker in
            let fleet = try await Fleet(
                broker: broker, v1: try edgeArtifact(version: "v1"), v2: try edgeArtifact(version: "v2", seed: 2))
            let started = try await fleet.controller.start(
                version: "v2",
                policy: RolloutPolicy(
                    canaryPercent: 50, soakSeconds: 0.5, minimumCanaryWindows: 0, steps: [100], stepSeconds: 0.5))
            #expect(started.cohort == ["box-6"] && started.step == 0)

            let finished = try await fleet.drive()
            #expect(finished?.phase == .promoted && finished?.step == 1, "\(String(describing: finished))")
            #expect(try fleet.fixture.registry.productionVersion() == "v2")
            #expect(await waitUntil { fleet.monitor.statuses["box-0"]?.modelUpdate == .active("v2") })
            let records = fleet.audit.read().records
            #expect(
                records.map(\.action) == [
                    "publish", "assign", "production", "rollout-start", "rollout-step", "rollout-promote",
                ])
            #expect(records[4].devices == ["box-0"] && records[4].actor == "rollout" && records[4].version == "v2")
            #expect(records[5].devices.isEmpty, "the last step moved every device")
            try await fleet.close()
        }
    }

    @Test("rolling back a phased rollout at its second stage returns every moved device to v1 (signed rollbacks)")
    func phasedRollsBackEveryMovedDevice() async throws {
        try await MosquittoBroker.with { broker in
            let fleet = try await Fleet(
                broker: broker, v1: try edgeArtifact(version: "v1"), v2: try edgeArtifact(version: "v2", seed: 2))
            _ = try await fleet.controller.start(
                version: "v2",
                policy: RolloutPolicy(
                    canaryPercent: 50, soakSeconds: 0.2, minimumCanaryWindows: 0, steps: [100], stepSeconds: 600))
            var step = 0
            let deadline = ContinuousClock.now + .seconds(30)
            while step < 1, ContinuousClock.now < deadline {
                step = try await fleet.controller.step()?.step ?? 0
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(step == 1)
            #expect(await waitUntil { fleet.base.agent.classifier.modelVersion == "v2" })
            #expect(await waitUntil { fleet.canary.agent.classifier.modelVersion == "v2" })
            #expect(try await fleet.controller.current()?.phase == .canary)

            let rolledBack = try await fleet.controller.rollBack(reason: "drill")
            #expect(rolledBack.phase == .rolledBack && rolledBack.endReason == "step 1 (100.0 %): drill")
            #expect(await waitUntil { fleet.base.agent.classifier.modelVersion == "v1" })
            #expect(await waitUntil { fleet.canary.agent.classifier.modelVersion == "v1" })
            let last = try #require(fleet.audit.read().records.last)
            #expect(last.action == "rollout-rollback" && last.version == "v1" && last.devices == ["box-0", "box-6"])
            #expect(try fleet.fixture.registry.productionVersion() == "v1")
            try await fleet.close()
        }
    }
}
