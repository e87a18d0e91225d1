import Foundation
import Synchronization
import TandemCore
import TandemFleet
import TandemFleetTestSupport
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

/// The distributor against a real mosquitto.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ModelDistributorTests {
    /// The first retained message on `topic`, as a fresh subscriber receives it.
    static func retained(_ topic: String, port: Int) async throws -> MQTTMessage? {
        let client = try MQTTClient(
            configuration: MQTTClientConfiguration(port: port, clientID: "fresh-\(UUID().uuidString.prefix(8))"))
        try await client.connect()
        let subscription = try await client.subscribe(to: topic)
        let first = Mutex<MQTTMessage?>(nil)
        let reader = Task {
            for await message in subscription {
                first.withLock { $0 = message }
                return
            }
        }
        _ = await waitUntil(.seconds(3)) { first.withLock { $0 != nil } }
        reader.cancel()
        subscription.cancel()
        await client.disconnect()
        return first.withLock { $0 }
    }

    @Test("a fresh subscriber receives the retained artifact and each device's assignment, as published")
    func retainedMessages() async throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        try fixture.register(try edgeArtifact(version: "v1"), source: "initial")
        try await MosquittoBroker.with { broker in
            let client = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: "cloud"))
            try await client.connect()
            let distributor = ModelDistributor(client: client, fleet: "plant", signer: try fixture.signer())
            let audit = AuditLog(url: fixture.scratch.url.appendingPathComponent("audit.jsonl"))
            let assignment = try await distributor.publish(
                version: "v1", from: fixture.registry, audit: audit, actor: "ana", assigningTo: ["a", "b"],
                production: true)
            await client.disconnect()

            let record = try fixture.registry.record(version: "v1")
            let artifact = try #require(try await Self.retained("tandem/v1/plant/models/v1", port: broker.port))
            #expect(artifact.retain)
            #expect(artifact.payload == (try fixture.registry.artifactBytes(version: "v1")))
            #expect(ModelArtifact.fileDigestHex(artifact.payload) == record.sha256)
            for device in ["a", "b"] {
                let message = try #require(
                    try await Self.retained("tandem/v1/plant/\(device)/model", port: broker.port))
                let received = try ModelAssignment(decoding: message.payload)
                #expect(received.version == assignment.version && received.sha256 == assignment.sha256)
                #expect(received.version == "v1" && received.sha256 == record.sha256 && received.size == record.size)
                #expect(received.topic == "tandem/v1/plant/models/v1")
                // Signed for this device with the fleet's key, the fleet's first sequence.
                #expect(
                    received.terms
                        == .init(
                            fleet: "plant", target: .device(device), sequence: 1, release: 1,
                            expiresAt: try #require(received.terms?.expiresAt)))
                let carried = try #require(received.signature)
                let signature = try #require(ArtifactSignature(keyID: carried.keyID, signature: carried.signature))
                try TrustedKeys.read(paths: [fixture.publicKeyPath]).verify(signature, over: received.signedBytes)
            }
            #expect(try await Self.retained("tandem/v1/plant/c/model", port: broker.port) == nil)
            #expect(try fixture.registry.productionVersion() == "v1")
            #expect(audit.read().records.map(\.action) == ["publish", "assign", "production"])
        }
    }
}
