import Foundation
import TandemMQTT
import TandemTestSupport
import Testing

@Suite("Credentials, ACLs and TLS against a real broker", .serialized, .timeLimit(.minutes(2)))
struct SecurityTests {
    static let acl = """
        user edge-7
        topic write tandem/v1/acme/edge-7/#
        topic read tandem/v1/acme/edge-7/verdicts

        user cloud
        topic readwrite tandem/v1/#
        """

    static let options = MosquittoBroker.Options(users: ["edge-7": "s3cret", "cloud": "cl0ud"], acl: acl)

    /// mosquitto refuses a wrong password with CONNACK 135 ("not authorized"), not 134, so the error is
    /// `.notAuthorized` and its message names the credentials as the likely cause.
    @Test("a wrong password is refused with a clear credentials error")
    func wrongPassword() async throws {
        try await MosquittoBroker.with(Self.options) { broker in
            let error = await #expect(throws: MQTTError.self) {
                _ = try await connectedClient(broker, "edge") {
                    $0.username = "edge-7"
                    $0.password = "wrong"
                }
            }
            #expect(error?.code == .notAuthorized || error?.code == .badCredentials)
            #expect(error?.reasonCode == 135 || error?.reasonCode == 134)
            #expect(error?.description.contains("refused the connection") == true)
            #expect(error?.description.contains("password") == true)
            #expect(error?.description.contains("\(broker.port)") == true)
        }
    }

    @Test("a known user with the right password connects")
    func rightPassword() async throws {
        try await MosquittoBroker.with(Self.options) { broker in
            let client = try await connectedClient(broker, "edge") {
                $0.username = "edge-7"
                $0.password = "s3cret"
            }
            #expect(client.connectionState.isConnected)
            await client.disconnect()
        }
    }

    @Test("the ACL denies a publish outside the device's own topics with reason code 135")
    func aclDeniesForeignTopic() async throws {
        try await MosquittoBroker.with(Self.options) { broker in
            let edge = try await connectedClient(broker, "edge") {
                $0.username = "edge-7"
                $0.password = "s3cret"
            }
            let allowed = try await edge.publish(
                MQTTMessage(topic: "tandem/v1/acme/edge-7/escalations", string: "ok", qos: .atLeastOnce))
            #expect(allowed.isAccepted)
            let denied = try await edge.publish(
                MQTTMessage(topic: "tandem/v1/acme/edge-8/escalations", string: "spoof", qos: .atLeastOnce))
            #expect(!denied.isAccepted)
            #expect(denied.reasonCode == 135)
            await edge.disconnect()
        }
    }

    @Test("TLS connects with the test CA and delivers")
    func tlsWithRightCA() async throws {
        try await MosquittoBroker.with(MosquittoBroker.Options(tls: true)) { broker in
            let certificates = try #require(broker.certificates)
            let client = try await connectedClient(broker, "tls") {
                $0.host = broker.host
                $0.tls = .init(caFile: certificates.caFile)
            }
            let subscription = try await client.subscribe(to: "tandem/tls")
            try await client.publish(MQTTMessage(topic: "tandem/tls", string: "encrypted"))
            #expect(try await collect(1, from: subscription).first?.payloadString == "encrypted")
            await client.disconnect()
        }
    }

    @Test("TLS fails with a tlsFailure error against a wrong CA")
    func tlsWithWrongCA() async throws {
        try await MosquittoBroker.with(MosquittoBroker.Options(tls: true)) { broker in
            let certificates = try #require(broker.certificates)
            let error = await #expect(throws: MQTTError.self) {
                _ = try await connectedClient(broker, "tls-wrong") {
                    $0.host = broker.host
                    $0.tls = .init(caFile: certificates.wrongCAFile)
                }
            }
            #expect(error?.code == .tlsFailure)
        }
    }

    @Test("TLS verifies the host name: the right CA but a name the certificate lacks fails")
    func tlsHostnameVerification() async throws {
        try await MosquittoBroker.with(MosquittoBroker.Options(tls: true)) { broker in
            let certificates = try #require(broker.certificates)
            let error = await #expect(throws: MQTTError.self) {
                _ = try await connectedClient(broker, "tls-ip") {
                    $0.host = "127.0.0.1"
                    $0.tls = .init(caFile: certificates.caFile)
                }
            }
            #expect(error?.code == .tlsFailure)
        }
    }

    @Test("a broker that requires client certificates accepts ours and refuses a client without one")
    func tlsClientCertificate() async throws {
        try await MosquittoBroker.with(MosquittoBroker.Options(tls: true, requireClientCertificate: true)) { broker in
            let certificates = try #require(broker.certificates)
            let client = try await connectedClient(broker, "tls-cert") {
                $0.host = broker.host
                $0.tls = .init(
                    caFile: certificates.caFile, certificateFile: certificates.clientCertificateFile,
                    keyFile: certificates.clientKeyFile)
            }
            #expect(client.connectionState.isConnected)
            await client.disconnect()
            await #expect(throws: MQTTError.self) {
                _ = try await connectedClient(broker, "tls-nocert") {
                    $0.host = broker.host
                    $0.tls = .init(caFile: certificates.caFile)
                }
            }
        }
    }

    @Test("an mqtts:// broker configuration with a CA, client certificate and password file connects")
    func brokerConfigurationOverTLS() async throws {
        let options = MosquittoBroker.Options(users: ["edge-7": "s3cret"], tls: true, requireClientCertificate: true)
        try await MosquittoBroker.with(options) { broker in
            let certificates = try #require(broker.certificates)
            let passwordFile = broker.directory.url.appendingPathComponent("edge-7.password").path
            try "s3cret\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
            let settings = try MQTTBrokerConfiguration(
                url: "mqtts://\(broker.host):\(broker.port)", username: "edge-7", passwordFile: passwordFile,
                certificateAuthorities: .file(certificates.caFile), certificateFile: certificates.clientCertificateFile,
                keyFile: certificates.clientKeyFile)
            let client = try MQTTClient(configuration: try settings.clientConfiguration(clientID: "edge-7-tls"))
            try await client.connect()
            let subscription = try await client.subscribe(to: "tandem/tls")
            try await client.publish(MQTTMessage(topic: "tandem/tls", string: "encrypted"))
            #expect(try await collect(1, from: subscription).first?.payloadString == "encrypted")
            await client.disconnect()
        }
    }
}
