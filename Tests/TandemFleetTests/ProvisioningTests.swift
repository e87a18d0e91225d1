import Foundation
import TandemEdge
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

@testable import TandemFleet

struct ProvisioningTests {
    static let template = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("edge-config/agent.yaml")

    @Test("the password hash is PBKDF2-HMAC-SHA512 (published test vectors)")
    func pbkdf2Vectors() {
        let one = BrokerSecurityFile.pbkdf2SHA512(
            password: Array("password".utf8), salt: Array("salt".utf8), iterations: 1)
        let two = BrokerSecurityFile.pbkdf2SHA512(
            password: Array("password".utf8), salt: Array("salt".utf8), iterations: 2)
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        #expect(
            hex(one)
                == "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"
        )
        #expect(
            hex(two)
                == "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53cf76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e"
        )
    }

    @Test("names that cannot be a topic level are refused with the reason")
    func badNames() throws {
        for name in ["", "a/b", "a+b", "a#", "white space", "..", String(repeating: "x", count: 65)] {
            #expect(throws: ProvisioningError.self) { try DeviceProvisioner.validateName(name, what: "device") }
        }
        try DeviceProvisioner.validateName("edge-7_a.b", what: "device")
    }

    @Test(
        "a provisioned device connects only with its password and client id, and may publish, subscribe and receive only its own topics"
    )
    func deviceCredentialsAndRules() async throws {
        let scratch = try ScratchDirectory(prefix: "tandem-provision")
        let dir = scratch.url.path
        let securityFile = "\(dir)/security.json"
        // An operator's own client (an admin user, say) must survive provisioning.
        var operatorEntries = BrokerSecurityFile()
        operatorEntries.setClient(
            user: "admin", password: "admin-password", clientID: nil, role: "admin",
            rules: [.init(.subscribePattern, "$SYS/#")])
        try operatorEntries.write(to: securityFile)
        let provisioner = DeviceProvisioner(securityFile: securityFile)
        let template = try String(contentsOf: Self.template, encoding: .utf8)
        let settings = DeviceProvisioner.AgentSettings(
            brokerURL: "mqtt://127.0.0.1:1883", devicePasswordPath: "\(dir)/dev1.password",
            trustedKeys: ["\(dir)/cloud.pub"])
        let original = try provisioner.provisionDevice("dev1", fleet: "f1", settings: settings, template: template)
        let other = try provisioner.provisionDevice("dev2", fleet: "f1", settings: settings, template: template)
        _ = try provisioner.provisionDevice("dev1", fleet: "f2", settings: settings, template: template)
        let cloudPassword = try provisioner.provisionCloud(user: "cloud")
        // Provisioning dev1 again rotates its password and leaves one client and one role for it.
        let device = try provisioner.provisionDevice("dev1", fleet: "f1", settings: settings, template: template)
        #expect(device.password != original.password)
        let written = try BrokerSecurityFile(contentsOf: securityFile)
        #expect(written.client("f1/dev1")?.clientID == "f1/dev1")
        #expect(written.client("f1/dev1")?.roles == ["tandem-device:f1/dev1"])
        #expect(written.client("cloud")?.clientID == nil)
        #expect(written.client("admin")?.roles == ["admin"], "the operator's client is kept")
        let text = try String(contentsOfFile: securityFile, encoding: .utf8)
        #expect(text.components(separatedBy: "\"username\" : \"f1/dev1\"").count == 2)
        let mode = try FileManager.default.attributesOfItem(atPath: securityFile)[.posixPermissions] as? Int
        #expect(mode == 0o600, "the file holds password hashes")

        let options = MosquittoBroker.Options(securityFile: securityFile)
        try await MosquittoBroker.with(options) { broker in
            func client(_ user: String, _ password: String, id: String) async throws -> MQTTClient {
                var configuration = MQTTClientConfiguration(host: "127.0.0.1", port: broker.port, clientID: id)
                configuration.username = user
                configuration.password = password
                let client = try MQTTClient(configuration: configuration)
                try await client.connect()
                return client
            }
            await #expect(throws: MQTTError.self, "the rotated-out password is refused") {
                _ = try await client("f1/dev1", original.password, id: "f1/dev1")
            }
            await #expect(throws: MQTTError.self, "another device's password is refused") {
                _ = try await client("f1/dev1", other.password, id: "f1/dev1")
            }
            await #expect(throws: MQTTError.self, "a device cannot take a cloud worker's client id (and its session)") {
                _ = try await client("f1/dev1", device.password, id: "tandem-cloud-worker-1")
            }
            await #expect(throws: MQTTError.self, "nor another device's") {
                _ = try await client("f1/dev1", device.password, id: "f1/dev2")
            }
            let edge = try await client(device.user, device.password, id: "f1/dev1")
            let cloud = try await client("cloud", cloudPassword, id: "tandem-cloud-worker-1")

            let shared = try await cloud.subscribe(
                to: ProtocolTopics.shared(.escalations, group: ProtocolTopics.defaultCloudGroup), qos: .atLeastOnce)
            let own = try await edge.publish(
                MQTTMessage(topic: "tandem/v1/f1/dev1/escalations", string: "mine", qos: .atLeastOnce))
            #expect(own.isAccepted)
            #expect(try await first(of: shared)?.payloadString == "mine", "the cloud's shared subscription works")
            for topic in [
                "tandem/v1/f1/dev2/escalations", "tandem/v1/f1/dev1/model", "tandem/v1/f1/models/v9",
                "tandem/v1/f1/dev1/verdicts", "tandem/v1/f2/dev1/escalations",
            ] {
                let denied = try await edge.publish(MQTTMessage(topic: topic, string: "spoof", qos: .atLeastOnce))
                #expect(!denied.isAccepted, "\(topic)")
                #expect(denied.reasonCode == 135, "\(topic)")
            }
            for filter in [
                ProtocolTopics.shared(.escalations, group: ProtocolTopics.defaultCloudGroup),
                ProtocolTopics.shared(.labels, group: ProtocolTopics.defaultCloudGroup),
                "tandem/v1/f1/dev2/verdicts", "tandem/v1/+/+/escalations", "tandem/v1/#", "#",
                "tandem/v1/f2/models/+", "$share/x/tandem/v1/f1/dev1/verdicts",
            ] {
                await #expect(throws: MQTTError.self, "subscribing to \(filter) is refused") {
                    _ = try await edge.subscribe(to: filter, qos: .atLeastOnce)
                }
            }
            let mine = try await edge.subscribe(to: "tandem/v1/f1/dev1/verdicts", qos: .atLeastOnce)
            let models = try await edge.subscribe(to: "tandem/v1/f1/models/+", qos: .atLeastOnce)
            let model = try await edge.subscribe(to: "tandem/v1/f1/models/v3", qos: .atLeastOnce)
            _ = try await cloud.publish(
                MQTTMessage(topic: "tandem/v1/f1/dev1/verdicts", string: "for dev1", qos: .atLeastOnce))
            _ = try await cloud.publish(
                MQTTMessage(topic: "tandem/v1/f1/models/v3", string: "artifact", qos: .atLeastOnce, retain: true))
            #expect(try await first(of: mine)?.payloadString == "for dev1")
            #expect(try await first(of: models)?.payloadString == "artifact")
            #expect(try await first(of: model)?.payloadString == "artifact")
            await edge.disconnect()
            await cloud.disconnect()
        }
    }

    @Test("the fleet CA issues a broker certificate that clients verify; a plain connection to the TLS port is refused")
    func brokerCertificate() async throws {
        let scratch = try ScratchDirectory(prefix: "tandem-provision-tls")
        let dir = scratch.url.path
        let authority = try FleetCertificateAuthority.openOrCreate(in: "\(dir)/tls")
        let server = try authority.issue(
            .server(hosts: ["localhost", "127.0.0.1"]), commonName: "localhost", fileName: "broker")
        let device = try authority.issue(.client, commonName: "f1/dev1", fileName: "f1.dev1")
        // Opening again finds the same CA instead of making a new one.
        let before = try String(contentsOfFile: authority.certificatePath, encoding: .utf8)
        let again = try FleetCertificateAuthority.openOrCreate(in: "\(dir)/tls")
        #expect(try String(contentsOfFile: again.certificatePath, encoding: .utf8) == before)
        #expect(before.hasPrefix("-----BEGIN CERTIFICATE-----"))
        let keyMode = try FileManager.default.attributesOfItem(atPath: "\(dir)/tls/ca.key")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        let other = try FleetCertificateAuthority.openOrCreate(in: "\(dir)/other")

        let options = MosquittoBroker.Options(
            requireClientCertificate: true,
            serverCertificate: .init(
                caFile: authority.certificatePath, certificateFile: server.certificate, keyFile: server.key))
        try await MosquittoBroker.with(options) { broker in
            func connect(_ url: String, ca: String?, certificate: (String, String)? = nil) async throws {
                let settings = try MQTTBrokerConfiguration(
                    url: url, certificateAuthorities: ca.map { .file($0) }, certificateFile: certificate?.0,
                    keyFile: certificate?.1)
                let client = try MQTTClient(configuration: try settings.clientConfiguration(clientID: "c"))
                defer { Task { await client.disconnect() } }
                try await client.connect()
                await client.disconnect()
            }
            for host in ["localhost", "127.0.0.1"] {
                try await connect(
                    "mqtts://\(host):\(broker.port)", ca: authority.certificatePath, certificate: device)
            }
            await #expect(throws: (any Error).self, "plaintext to the TLS listener") {
                try await connect("mqtt://127.0.0.1:\(broker.port)", ca: nil)
            }
            await #expect(throws: (any Error).self, "a broker certificate from another CA is not trusted") {
                try await connect("mqtts://localhost:\(broker.port)", ca: other.certificatePath, certificate: device)
            }
            await #expect(throws: (any Error).self, "a client without a certificate, where the broker requires one") {
                try await connect("mqtts://localhost:\(broker.port)", ca: authority.certificatePath)
            }
        }
    }

    @Test("the agent.yaml written for a device loads with its name, fleet, broker user and trusted keys")
    func agentConfiguration() throws {
        let scratch = try ScratchDirectory(prefix: "tandem-provision")
        let dir = scratch.url.path
        let provisioner = DeviceProvisioner(securityFile: "\(dir)/security.json")
        let settings = DeviceProvisioner.AgentSettings(
            brokerURL: "mqtts://broker.example:8883", devicePasswordPath: "/etc/tandem/broker.password",
            trustedKeys: ["/etc/tandem/a.pub", "/etc/tandem/b.pub"], caFile: "/etc/tandem/ca.crt")
        let device = try provisioner.provisionDevice(
            "press-12", fleet: "plant-a", settings: settings,
            template: try String(contentsOf: Self.template, encoding: .utf8))
        let path = "\(dir)/agent.yaml"
        try device.agentConfiguration.write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try AgentConfiguration.load(path: path)
        #expect(configuration.device.id == "press-12")
        #expect(configuration.device.fleet == "plant-a")
        #expect(configuration.broker.url == "mqtts://broker.example:8883")
        #expect(configuration.broker.username == "plant-a/press-12")
        #expect(configuration.broker.passwordFile == "/etc/tandem/broker.password")
        #expect(configuration.broker.caFile == "/etc/tandem/ca.crt")
        #expect(configuration.model.trustedKeys == ["/etc/tandem/a.pub", "/etc/tandem/b.pub"])

        #expect(throws: ProvisioningError.self, "a template without the keys provisioning sets") {
            _ = try provisioner.provisionDevice("x", fleet: "f", settings: settings, template: "device:\n  id: a\n")
        }
    }

    /// The first message of `subscription` within `limit`, or nil.
    func first(of subscription: MQTTSubscription, within limit: Duration = .seconds(10)) async throws -> MQTTMessage? {
        try await withThrowingTaskGroup(of: MQTTMessage?.self) { group in
            group.addTask {
                for await message in subscription { return message }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            let result = try await group.next() ?? nil
            group.cancelAll()
            return result
        }
    }
}
