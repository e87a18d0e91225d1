import Foundation
import Synchronization
import TandemCore
import TandemEdge
import TandemMQTT
import TandemProtocol

/// One emulated device of `tandem bench fleet`: its own MQTT connection, with the agent's wire behaviour and the
/// agent's checks, but no sensors, model files or outbox.
///
/// Like `tandem-edge` it connects as its broker user `{fleet}/{device}` with the offline status as its last will,
/// publishes its retained status (on every model-update change: downloading, verifying, active, rejected),
/// subscribes to its verdicts, the fleet's key revocation list and its model assignment (those two into one
/// ordered stream), and sends escalations with a response topic and correlation data. An assignment goes through
/// the agent's ``AssignmentGate`` (signature by a trusted key, fleet and device, sequence, expiry, rollback); the
/// artifact is fetched from its retained topic and checked as the agent checks it: size and SHA-256 against the
/// assignment (``EdgeModelFiles/checkDownload(_:against:)``), then the artifact's own SHA-256 and Ed25519
/// signature by a trusted key, input spec, weights and golden self-test (`ModelArtifact(bytes:…)` and
/// ``VerifiedModel``, what ``EdgeModelLoader`` runs on the file), and the version it holds. What the agent
/// writes to disk (the assignment record, the model swap with its fsyncs) is kept in memory here.
final class BenchFleetDevice: Sendable {
    /// The device's topics.
    let topics: DeviceTopics
    /// Its connection (one libmosquitto handle and network thread).
    let client: MQTTClient
    private let keys: TrustedKeys
    /// Where the device's events go: `active DEVICE VERSION NANOSECONDS` (monotonic clock, acknowledged status)
    /// and `rejected DEVICE REASON`.
    private let report: @Sendable (String) -> Void
    private let state: Mutex<State>
    private let inbox = AsyncStream<MQTTMessage>.makeStream(bufferingPolicy: .bufferingNewest(64))
    /// Kept: a dropped subscription ends its stream.
    private let subscriptions = Mutex<[MQTTSubscription]>([])
    private let worker = Mutex<Task<Void, Never>?>(nil)

    private struct State {
        var gate: AssignmentGate
        var serving: String
        var update: ModelUpdateState = .idle
        var escalations = 0
        var verdicts = 0
    }

    /// What the bench reads from a device.
    struct Snapshot: Sendable {
        /// The version serving.
        var serving: String
        /// Escalations sent.
        var escalations: Int
        /// Verdicts received.
        var verdicts: Int
    }

    /// A device of `fleet` serving `version`, trusting `keys`, not connected yet; `report` gets its events.
    init(
        fleet: String, device: String, version: String, keys: TrustedKeys, brokerURL: String,
        report: @escaping @Sendable (String) -> Void
    ) throws {
        topics = DeviceTopics(fleet: fleet, device: device)
        self.keys = keys
        self.report = report
        var configuration = try MQTTBrokerConfiguration(url: brokerURL).clientConfiguration(clientID: topics.brokerUser)
        configuration.lastWill = .init(
            MQTTMessage(
                topic: topics.status, payload: DeviceStatus.lastWill(device: device).encoded(), qos: .atLeastOnce,
                retain: true))
        client = try MQTTClient(configuration: configuration)
        state = Mutex(
            State(
                gate: AssignmentGate(record: AssignmentRecord(), fleet: fleet, device: device, requireSignature: true),
                serving: version))
    }

    /// What the device reports now.
    var snapshot: Snapshot {
        state.withLock {
            Snapshot(serving: $0.serving, escalations: $0.escalations, verdicts: $0.verdicts)
        }
    }

    /// Connects, publishes the retained status and subscribes as the agent does; returns once the broker has the
    /// status and granted every subscription.
    func start() async throws {
        try await client.connect()
        try await publishStatus()
        let verdicts = try await client.subscribe(to: topics.verdicts, qos: .atLeastOnce) { [weak self] _ in
            self?.state.withLock { $0.verdicts += 1 }
        }
        let continuation = inbox.continuation
        let forward: @Sendable (MQTTMessage) -> Void = { continuation.yield($0) }
        let revocations = try await client.subscribe(to: topics.revocations, qos: .atLeastOnce, receiver: forward)
        let assignments = try await client.subscribe(to: topics.modelAssignment, qos: .atLeastOnce, receiver: forward)
        subscriptions.withLock { $0 += [verdicts, revocations, assignments] }
        let stream = inbox.stream
        worker.withLock {
            $0 = Task { [self] in
                for await message in stream { await handle(message) }
            }
        }
    }

    /// Sends one escalation of `window` (shaped for `input`) as the agent's link does (QoS 1, response topic,
    /// correlation data), without waiting for the acknowledgement.
    func escalate(window: [Float], input: InputSpec) throws {
        let id = UUID()
        let version = state.withLock {
            $0.escalations += 1
            return $0.serving
        }
        let payload = try EscalationPayload(
            id: id, device: topics.device, stream: "s", modelVersion: version, windowStart: 0, windowEnd: 1,
            sampleRateHz: input.sampleRateHz, channels: input.channels, length: input.window, window: window,
            topK: [.init(label: 0, probability: 0.5)], confidence: 0.5
        ).encoded()
        try client.publish(
            MQTTMessage(
                topic: topics.escalations, payload: payload, qos: .atLeastOnce, retain: false,
                properties: MQTTPublishProperties(
                    responseTopic: topics.verdicts, correlationData: withUnsafeBytes(of: id.uuid) { Array($0) })),
            onComplete: nil)
    }

    /// Ends the subscriptions and disconnects cleanly (the broker then drops the last will).
    func stop() async {
        worker.withLock { $0?.cancel() }
        inbox.continuation.finish()
        for subscription in subscriptions.withLock({ $0 }) { subscription.cancel() }
        await client.disconnect()
    }

    // MARK: What the agent's updater does

    private func handle(_ message: MQTTMessage) async {
        if message.payload.isEmpty { return }
        if message.topic == topics.revocations {
            state.withLock { state in
                guard let list = try? KeyRevocationList(decoding: message.payload),
                    let record = try? state.gate.check(list, keys: keys)
                else { return }
                state.gate.record = record
            }
            return
        }
        let assignment: ModelAssignment
        do {
            assignment = try ModelAssignment(decoding: message.payload)
        } catch {
            await set(.rejected("?", reason: "\(message.topic): \(error)"))
            return
        }
        let version = assignment.version
        let now = UInt64(max(0, Date().timeIntervalSince1970))
        let checked: Result<(AssignmentGate.Decision, Set<String>), AssignmentRefusal> = state.withLock { state in
            let revoked = Set(state.gate.record.revokedKeyIDs)
            do throws(AssignmentRefusal) {
                let decision = try state.gate.check(
                    assignment, keys: TrustedKeys(keys.keys, revokedKeyIDs: revoked), now: now)
                if case .accept(let record) = decision { state.gate.record = record }
                return .success((decision, revoked))
            } catch {
                return .failure(error)
            }
        }
        let revoked: Set<String>
        switch checked {
        case .failure(let refusal):
            await set(.rejected(version, reason: "\(refusal)"))
            return
        case .success(let (_, keysRevoked)):
            revoked = keysRevoked
        }
        if version == state.withLock({ $0.serving }) {
            serve(assignment)
            await set(.active(version))
            return
        }
        await set(.downloading(version))
        let topic = assignment.topic ?? topics.artifact(version: version)
        let bytes: [UInt8]
        do {
            bytes = try await fetch(topic: topic)
        } catch {
            await set(.rejected(version, reason: "download from \(topic): \(error)"))
            return
        }
        await set(.verifying(version))
        do throws(ModelLoadError) {
            try EdgeModelFiles.checkDownload(bytes, against: assignment)
            let artifact: ModelArtifact
            do throws(ArtifactError) {
                artifact = try ModelArtifact(
                    bytes: bytes, trustedKeys: keys.keys, revokedKeyIDs: revoked, requireSignature: true)
            } catch {
                throw ModelLoadError(.untrusted, "\(topic): \(error)")
            }
            let verified = try VerifiedModel(artifact: artifact, source: topic)
            guard verified.manifest.version == version else {
                throw ModelLoadError(
                    .incompatible, "artifact holds version \(verified.manifest.version), assigned \(version)")
            }
        } catch {
            await set(.rejected(version, reason: "\(error)"))
            return
        }
        serve(assignment)
        await set(.active(version))
    }

    private func serve(_ assignment: ModelAssignment) {
        state.withLock { state in
            state.gate.record = state.gate.serving(assignment)
            state.serving = assignment.version
        }
    }

    /// Records `update` and publishes the status, as the agent does without waiting for the acknowledgement; an
    /// active or rejected one is awaited and reported (the time of an active one is its acknowledgement's).
    private func set(_ update: ModelUpdateState) async {
        state.withLock { $0.update = update.truncated }
        switch update {
        case .active(let version):
            guard (try? await publishStatus()) != nil else { return }
            report("active \(topics.device) \(version) \(monotonicNanoseconds())")
        case .rejected:
            _ = try? await publishStatus()
            let reason = update.truncated.description.split(separator: "\n").joined(separator: " ")
            report("rejected \(topics.device) \(reason)")
        default:
            _ = try? client.publish(statusMessage(), onComplete: nil)
        }
    }

    private func statusMessage() -> MQTTMessage {
        let status = state.withLock { state in
            DeviceStatus(
                device: topics.device, modelVersion: state.serving, modelUpdate: state.update,
                windows: state.escalations * 10, escalations: state.escalations,
                escalationRate: state.escalations == 0 ? 0 : 0.1)
        }
        return MQTTMessage(topic: topics.status, payload: status.encoded(), qos: .atLeastOnce, retain: true)
    }

    /// Publishes the retained status and waits for the broker's acknowledgement.
    private func publishStatus() async throws {
        try await client.publish(statusMessage())
    }

    /// The first (retained) message on `topic`, as the agent's updater fetches it (60 s at most).
    private func fetch(topic: String) async throws -> [UInt8] {
        guard let bytes = try await client.firstMessage(on: topic, timeout: .seconds(60)) else {
            throw ModelLoadError(.unreadable, "no artifact arrived on \(topic) within 60 s")
        }
        return bytes
    }
}
