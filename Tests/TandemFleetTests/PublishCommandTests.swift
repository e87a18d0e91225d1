import Foundation
import TandemCore
import TandemFleet
import TandemFleetTestSupport
import TandemProtocol
import TandemTestSupport
import Testing

/// `tandem publish` and `tandem rollout` as processes, against a real mosquitto.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct PublishCommandTests {
    let tandem = BuiltProducts.executable("tandem")

    @Test("tandem publish registers, signs and retains the model; a rollout without a rollout is an error, exit 1")
    func publishAndRolloutErrors() async throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        let model = try fixture.file(try edgeArtifact(version: "v1"))
        let data = fixture.registry.directory.path
        try await MosquittoBroker.with { broker in
            let common = ["--fleet", "plant", "--data-dir", data, "--broker-url", "mqtt://localhost:\(broker.port)"]
            let published = try runCommand(
                tandem,
                [
                    "publish", model.path, "--key", fixture.keyURL.path, "--source", "initial", "--metric",
                    "macro_f1=0.7",
                    "--production", "--device", "box-1", "--actor", "ana",
                ] + common)
            #expect(published.status == 0, "\(published.standardError)")
            let record = try fixture.registry.record(version: "v1")
            #expect(record.source == "initial" && record.metrics["macro_f1"] == 0.7)
            #expect(try fixture.registry.productionVersion() == "v1")
            let assignment = try #require(
                try await ModelDistributorTests.retained("tandem/v1/plant/box-1/model", port: broker.port))
            #expect(try ModelAssignment(decoding: assignment.payload).sha256 == record.sha256)
            let audit = AuditLog(url: URL(fileURLWithPath: data).appendingPathComponent("audit.jsonl")).read()
            #expect(audit.records.map(\.action) == ["register", "publish", "assign", "production"])
            #expect(audit.records.allSatisfy { $0.actor == "ana" })

            let again = try runCommand(tandem, ["publish", model.path, "--key", fixture.keyURL.path] + common)
            #expect(again.status != 0 && again.standardError.contains("registered already"), "\(again.standardError)")
            let promote = try runCommand(tandem, ["rollout", "promote"] + common)
            #expect(promote.status != 0 && promote.standardError.contains("has no rollout"), "\(promote.standardError)")
            let noCohort = try runCommand(tandem, ["rollout", "start", "v1", "--detach"] + common)
            #expect(noCohort.status != 0 && noCohort.standardError.contains("already the production version"))
        }
    }
}
