import Foundation
import TandemCore
import TandemEdge
import TandemFleet
import TandemFleetTestSupport
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

/// Signed agent policies staged like models, against a real mosquitto and real edge agents in-process (`box-6` is
/// in the 50 % cohort, `box-0` is not): the canary takes the policy first, then the fleet; a policy that makes the
/// canary escalate far more than the rest is rolled back, and the canary is signed the previous policy again.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct PolicyRolloutTests {
    @Test("a policy reaches the canary, then the fleet; a bad one is rolled back by its canary")
    func stagedAndRolledBack() async throws {
        try await MosquittoBroker.with { broker in
            let fleet = try await RolloutEndToEndTests.Fleet(
                broker: broker, v1: try edgeArtifact(version: "v1"), v2: try edgeArtifact(version: "v2", seed: 2))
            let canary = fleet.canary
            let base = fleet.base
            let feeder = feed([canary, base])
            defer { feeder.cancel() }
            let monitor = fleet.monitor
            #expect(await waitUntil { (monitor.statuses["box-0"]?.windows ?? 0) >= 40 })
            let controller = PolicyController(
                directory: fleet.fixture.registry.directory, fleet: "plant", client: fleet.client,
                monitor: monitor, key: try SigningKeyFile.readPrivateKey(from: fleet.fixture.keyURL),
                audit: fleet.audit, actor: "ana")
            let staging = RolloutPolicy(
                canaryPercent: 50, soakSeconds: 1, maximumEscalationRateIncrease: 0.2, minimumCanaryWindows: 30)

            // A gentle policy: the canary first, the rest only after promotion.
            let started = try await controller.start(
                version: "p1", settings: AgentPolicy.Settings(threshold: 0.55, maxEscalationsPerSecond: 5000),
                policy: staging)
            #expect(started.cohort == ["box-6"] && started.previousVersion == PolicyBook.local)
            #expect(await waitUntil { monitor.statuses["box-6"]?.policyVersion == "p1" })
            #expect(monitor.statuses["box-6"]?.threshold == 0.55, "the canary runs the policy's threshold")
            #expect(monitor.statuses["box-0"]?.policyVersion == nil && monitor.statuses["box-0"]?.threshold == 0.6)
            let promoted = try await controller.run(interval: .milliseconds(100))
            #expect(promoted?.phase == .promoted, "\(String(describing: promoted))")
            #expect(await waitUntil { monitor.statuses["box-0"]?.policyVersion == "p1" })
            #expect(monitor.statuses["box-0"]?.policyUpdate == .active("p1"))
            #expect(try controller.book().production == "p1")

            // A box that comes online later is signed the production policy by the desired state.
            let late = try RunningAgent(
                device: "box-9", port: broker.port, directory: fleet.fixture.scratch.url,
                model: try fleet.fixture.registry.artifactBytes(version: "v1"), trustedKey: fleet.fixture.publicKeyPath)
            #expect(await waitUntil { monitor.statuses["box-9"]?.state == .online })
            let due = try await controller.reconcile()
            #expect(due == ["p1": ["box-9"]], "\(due)")
            #expect(await waitUntil(.seconds(10)) { monitor.statuses["box-9"]?.policyVersion == "p1" })
            #expect(try await controller.reconcile() == [:], "nothing is sent twice")
            try await late.stop()

            // A policy that escalates every window: its canary escalates far more than box-0, and it goes back.
            let bad = try await controller.start(
                version: "p2", settings: AgentPolicy.Settings(threshold: 1, maxEscalationsPerSecond: 100_000),
                policy: staging)
            #expect(bad.cohort == ["box-6"] && bad.previousVersion == "p1")
            let finished = try await controller.run(interval: .milliseconds(100))
            #expect(finished?.phase == .rolledBack, "\(String(describing: finished))")
            #expect(finished?.endReason?.contains("escalation rate") == true, "\(finished?.endReason ?? "")")
            #expect(await waitUntil { monitor.statuses["box-6"]?.policyVersion == "p1" })
            #expect(monitor.statuses["box-6"]?.threshold == 0.55)
            #expect(monitor.statuses["box-0"]?.policyVersion == "p1", "the rest never saw p2")
            #expect(try controller.book().production == "p1")
            let actions = fleet.audit.read().records.map(\.action).filter { $0.hasPrefix("policy-") }
            #expect(
                actions == [
                    "policy-start", "policy-promote", "policy-desired-state", "policy-start", "policy-rollback",
                ], "\(actions)")

            feeder.cancel()
            try await fleet.close()
        }
    }
}
