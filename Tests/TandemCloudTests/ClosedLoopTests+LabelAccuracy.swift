import Foundation
import TandemCloud
import TandemCore
import TandemFleet
import TandemTestSupport
import Testing

extension ClosedLoopTests {
    @Test("a trainer driving a canary feeds it the stored label accuracy and rolls back a candidate that is worse")
    func canaryRolledBackOnLabelAccuracy() async throws {
        let fixture = try LoopFixture.shared.get()
        try await fixture.withBroker { broker, install, scratch in
            // A retrained candidate (the same weights under another version) in canary on both devices, as a
            // trainer that stopped leaves it.
            var candidate = fixture.edge
            candidate.manifest.version = "edge-2"
            let incoming = scratch.url.appendingPathComponent("edge-2.tandem")
            try candidate.write(to: incoming)
            try install.registry.register(
                artifactAt: incoming, signingKey: try SigningKeyFile.readPrivateKey(from: install.signingKey),
                lineage: ModelLineage(source: "retrain"))
            let started = Date().addingTimeInterval(-5)
            var rollout = try Rollout.plan(
                fleet: Self.fleet, version: "edge-2", previousVersion: "edge-1", devices: ["press-1", "press-2"],
                policy: RolloutPolicy(canaryPercent: 100, soakSeconds: 3600, minimumLabelledWindows: 20),
                now: started)
            _ = try rollout.start(now: started)
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .secondsSince1970
            let state = install.dataDirectory.appendingPathComponent("rollout-\(Self.fleet).json")
            try encoder.encode(rollout).write(to: state)
            // Since the canary started: the old version right on 24 of 25 labelled escalations, the candidate on 10.
            let now = Date()
            try CanaryLabelAccuracyTests.store(
                install.store, model: "edge-1", at: now, count: 25, labelled: 25, correct: 24, device: "press-1",
                fleet: Self.fleet)
            try CanaryLabelAccuracyTests.store(
                install.store, model: "edge-2", at: now, count: 30, labelled: 25, correct: 10, device: "press-2",
                fleet: Self.fleet)

            let worker = try ChildProcess(
                cloud,
                trainerArguments(
                    install, port: broker.port, hardExamples: 0,
                    extra: ["--retrain-drift-min-windows", "0", "--rollout-interval", "0.25"]),
                errorURL: scratch.url.appendingPathComponent("cloud.log"))
            #expect(
                await waitUntil(.seconds(30)) { worker.log.contains("rolled back") || !worker.process.isRunning },
                "\(worker.log)")
            #expect(worker.log.contains("resuming the canary of edge-2"), "\(worker.log)")
            #expect(
                worker.log.contains(
                    "edge-2 rolled back: label accuracy 40.0 % of edge-2 on 25 labelled windows is below the baseline "
                        + "96.0 % on 25 labelled windows"), "\(worker.log)")
            let after = try Rollout.read(from: state)
            #expect(after.phase == .rolledBack)
            #expect(try install.registry.productionVersion() == "edge-1")
            let audit = AuditLog(url: install.dataDirectory.appendingPathComponent("audit.jsonl")).read().records
            let rollback = try #require(audit.last)
            #expect(rollback.action == "rollout-rollback" && rollback.actor == "rollout", "\(audit)")
            #expect(rollback.version == "edge-1" && rollback.devices == ["press-1", "press-2"])
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }
}
