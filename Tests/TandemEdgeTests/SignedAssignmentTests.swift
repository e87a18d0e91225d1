import Foundation
import Synchronization
import TandemCore
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

@testable import TandemEdge

/// Signed assignments and key revocation against a real mosquitto and a real agent: each attack is made on the
/// broker, the refusal is read from the device's retained status, and the serving model is checked unchanged.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct SignedAssignmentTests {
    /// A broker-side view of one device: its artifacts retained, assignments and lists published as the cloud
    /// (or an attacker with the cloud's broker rights) would, the device's last status.
    final class Cloud: Sendable {
        /// The device's last status message.
        final class LastStatus: Sendable {
            let text = Mutex("")
        }

        let client: MQTTClient
        let last = LastStatus()
        let statusTask: Task<Void, Never>

        init(port: Int) async throws {
            client = try MQTTClient(configuration: MQTTClientConfiguration(port: port, clientID: "cloud"))
            try await client.connect()
            let statuses = try await client.subscribe(to: "tandem/v1/test/box1/status")
            let last = self.last
            statusTask = Task {
                for await message in statuses { last.text.withLock { $0 = message.payloadString } }
            }
        }

        /// Retains `artifact` where the device fetches `version`, and returns its bytes.
        func retain(_ artifact: ModelArtifact) async throws -> [UInt8] {
            let bytes = artifact.serialized()
            try await publish("tandem/v1/test/models/\(artifact.manifest.version)", bytes)
            return bytes
        }

        func publish(_ topic: String, _ payload: [UInt8]) async throws {
            let result = try await client.publish(
                MQTTMessage(topic: topic, payload: payload, qos: .atLeastOnce, retain: true))
            #expect(result.isAccepted)
        }

        func assign(_ assignment: ModelAssignment) async throws {
            try await publish("tandem/v1/test/box1/model", assignment.encoded())
        }

        /// Whether the device's status comes to contain `text`.
        func statusShows(_ text: String) async -> Bool {
            await waitUntil(.seconds(30)) { self.last.text.withLock { $0.contains(text) } }
        }

        var status: String { last.text.withLock { $0 } }

        /// Forgets the last status, so the next check sees only what comes after.
        func forgetStatus() { last.text.withLock { $0 = "" } }

        func close() async {
            statusTask.cancel()
            await client.disconnect()
        }
    }

    /// Keys: `old` and `new` trusted (a rotation), `rogue` not; the agent's configuration trusting both.
    struct Setup {
        let scratch: ScratchDirectory
        let old: URL
        let new: URL
        let rogue: URL
        let oldID: String
        let newID: String
        let modelPath: String
        let configuration: AgentConfiguration

        init(port: Int) throws {
            scratch = try ScratchDirectory()
            old = scratch.url.appendingPathComponent("old.key")
            new = scratch.url.appendingPathComponent("new.key")
            rogue = scratch.url.appendingPathComponent("rogue.key")
            oldID = try SigningKeyFile.createKeyPair(at: old).keyID
            newID = try SigningKeyFile.createKeyPair(at: new).keyID
            try SigningKeyFile.createKeyPair(at: rogue)
            modelPath = scratch.url.appendingPathComponent("model.tandem").path
            try Self.artifact("v1", signedBy: old).write(to: URL(fileURLWithPath: modelPath))
            var configuration = linkedConfiguration(
                port: port, directory: scratch.url.path, modelPath: modelPath)
            configuration.model.trustedKeys = [old.path + ".pub", new.path + ".pub"]
            self.configuration = configuration
        }

        static func artifact(_ version: String, signedBy key: URL) throws -> ModelArtifact {
            try TestModel.artifact(seed: UInt64(version.utf8.last ?? 1), version: version)
                .signed(with: try SigningKeyFile.readPrivateKey(from: key))
        }

        func artifact(_ version: String, signedBy key: URL) throws -> ModelArtifact {
            try Self.artifact(version, signedBy: key)
        }

        /// Starts the agent and waits until it is connected.
        func start() async throws -> RunningLinkedAgent {
            let (agent, source, _, run) = try LinkTests().startAgent(configuration)
            #expect(await waitUntil { agent.link?.client.connectionState.isConnected == true })
            return RunningLinkedAgent(agent: agent, source: source, run: run)
        }
    }

    struct RunningLinkedAgent {
        let agent: EdgeAgent
        let source: PushSource
        let run: Task<Void, any Error>

        var version: String { agent.classifier.modelVersion }

        func stop() async throws {
            source.stop()
            try await run.value
        }
    }

    @Test("unsigned, forged and replayed assignments are refused and v2 keeps serving, also after a restart")
    func refusesUnsignedForgedAndReplayed() async throws {
        try await MosquittoBroker.with { broker in
            let setup = try Setup(port: broker.port)
            defer { setup.scratch.remove() }
            let cloud = try await Cloud(port: broker.port)
            let v2 = try await cloud.retain(try setup.artifact("v2", signedBy: setup.old))
            let v3 = try await cloud.retain(try setup.artifact("v3", signedBy: setup.old))
            // Signed now, delivered later: the attacker's replay.
            let older = try signedAssignment(of: v3, version: "v3", keyURL: setup.old, sequence: 1)
            var agent = try await setup.start()

            try await cloud.assign(
                ModelAssignment(version: "v2", sha256: ModelArtifact.fileDigestHex(v2), size: v2.count))
            #expect(await cloud.statusShows("rejected v2: unsigned"), "\(cloud.status)")
            try await cloud.assign(try signedAssignment(of: v2, version: "v2", keyURL: setup.rogue, sequence: 2))
            #expect(await cloud.statusShows("rejected v2: untrusted"), "\(cloud.status)")
            var forged = try signedAssignment(of: v3, version: "v3", keyURL: setup.old, sequence: 2)
            forged.terms?.rollback = true
            try await cloud.assign(forged)
            #expect(await cloud.statusShows("rejected v3: untrusted"), "\(cloud.status)")
            #expect(agent.version == "v1")

            try await cloud.assign(try signedAssignment(of: v2, version: "v2", keyURL: setup.old, sequence: 2))
            #expect(await cloud.statusShows("active v2"), "\(cloud.status)")
            #expect(agent.version == "v2")
            try await cloud.assign(older)
            #expect(await cloud.statusShows("rejected v3: replayed"), "\(cloud.status)")
            #expect(agent.version == "v2")

            // A restart: the record next to the model keeps the sequence; the retained replay is refused again.
            try await agent.stop()
            #expect(try AssignmentRecord.read(from: setup.modelPath + ".assignment").sequence == 2)
            cloud.forgetStatus()
            agent = try await setup.start()
            #expect(await cloud.statusShows("rejected v3: replayed"), "\(cloud.status)")
            #expect(agent.version == "v2")
            try await agent.stop()
            await cloud.close()
        }
    }

    @Test("an expired assignment is refused; an older version needs a newer-sequence signed rollback, which is taken")
    func expiryAndRollback() async throws {
        try await MosquittoBroker.with { broker in
            let setup = try Setup(port: broker.port)
            defer { setup.scratch.remove() }
            let cloud = try await Cloud(port: broker.port)
            let v1 = try await cloud.retain(try setup.artifact("v1", signedBy: setup.old))
            let v2 = try await cloud.retain(try setup.artifact("v2", signedBy: setup.old))
            let v3 = try await cloud.retain(try setup.artifact("v3", signedBy: setup.old))
            let agent = try await setup.start()

            try await cloud.assign(try signedAssignment(of: v2, version: "v2", keyURL: setup.old, sequence: 2))
            #expect(await cloud.statusShows("active v2"), "\(cloud.status)")
            let past = UInt64(Date().timeIntervalSince1970) - 60
            try await cloud.assign(
                try signedAssignment(of: v3, version: "v3", keyURL: setup.old, sequence: 3, expiresAt: past))
            #expect(await cloud.statusShows("rejected v3: expired"), "\(cloud.status)")
            try await cloud.assign(
                try signedAssignment(of: v1, version: "v1", keyURL: setup.old, sequence: 4, release: 1))
            #expect(await cloud.statusShows("rejected v1: downgrade"), "\(cloud.status)")
            #expect(agent.version == "v2")
            try await cloud.assign(
                try signedAssignment(of: v1, version: "v1", keyURL: setup.old, sequence: 5, release: 1, rollback: true))
            #expect(await cloud.statusShows("active v1"), "\(cloud.status)")
            #expect(agent.version == "v1")
            #expect(try ModelArtifact.read(from: URL(fileURLWithPath: setup.modelPath)).manifest.version == "v1")
            try await agent.stop()
            await cloud.close()
        }
    }

    @Test(
        "after a signed revocation list, the revoked key's assignments and artifacts are refused, also after a restart, while the rotated-in key's are taken"
    )
    func keyRotationAndRevocation() async throws {
        try await MosquittoBroker.with { broker in
            let setup = try Setup(port: broker.port)
            defer { setup.scratch.remove() }
            let cloud = try await Cloud(port: broker.port)
            let v2 = try await cloud.retain(try setup.artifact("v2", signedBy: setup.old))
            let v3 = try await cloud.retain(try setup.artifact("v3", signedBy: setup.new))
            let v4 = try await cloud.retain(try setup.artifact("v4", signedBy: setup.old))
            let v5 = try await cloud.retain(try setup.artifact("v5", signedBy: setup.new))
            var agent = try await setup.start()

            // Before the revocation the old key is as good as the new one.
            try await cloud.assign(try signedAssignment(of: v2, version: "v2", keyURL: setup.old, sequence: 1))
            #expect(await cloud.statusShows("active v2"), "\(cloud.status)")

            let list = try signedRevocations([setup.oldID], sequence: 1, keyURL: setup.new)
            try await cloud.publish(ProtocolTopics.revocations(fleet: "test"), list.encoded())
            let recordPath = setup.modelPath + ".assignment"
            #expect(
                await waitUntil(.seconds(10)) {
                    (try? AssignmentRecord.read(from: recordPath).revokedKeyIDs) == [setup.oldID]
                })

            try await cloud.assign(try signedAssignment(of: v4, version: "v4", keyURL: setup.old, sequence: 2))
            #expect(await cloud.statusShows("rejected v4: revoked"), "\(cloud.status)")
            // The new key's assignment is taken, but not the revoked key's artifact it names.
            try await cloud.assign(try signedAssignment(of: v4, version: "v4", keyURL: setup.new, sequence: 3))
            #expect(await cloud.statusShows("rejected v4: untrusted"), "\(cloud.status)")
            #expect(cloud.status.contains("which is revoked"), "\(cloud.status)")
            try await cloud.assign(try signedAssignment(of: v3, version: "v3", keyURL: setup.new, sequence: 4))
            #expect(await cloud.statusShows("active v3"), "\(cloud.status)")

            // A list signed by the revoked key, revoking the new one, is refused: the new key still works.
            let forged = try signedRevocations([setup.oldID, setup.newID], sequence: 2, keyURL: setup.old)
            try await cloud.publish(ProtocolTopics.revocations(fleet: "test"), forged.encoded())
            try await cloud.assign(try signedAssignment(of: v5, version: "v5", keyURL: setup.new, sequence: 5))
            #expect(await cloud.statusShows("active v5"), "\(cloud.status)")

            // The revocation outlives a restart.
            try await agent.stop()
            cloud.forgetStatus()
            agent = try await setup.start()
            #expect(agent.version == "v5")
            try await cloud.assign(try signedAssignment(of: v2, version: "v2", keyURL: setup.old, sequence: 6))
            #expect(await cloud.statusShows("rejected v2: revoked"), "\(cloud.status)")
            #expect(agent.version == "v5")
            try await agent.stop()
            await cloud.close()
        }
    }
}
