import Foundation
import TandemCore
import TandemFleet
import TandemFleetTestSupport
import TandemTestSupport
import Testing

/// The registry on real files with real Ed25519 keys.
struct ModelRegistryTests {
    @Test("registered versions round-trip: signed by the key, lineage and metrics recorded, listed oldest first")
    func roundTrip() throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        let registry = fixture.registry
        let first = try fixture.register(try edgeArtifact(version: "v1"), source: "initial")
        try registry.setProduction("v1")
        let second = try registry.register(
            artifactAt: try fixture.file(try edgeArtifact(version: "v2", seed: 2)),
            signingKey: try SigningKeyFile.readPrivateKey(from: fixture.keyURL),
            lineage: ModelLineage(source: "retrain", parentVersion: "v1", metrics: ["macro_f1": 0.8]))

        #expect(try registry.productionVersion() == "v1")
        let listing = registry.list()
        #expect(listing.problems.isEmpty, "\(listing.problems)")
        #expect(listing.versions.map(\.version) == ["v1", "v2"])
        #expect(try registry.record(version: "v2") == second)
        #expect(second.parentVersion == "v1" && second.source == "retrain" && first.source == "initial")
        #expect(second.metrics == ["test_accuracy": 0.9, "macro_f1": 0.8])

        // The stored file is what the record describes, and a device trusting the key accepts it.
        let bytes = try registry.artifactBytes(version: "v2")
        #expect(bytes.count == second.size && ModelArtifact.fileDigestHex(bytes) == second.sha256)
        let key = try SigningKeyFile.readPublicKey(from: URL(fileURLWithPath: fixture.publicKeyPath))
        let artifact = try ModelArtifact(bytes: bytes, trustedKeys: [key], requireSignature: true)
        #expect(artifact.signature?.keyIDHex == second.keyID)
        #expect(second.keyID == ArtifactSignature.keyIDHex(for: key))
    }

    @Test("an artifact whose input differs from production is refused unless forced; a duplicate version always")
    func refusesIncompatible() throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        try fixture.register(try edgeArtifact(version: "v1"), source: "initial")
        try fixture.registry.setProduction("v1")

        let wide = try edgeArtifact(version: "v2", channels: 4)
        #expect {
            try fixture.register(wide)
        } throws: { ($0 as? RegistryError)?.code == .incompatible && "\($0)".contains("channels 4 ≠ 3") }
        #expect(!FileManager.default.fileExists(atPath: fixture.registry.artifactURL(version: "v2").path))
        #expect(try fixture.register(wide, force: true).version == "v2")

        #expect {
            try fixture.register(try edgeArtifact(version: "v1", seed: 5))
        } throws: { ($0 as? RegistryError)?.code == .duplicateVersion }
        #expect(fixture.registry.list().versions.map(\.version) == ["v1", "v2"])
    }

    @Test("corrupt artifacts and ones failing their self-test are refused and leave nothing behind")
    func refusesCorrupt() throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        var bytes = try edgeArtifact(version: "v1").serialized()
        bytes[bytes.count / 2] ^= 0x20
        let corrupt = fixture.scratch.url.appendingPathComponent("corrupt.tandem")
        try Data(bytes).write(to: corrupt)
        let key = try SigningKeyFile.readPrivateKey(from: fixture.keyURL)
        #expect {
            try fixture.registry.register(artifactAt: corrupt, signingKey: key, lineage: ModelLineage(source: "x"))
        } throws: { ($0 as? RegistryError)?.code == .badArtifact && ($0 as? RegistryError)?.path == corrupt.path }

        var wrongGolden = try edgeArtifact(version: "v1")
        wrongGolden.goldenOutputs = Tensor(
            shape: wrongGolden.goldenOutputs.shape,
            scalars: [Float](repeating: 7, count: wrongGolden.goldenOutputs.shape.reduce(1, *)))
        #expect {
            try fixture.register(wrongGolden)
        } throws: { ($0 as? RegistryError)?.code == .badArtifact && "\($0)".contains("would not load") }

        let listing = fixture.registry.list()
        #expect(listing.versions.isEmpty && listing.problems.isEmpty)
    }

    @Test("bad files in the models directory are reported with their path and skipped")
    func badFilesAreSkipped() throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        try fixture.register(try edgeArtifact(version: "good"))
        try fixture.register(try edgeArtifact(version: "shrunk", seed: 3))
        let models = fixture.registry.modelsDirectory
        try Data("{not json".utf8).write(to: models.appendingPathComponent("broken.json"))
        try Data("hello".utf8).write(to: models.appendingPathComponent("notes.txt"))
        try Data([1, 2, 3]).write(to: models.appendingPathComponent("orphan.tandem"))
        try Data([1, 2, 3]).write(to: fixture.registry.artifactURL(version: "shrunk"))

        let listing = fixture.registry.list()
        #expect(listing.versions.map(\.version) == ["good"])
        let paths = Set(listing.problems.map { URL(fileURLWithPath: $0.path).lastPathComponent })
        #expect(paths == ["broken.json", "notes.txt", "orphan.tandem", "shrunk.json"], "\(listing.problems)")
        #expect(listing.problems.allSatisfy { $0.path.hasPrefix(models.path) && !$0.message.isEmpty })
        #expect { try fixture.registry.artifactBytes(version: "shrunk") } throws: {
            ($0 as? RegistryError)?.code == .unknownVersion
        }
    }

    @Test("the audit log appends one synced JSON line per record; readers skip and count corrupt lines")
    func auditLog() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("audit.jsonl")
        let log = AuditLog(url: url)
        try log.append(AuditRecord(actor: "ana", action: "publish", version: "v1", reason: "first"))
        try log.append(
            AuditRecord(actor: "rollout", action: "rollout-rollback", version: "v1", devices: ["a", "b"], reason: "r"))
        // A torn write and a foreign line, then a good record after them.
        let handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
        handle.write(Data("{\"actor\":\"x\",\"act\n[1,2]\n".utf8))
        try handle.close()
        try log.append(AuditRecord(actor: "ana", action: "rollout-promote", version: "v2", reason: "ok"))

        let (records, corrupt) = log.read()
        #expect(corrupt == 2)
        #expect(records.map(\.action) == ["publish", "rollout-rollback", "rollout-promote"])
        #expect(records[1].devices == ["a", "b"] && records[1].actor == "rollout")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 5)
    }
}
