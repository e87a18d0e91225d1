import Foundation
import TandemEdge
import TandemMQTT
import TandemTestSupport
import Testing

@testable import TandemFleet

struct ProvisioningTests {
    static let template = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("edge-config/agent.yaml")

    @Test("the password hash is PBKDF2-HMAC-SHA512 (published test vectors)")
    func pbkdf2Vectors() {
        let one = BrokerPasswordFile.pbkdf2SHA512(
            password: Array("password".utf8), salt: Array("salt".utf8), iterations: 1)
        let two = BrokerPasswordFile.pbkdf2SHA512(
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
        let entry = BrokerPasswordFile.entry(user: "f/d", password: "p")
        #expect(entry.hasPrefix("f/d:$7$101$"))
        #expect(entry.split(separator: "$").count == 5, "user:, 7, iterations, salt, hash")
    }

    @Test("names that cannot be a topic level are refused with the reason")
    func badNames() throws {
        for name in ["", "a/b", "a+b", "a#", "white space", "..", String(repeating: "x", count: 65)] {
            #expect(throws: ProvisioningError.self) { try DeviceProvisioner.validateName(name, what: "device") }
        }
        try DeviceProvisioner.validateName("edge-7_a.b", what: "device")
    }

    @Test("a provisioned device connects with its password and may write and read only its own topics")
    func deviceCredentialsAndACL() async throws {
        let scratch = try ScratchDirectory(prefix: "tandem-provision")
        let dir = scratch.url.path
        let provisioner = DeviceProvisioner(passwordFile: "\(dir)/passwd", aclFile: "\(dir)/acl")
        // An operator's own ACL line outside the provisioned blocks must survive.
        try "# operator notes\n".write(toFile: "\(dir)/acl", atomically: true, encoding: .utf8)
        let template = try String(contentsOf: Self.template, encoding: .utf8)
        let settings = DeviceProvisioner.AgentSettings(
            brokerURL: "mqtt://127.0.0.1:1883", devicePasswordPath: "\(dir)/dev1.password",
            trustedKeys: ["\(dir)/cloud.pub"])
        let original = try provisioner.provisionDevice("dev1", fleet: "f1", settings: settings, template: template)
        let other = try provisioner.provisionDevice("dev2", fleet: "f1", settings: settings, template: template)
        let cloudPassword = try provisioner.provisionCloud(user: "cloud")
        // Provisioning dev1 again rotates its password and leaves one block and one entry for it.
        let device = try provisioner.provisionDevice("dev1", fleet: "f1", settings: settings, template: template)
        #expect(device.password != original.password)
        let acl = try String(contentsOfFile: "\(dir)/acl", encoding: .utf8)
        #expect(acl.components(separatedBy: "user f1/dev1\n").count == 2)
        #expect(acl.hasPrefix("# operator notes\n"))
        let passwords = try String(contentsOfFile: "\(dir)/passwd", encoding: .utf8)
        #expect(passwords.split(separator: "\n").filter { $0.hasPrefix("f1/dev1:") }.count == 1)

        let options = MosquittoBroker.Options(passwordFile: "\(dir)/passwd", aclFile: "\(dir)/acl")
        try await MosquittoBroker.with(options) { broker in
            func client(_ user: String, _ password: String, _ name: String) async throws -> MQTTClient {
                var configuration = MQTTClientConfiguration(
                    host: "127.0.0.1", port: broker.port, clientID: "\(name)-\(UUID().uuidString.prefix(6))")
                configuration.username = user
                configuration.password = password
                let client = try MQTTClient(configuration: configuration)
                try await client.connect()
                return client
            }
            await #expect(throws: MQTTError.self, "the rotated-out password is refused") {
                _ = try await client("f1/dev1", original.password, "old")
            }
            await #expect(throws: MQTTError.self, "another device's password is refused") {
                _ = try await client("f1/dev1", other.password, "stolen")
            }
            let edge = try await client(device.user, device.password, "dev1")
            let cloud = try await client("cloud", cloudPassword, "cloud")

            let own = try await edge.publish(
                MQTTMessage(topic: "tandem/v1/f1/dev1/escalations", string: "mine", qos: .atLeastOnce))
            #expect(own.isAccepted)
            for topic in ["tandem/v1/f1/dev2/escalations", "tandem/v1/f1/dev1/model", "tandem/v1/f1/models/v9"] {
                let denied = try await edge.publish(MQTTMessage(topic: topic, string: "spoof", qos: .atLeastOnce))
                #expect(!denied.isAccepted, "\(topic)")
                #expect(denied.reasonCode == 135, "\(topic)")
            }

            let mine = try await edge.subscribe(to: "tandem/v1/f1/dev1/verdicts", qos: .atLeastOnce)
            let theirs = try await edge.subscribe(to: "tandem/v1/f1/dev2/verdicts", qos: .atLeastOnce)
            let models = try await edge.subscribe(to: "tandem/v1/f1/models/+", qos: .atLeastOnce)
            _ = try await cloud.publish(
                MQTTMessage(topic: "tandem/v1/f1/dev2/verdicts", string: "for dev2", qos: .atLeastOnce))
            _ = try await cloud.publish(
                MQTTMessage(topic: "tandem/v1/f1/dev1/verdicts", string: "for dev1", qos: .atLeastOnce))
            _ = try await cloud.publish(
                MQTTMessage(topic: "tandem/v1/f1/models/v2", string: "artifact", qos: .atLeastOnce, retain: true))
            #expect(try await first(of: mine)?.payloadString == "for dev1")
            #expect(try await first(of: models)?.payloadString == "artifact")
            // dev2's verdict was published before dev1's, so had the ACL let it through it would be here by now.
            #expect(try await first(of: theirs, within: .milliseconds(500)) == nil)
            await edge.disconnect()
            await cloud.disconnect()
        }
    }

    @Test("the agent.yaml written for a device loads with its name, fleet, broker user and trusted keys")
    func agentConfiguration() throws {
        let scratch = try ScratchDirectory(prefix: "tandem-provision")
        let dir = scratch.url.path
        let provisioner = DeviceProvisioner(passwordFile: "\(dir)/passwd", aclFile: "\(dir)/acl")
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
