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
        #expect(await waitUntil(startLimit) { fleet.worker.log.contains("serving") }, "\(fleet.worker.log)")

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

extension AdversarialTests {
    /// An escalation of the test model's shape (8 × 3) or of another, with `poison` written into its window.
    func crafted(id: UUID, device: String, channels: Int = 3, poison: Float? = nil) throws -> [UInt8] {
        var window = [Float](repeating: 0.25, count: channels * 8)
        if let poison { window[5] = poison }
        return try EscalationPayload(
            id: id, device: device, stream: "vib", modelVersion: "edge-1", windowStart: 0, windowEnd: 0.07,
            sampleRateHz: 100, channels: channels, length: 8, window: window,
            topK: [.init(label: 0, probability: 0.5)], confidence: 0.5
        ).encoded()
    }

    @Test(
        "a device's own topics cannot crash, poison or mislead the cloud: absurd statuses, non-finite and misshapen windows, another device's name, a redirected verdict, oversized payloads, labels for another device's escalations"
    )
    func hostileMessages() async throws {
        let scratch = try ScratchDirectory(prefix: "tandem-adversarial")
        defer { scratch.remove() }
        let fleet = try await Fleet(scratch: scratch)
        #expect(
            await waitUntil {
                fleet.worker.log.contains("serving") && fleet.worker.log.contains("listening for labels")
            }, "\(fleet.worker.log)")
        let victim = try await fleet.connect("plant/victim")
        let mallory = try await fleet.connect("plant/mallory")
        let arrivals = Mutex<[String: Set<UUID>]>([:])
        let record: @Sendable (MQTTMessage) -> Void = { message in
            if let verdict = try? Verdict(decoding: message.payload) {
                arrivals.withLock { _ = $0[message.topic, default: []].insert(verdict.escalationId) }
            }
        }
        let victimVerdicts = try await victim.subscribe(
            to: "tandem/v1/plant/victim/verdicts", qos: .atLeastOnce, receiver: record)
        let malloryVerdicts = try await mallory.subscribe(
            to: "tandem/v1/plant/mallory/verdicts", qos: .atLeastOnce, receiver: record)
        var generator = SeededGenerator(seed: 5)
        let honest = try await escalate(10, from: victim, fleet: "plant", device: "victim", generator: &generator)
        #expect(await waitUntil { arrivals.withLock { $0["tandem/v1/plant/victim/verdicts"] } == Set(honest) })

        // 2. Statuses whose numbers would overflow a sum or a difference.
        for status in [
            #"{"device":"mallory","state":"online","windows":9223372036854775807,"escalations":-5}"#,
            #"{"device":"mallory","state":"online","windows":1e300,"escalationRate":"NaN"}"#,
            #"{"device":"mallory","state":"online","inputErrors":{"s":{"nonFinite":-9223372036854775808}}}"#,
        ] {
            let ack = try await mallory.publish(
                MQTTMessage(topic: "tandem/v1/plant/mallory/status", string: status, qos: .atLeastOnce, retain: true))
            #expect(ack.isAccepted)
        }
        // 3. Windows that would poison training, and 4. verdicts sent elsewhere or in another device's name.
        let redirected = UUID()
        _ = try await mallory.publish(
            MQTTMessage(
                topic: "tandem/v1/plant/mallory/escalations", payload: try crafted(id: redirected, device: "mallory"),
                qos: .atLeastOnce, retain: false,
                properties: MQTTPublishProperties(responseTopic: "tandem/v1/plant/victim/verdicts")))
        let poisoned: [(String, [UInt8])] = [
            ("nan", try crafted(id: UUID(), device: "mallory", poison: .nan)),
            ("infinity", try crafted(id: UUID(), device: "mallory", poison: .infinity)),
            ("another shape", try crafted(id: UUID(), device: "mallory", channels: 4)),
            ("another device's name", try crafted(id: UUID(), device: "victim")),
            ("3 MiB", [UInt8](repeating: 0x54, count: 3 << 20)),
            ("garbage", [0x54, 0x45, 1, 0, 9, 9]),
        ]
        for (name, payload) in poisoned {
            let ack = try await mallory.publish(
                MQTTMessage(topic: "tandem/v1/plant/mallory/escalations", payload: payload, qos: .atLeastOnce))
            #expect(ack.isAccepted, "\(name): the broker takes it; the cloud must refuse it")
        }
        let server = fleet.worker.worker.server
        #expect(
            await waitUntil { server.statistics.rejected == poisoned.count }, "\(server.statistics)")
        let refused = server.statistics.refused
        #expect(refused[.malformed, default: 0] == 3, "NaN, infinity and garbage: \(refused)")
        #expect(refused[.wrongShape] == 1, "\(refused)")
        #expect(refused[.otherDevice] == 1, "\(refused)")
        #expect(refused[.tooLarge] == 1, "\(refused)")
        #expect(
            await waitUntil { arrivals.withLock { $0["tandem/v1/plant/mallory/verdicts"] } == [redirected] },
            "the redirected escalation is answered on its sender's own topic")

        // 3. Labels for the victim's escalations, sent on the attacker's own label topic.
        let intake = fleet.worker.worker.listener.labels
        for id in honest.prefix(3) {
            let label = #"{"escalationId":"\#(id.uuidString)","label":"c2"}"#
            let ack = try await mallory.publish(
                MQTTMessage(topic: "tandem/v1/plant/mallory/labels", string: label, qos: .atLeastOnce))
            #expect(ack.isAccepted)
        }
        #expect(
            await waitUntil { intake.statistics.rejected[.otherDevice, default: 0] == 3 }, "\(intake.statistics)")
        #expect(intake.statistics.stored == 0, "nothing labelled the victim's escalations")

        // Afterwards the cloud still runs, answers the honest device, and its fleet view holds no absurd number.
        let more = try await escalate(10, from: victim, fleet: "plant", device: "victim", generator: &generator)
        #expect(
            await waitUntil {
                arrivals.withLock { $0["tandem/v1/plant/victim/verdicts"] } == Set(honest + more)
            }, "every honest escalation answered")
        #expect(arrivals.withLock { $0["tandem/v1/plant/victim/verdicts"] }?.contains(redirected) == false)
        #expect(fleet.worker.isRunning)
        for device in fleet.worker.worker.listener.devices {
            #expect((device.status.windows ?? 0) <= DeviceStatus.maximumCount, "\(device.status)")
            #expect((device.status.escalations ?? 0) >= 0, "\(device.status)")
        }

        victimVerdicts.cancel()
        malloryVerdicts.cancel()
        await victim.disconnect()
        await mallory.disconnect()
        await fleet.stop()
    }
}

/// The reference agent.yaml that provisioning fills in.
enum ProvisioningTemplate {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("edge-config/agent.yaml")
}
