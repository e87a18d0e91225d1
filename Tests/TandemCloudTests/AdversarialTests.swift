import Foundation
import Synchronization
import TandemCloud
import TandemCore
import TandemFleet
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

/// One provisioned device's own credentials turned against a fleet set up as `tandem provision` sets it up:
/// a real mosquitto with the provisioned dynamic-security file, TLS only, a real cloud worker, an honest device
/// in the same fleet and a device of a second fleet. Every attack is made and refused, the refusal shows in a
/// counter, and the honest device's escalations are all answered afterwards (docs/SECURITY.md lists them).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct AdversarialTests {
    /// The fleet: broker files, the worker, and a way to connect as any provisioned user.
    final class Fleet: Sendable {
        let directory: String
        let broker: MosquittoBroker
        let worker: InProcessWorker
        let passwords: [String: String]
        let caFile: String

        static let fleet = "plant"

        init(scratch: ScratchDirectory) async throws {
            directory = scratch.url.path
            let security = "\(directory)/security.json"
            let provisioner = DeviceProvisioner(securityFile: security)
            let template = try String(contentsOf: ProvisioningTemplate.url, encoding: .utf8)
            let settings = DeviceProvisioner.AgentSettings(brokerURL: "mqtts://localhost:8883")
            var passwords: [String: String] = [:]
            for (fleet, device) in [(Self.fleet, "victim"), (Self.fleet, "mallory"), ("other", "remote")] {
                passwords["\(fleet)/\(device)"] =
                    try provisioner.provisionDevice(device, fleet: fleet, settings: settings, template: template)
                    .password
            }
            passwords["cloud"] = try provisioner.provisionCloud(user: "cloud")
            self.passwords = passwords
            let authority = try FleetCertificateAuthority.openOrCreate(in: "\(directory)/tls")
            let server = try authority.issue(.server(hosts: ["localhost"]), commonName: "localhost", fileName: "broker")
            caFile = authority.certificatePath
            broker = try await MosquittoBroker.start(
                MosquittoBroker.Options(
                    securityFile: security,
                    serverCertificate: .init(caFile: caFile, certificateFile: server.certificate, keyFile: server.key)))
            let cloudPassword = "\(directory)/cloud.password"
            try passwords["cloud"]!.write(toFile: cloudPassword, atomically: true, encoding: .utf8)
            try fullModelArtifact().write(to: URL(fileURLWithPath: "\(directory)/full.tandem"))
            var configuration = CloudWorker.Configuration(
                broker: try MQTTBrokerConfiguration(
                    url: "mqtts://localhost:\(broker.port)", username: "cloud", passwordFile: cloudPassword,
                    certificateAuthorities: .file(caFile)),
                modelPath: "\(directory)/full.tandem")
            configuration.dataDirectory = "\(directory)/data"
            configuration.workerID = "1"
            configuration.statisticsIntervalSeconds = 0
            configuration.http?.address = CloudHTTPAPI.Address(host: "127.0.0.1", port: 0)
            worker = try InProcessWorker(configuration)
        }

        /// A connected client for `user` (a device's `fleet/device`, or `cloud`), with `clientID` (the device's own
        /// by default).
        func connect(_ user: String, clientID: String? = nil, password: String? = nil) async throws -> MQTTClient {
            let passwordFile = "\(directory)/\(user.replacingOccurrences(of: "/", with: "."))-\(UUID()).password"
            try (password ?? passwords[user] ?? "").write(toFile: passwordFile, atomically: true, encoding: .utf8)
            let settings = try MQTTBrokerConfiguration(
                url: "mqtts://localhost:\(broker.port)", username: user, passwordFile: passwordFile,
                certificateAuthorities: .file(caFile))
            let client = try MQTTClient(
                configuration: try settings.clientConfiguration(clientID: clientID ?? user))
            try await client.connect()
            return client
        }

        func stop() async {
            #expect(await worker.terminate() == 0)
            broker.shutdown()
        }
    }

    /// Escalations from `device`'s client on its own topic; returns their ids.
    func escalate(
        _ count: Int, from client: MQTTClient, fleet: String, device: String, generator: inout SeededGenerator
    ) async throws -> [UUID] {
        var ids: [UUID] = []
        for _ in 0..<count {
            let id = UUID()
            let ack = try await client.publish(
                MQTTMessage(
                    topic: DeviceTopics(fleet: fleet, device: device).escalations,
                    payload: try escalation(id: id, device: device, generator: &generator), qos: .atLeastOnce))
            #expect(ack.isAccepted)
            ids.append(id)
        }
        return ids
    }

    @Test(
        "a device's own credentials cannot take the fleet's escalations, a worker's session, another device's verdicts, or a plaintext link"
    )
    func trafficAndIdentity() async throws {
        let scratch = try ScratchDirectory(prefix: "tandem-adversarial")
        defer { scratch.remove() }
        let fleet = try await Fleet(scratch: scratch)
        #expect(await waitUntil { fleet.worker.log.contains("serving") }, "\(fleet.worker.log)")

        let victim = try await fleet.connect("plant/victim")
        let verdicts = Mutex<Set<UUID>>([])
        let subscription = try await victim.subscribe(to: "tandem/v1/plant/victim/verdicts", qos: .atLeastOnce) {
            message in
            if let verdict = try? Verdict(decoding: message.payload) {
                verdicts.withLock { _ = $0.insert(verdict.escalationId) }
            }
        }

        // 1. The shared subscription of the cloud's group, any wildcard over other devices, and a worker's client id.
        let mallory = try await fleet.connect("plant/mallory")
        for filter in [
            ProtocolTopics.shared(.escalations, group: ProtocolTopics.defaultCloudGroup),
            ProtocolTopics.shared(.labels, group: ProtocolTopics.defaultCloudGroup),
            ProtocolTopics.shared(.escalations, group: "mallory"), ProtocolTopics.allDevices(.escalations),
            ProtocolTopics.allDevices(.verdicts), "tandem/v1/plant/victim/verdicts", "tandem/v1/other/models/+", "#",
        ] {
            await #expect(throws: MQTTError.self, "subscribing to \(filter)") {
                _ = try await mallory.subscribe(to: filter, qos: .atLeastOnce)
            }
        }
        for clientID in ["tandem-cloud-1", "tandem-cloud-1-trainer", "plant/victim", "other/remote"] {
            await #expect(throws: MQTTError.self, "connecting as \(clientID)") {
                _ = try await fleet.connect("plant/mallory", clientID: clientID)
            }
        }
        // 4. Forged verdicts, assignments and artifacts for another device or the fleet.
        for topic in [
            "tandem/v1/plant/victim/verdicts", "tandem/v1/plant/victim/model", "tandem/v1/plant/mallory/model",
            "tandem/v1/plant/models/edge-9", "tandem/v1/plant/victim/escalations", "tandem/v1/plant/victim/labels",
            "tandem/v1/other/remote/escalations",
        ] {
            let ack = try await mallory.publish(MQTTMessage(topic: topic, string: "forged", qos: .atLeastOnce))
            #expect(ack.reasonCode == 135, "publishing to \(topic)")
        }

        // The honest device's escalations are every one answered, on its own topic.
        var generator = SeededGenerator(seed: 11)
        let sent = try await escalate(40, from: victim, fleet: "plant", device: "victim", generator: &generator)
        #expect(await waitUntil { verdicts.withLock { $0 } == Set(sent) }, "\(verdicts.withLock { $0.count }) of 40")
        let remote = try await fleet.connect("other/remote")
        _ = try await escalate(5, from: remote, fleet: "other", device: "remote", generator: &generator)
        #expect(await waitUntil { fleet.worker.worker.server.statistics.answered == 45 })

        // 5. Plaintext to the TLS listener, and a broker certificate from another CA.
        let plain = try MQTTClient(
            configuration: try MQTTBrokerConfiguration(url: "mqtt://127.0.0.1:\(fleet.broker.port)")
                .clientConfiguration(clientID: "plain"))
        await #expect(throws: (any Error).self, "a plaintext connection to the TLS port") { try await plain.connect() }
        let strangerCA = try FleetCertificateAuthority.openOrCreate(in: "\(fleet.directory)/stranger")
        let mitm = try MQTTClient(
            configuration: try MQTTBrokerConfiguration(
                url: "mqtts://localhost:\(fleet.broker.port)", certificateAuthorities: .file(strangerCA.certificatePath)
            ).clientConfiguration(clientID: "mitm"))
        await #expect(throws: (any Error).self, "a broker that the client's CA did not sign") {
            try await mitm.connect()
        }

        subscription.cancel()
        await victim.disconnect()
        await mallory.disconnect()
        await remote.disconnect()
        await fleet.stop()
    }
}

/// The reference agent.yaml that provisioning fills in.
enum ProvisioningTemplate {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("edge-config/agent.yaml")
}
