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
            let promote = try runCommand(tandem, ["rollout", "promote", "--key", fixture.keyURL.path] + common)
            #expect(promote.status != 0 && promote.standardError.contains("has no rollout"), "\(promote.standardError)")
            let noCohort = try runCommand(
                tandem, ["rollout", "start", "v1", "--detach", "--key", fixture.keyURL.path] + common)
            #expect(noCohort.status != 0 && noCohort.standardError.contains("already the production version"))
        }
    }

    @Test(
        "each tandem command continues the fleet's sequence; tandem revoke-key publishes the signed list and the revoked key can no longer publish"
    )
    func sequenceAndRevocationAcrossCommands() async throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        let data = fixture.registry.directory.path
        let newKey = fixture.scratch.url.appendingPathComponent("new.key")
        let (newPublic, newID) = try SigningKeyFile.createKeyPair(at: newKey)
        try await MosquittoBroker.with { broker in
            let common = ["--fleet", "plant", "--data-dir", data, "--broker-url", "mqtt://localhost:\(broker.port)"]
            func publish(_ version: String, key: URL, _ extra: [String] = []) throws -> CommandResult {
                let model = try fixture.file(try edgeArtifact(version: version, seed: UInt64(version.count)))
                return try runCommand(tandem, ["publish", model.path, "--key", key.path] + extra + common)
            }
            func assignment() async throws -> ModelAssignment {
                let message = try #require(
                    try await ModelDistributorTests.retained("tandem/v1/plant/box-1/model", port: broker.port))
                return try ModelAssignment(decoding: message.payload)
            }
            let first = try publish("v1", key: fixture.keyURL, ["--production", "--device", "box-1"])
            #expect(first.status == 0, "\(first.standardError)")
            #expect(try await assignment().terms?.sequence == 1)
            let second = try publish("v22", key: fixture.keyURL, ["--device", "box-1"])
            #expect(second.status == 0, "\(second.standardError)")
            let terms = try #require(try await assignment().terms)
            #expect(terms.sequence == 2 && terms.release == 2)

            let oldID = try fixture.registry.record(version: "v1").keyID
            let revoke = try runCommand(
                tandem, ["revoke-key", fixture.publicKeyPath, "--key", newKey.path] + common)
            #expect(revoke.status == 0, "\(revoke.standardError)")
            let message = try #require(
                try await ModelDistributorTests.retained("tandem/v1/plant/keys/revocations", port: broker.port))
            let list = try KeyRevocationList(decoding: message.payload)
            #expect(list.revokedKeyIDs == [oldID] && list.sequence == 1 && list.signature?.keyIDHex == newID)
            let carried = try #require(list.signature)
            try TrustedKeys.read(paths: [newPublic.path]).verify(
                try #require(ArtifactSignature(keyID: carried.keyID, signature: carried.signature)),
                over: list.signedBytes)

            let refused = try publish("v333", key: fixture.keyURL, ["--device", "box-1"])
            #expect(refused.status != 0 && refused.standardError.contains("revoked"), "\(refused.standardError)")
            #expect(try fixture.registry.productionVersion() == "v1")
            #expect(!fixture.registry.list().versions.map(\.version).contains("v333"))
            let rotated = try publish("v333", key: newKey, ["--device", "box-1"])
            #expect(rotated.status == 0, "\(rotated.standardError)")
            let last = try await assignment()
            #expect(last.terms?.sequence == 3 && last.signature?.keyIDHex == newID)
        }
    }

    struct RefusedBroker: Sendable, CustomTestStringConvertible {
        let arguments: [String]
        /// What standard error must say: the flag at fault and the problem.
        let says: [String]
        var testDescription: String { arguments.joined(separator: " ") }
    }

    @Test(
        "tandem publish refuses broker settings it cannot use before it registers or signs anything",
        arguments: [
            RefusedBroker(
                arguments: ["--broker-url", "http://localhost:1883"],
                says: ["--broker-url", "unsupported scheme 'http'"]),
            RefusedBroker(
                arguments: ["--broker-url", "mqtts://localhost:8883"], says: ["--broker-ca-file", "needs a CA file"]),
            RefusedBroker(
                arguments: ["--broker-url", "mqtt://localhost:1", "--broker-ca-file", "ca.pem"],
                says: ["--broker-ca-file", "plain TCP"]),
            RefusedBroker(
                arguments: [
                    "--broker-url", "mqtt://localhost:1", "--username", "u", "--password-file", "/nonexistent",
                ],
                says: ["--password-file", "'/nonexistent': No such file or directory"]),
        ])
    func publishRefusesBrokerFirst(_ refused: RefusedBroker) throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        let model = try fixture.file(try edgeArtifact(version: "v1"))
        let data = fixture.registry.directory.path
        let result = try runCommand(
            tandem,
            ["publish", model.path, "--key", fixture.keyURL.path, "--fleet", "plant", "--data-dir", data]
                + refused.arguments)
        #expect(result.status != 0)
        for text in refused.says {
            #expect(result.standardError.contains(text), "\(result.standardError)")
        }
        #expect(fixture.registry.list().versions.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: data + "/audit.jsonl"))
    }

    @Test("tandem rollout pin|unpin: a pin is kept and assigned, listed by status; bad pins exit 1 with the reason")
    func pinAndUnpinCommands() async throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        try fixture.register(try edgeArtifact(version: "v1"), source: "initial")
        try fixture.registry.setProduction("v1")
        let data = fixture.registry.directory.path
        try await MosquittoBroker.with { broker in
            let common = ["--fleet", "plant", "--data-dir", data, "--broker-url", "mqtt://localhost:\(broker.port)"]
            let signed = common + ["--key", fixture.keyURL.path]
            let pinned = try runCommand(tandem, ["rollout", "pin", "box-1", "v1"] + signed)
            #expect(pinned.status == 0, "\(pinned.standardError)")
            #expect(try DevicePins(directory: fixture.registry.directory, fleet: "plant").read() == ["box-1": "v1"])
            let assignment = try #require(
                try await ModelDistributorTests.retained("tandem/v1/plant/box-1/model", port: broker.port))
            #expect(try ModelAssignment(decoding: assignment.payload).version == "v1")
            let status = try runCommand(tandem, ["rollout", "status"] + common)
            #expect(status.standardOutput.contains("pinned: box-1 on v1"), "\(status.standardOutput)")

            let refusals: [([String], String)] = [
                (["pin", "box-2", "v9"], "not registered"),
                (["pin", "box/2", "v1"], "letters, digits"),
                (["unpin", "box-2"], "not pinned"),
            ]
            for (arguments, reason) in refusals {
                let refused = try runCommand(tandem, ["rollout"] + arguments + signed)
                #expect(refused.status == 1, "\(arguments)")
                #expect(refused.standardError.contains(reason), "\(arguments): \(refused.standardError)")
            }
            let unpinned = try runCommand(tandem, ["rollout", "unpin", "box-1"] + signed)
            #expect(unpinned.status == 0, "\(unpinned.standardError)")
            #expect(try DevicePins(directory: fixture.registry.directory, fleet: "plant").read() == [:])
            let help = try runCommand(tandem, ["rollout", "pin", "--help"])
            // The help is wrapped to the terminal's width: compare with single spaces.
            let words = help.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(words.contains("{data-dir}/pins-{fleet}.json"), "\(words)")
            #expect(words.contains("Rollouts leave it out"), "\(words)")
        }
    }

    @Test("the CLI speaks mqtts: tandem rollout status with --broker-ca-file and a client certificate")
    func rolloutStatusOverTLS() async throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        let options = MosquittoBroker.Options(tls: true, requireClientCertificate: true)
        try await MosquittoBroker.with(options) { broker in
            let certificates = try #require(broker.certificates)
            func status(caFile: String) throws -> CommandResult {
                try runCommand(
                    tandem,
                    [
                        "rollout", "status", "--fleet", "plant", "--data-dir", fixture.registry.directory.path,
                        "--broker-url", "mqtts://\(broker.host):\(broker.port)", "--broker-ca-file", caFile,
                        "--broker-cert-file", certificates.clientCertificateFile, "--broker-key-file",
                        certificates.clientKeyFile,
                    ])
            }
            let good = try status(caFile: certificates.caFile)
            #expect(good.status == 0, "\(good.standardError)")
            #expect(good.standardOutput.contains("no rollout"), "\(good.standardOutput)")
            let wrongCA = try status(caFile: certificates.wrongCAFile)
            #expect(wrongCA.status != 0 && wrongCA.standardError.contains("tlsFailure"), "\(wrongCA.standardError)")
        }
    }
}
