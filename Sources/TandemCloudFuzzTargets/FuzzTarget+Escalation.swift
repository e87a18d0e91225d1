import Dispatch
import Foundation
import Logging
import TandemCloud
import TandemCore
import TandemFuzzTargets
import TandemMQTT
import TandemProtocol

extension FuzzTarget {
    /// An escalation message through a real cloud worker: topic and payload checks, storing, the shape check, the
    /// edge-to-full standardization, the model and the verdict (``EscalationServer/handleNow(_:)``).
    ///
    /// Input: a byte choosing the topic, a byte saying whether to repair the trailing CRC-32 (so mutations get past
    /// it), then the payload. Checks: a payload that decodes encodes back to itself; the worker counts a message as
    /// received exactly when it decodes and names its topic's device, and as rejected otherwise; every verdict it
    /// publishes is one the edge reads back.
    static let escalation = FuzzTarget(
        name: "escalation",
        summary: "EscalationPayload(decoding:) → the cloud worker's handling (EscalationServer.handleNow)"
    ) { bytes in
        var input = FuzzInput(bytes)
        let topic = EscalationFixture.topics[input.choose(EscalationFixture.topics.count)]
        let repair = input.flag()
        var payload = Array(input.rest)
        if repair { EscalationFixture.repairChecksum(&payload) }

        let decoded = try? EscalationPayload(decoding: payload)
        if let decoded {
            let again = try? EscalationPayload(decoding: try decoded.encoded())
            FuzzCheck.require(again == decoded, "a decoded escalation does not encode back to itself")
        }
        let server = EscalationFixture.server
        let before = server.statistics
        let verdicts = server.handleNow(MQTTMessage(topic: topic, payload: payload))
        let after = server.statistics
        let address = DeviceTopicAddress(topic: topic)
        let fixture = EscalationFixture.self
        let admissible =
            address?.kind == .escalations && decoded?.device == address?.device
            && decoded?.length == fixture.window && decoded?.channels == fixture.channels
            && payload.count
                <= EscalationPayload.maximumEncodedBytes(channels: fixture.channels, length: fixture.window)
        FuzzCheck.require(
            after.received - before.received == (admissible ? 1 : 0),
            "received went from \(before.received) to \(after.received) for an \(admissible ? "admissible" : "inadmissible") message"
        )
        FuzzCheck.require(
            admissible || after.rejected == before.rejected + 1, "an inadmissible message was not counted")
        FuzzCheck.require(verdicts.count <= 1, "one message got \(verdicts.count) verdicts")
        if let lastUse = decoded?.lastUse, lastUse < Date().timeIntervalSince1970 - 1 {
            FuzzCheck.require(verdicts.isEmpty, "an escalation past its last use was answered")
        }
        for verdict in verdicts {
            FuzzCheck.require(verdict.escalationId == decoded?.id, "a verdict answers another escalation")
            let read = try? Verdict(decoding: verdict.encoded())
            FuzzCheck.require(read == verdict, "the edge cannot read the verdict the worker sent: \(verdict)")
        }
        return admissible ? .accepted : .refused
    }
}

/// The cloud worker the escalation target drives, built once: a flatten → dense model over 8 × 2 windows, an edge
/// model version whose standardization differs from the full model's, and an in-memory store.
enum EscalationFixture {
    /// Topics the target picks from: a device's escalations, another device's (a payload naming dev-1 there is
    /// refused), an artifact level and another kind.
    static let topics = [
        "tandem/v1/plant/dev-1/escalations", "tandem/v1/plant/dev-2/escalations", "tandem/v1/plant/models/escalations",
        "tandem/v1/plant/dev-1/labels",
    ]
    /// An escalation id the store has answered already, so a delivery of it takes the duplicate path.
    static let answeredID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1))
    static let window = 8
    static let channels = 2
    static let classNames = ["normal", "bearing-fault", "imbalance"]
    /// The edge model version whose windows the worker maps to the full model's standardization.
    static let edgeVersion = "edge-1"

    static let server: EscalationServer = {
        do {
            let (model, manifest) = try fullModel()
            let edge = InputSpec(
                channels: channels, window: window, hop: window / 2, mean: [0.5, -1], std: [2, 0.25])
            // Millions of messages from one device: no rate limit, so each is judged on its contents.
            var configuration = EscalationServer.Configuration(
                broker: try MQTTBrokerConfiguration(url: "mqtt://127.0.0.1:1"))
            configuration.deviceLimit = nil
            configuration.modelThreads = 1
            let server = try EscalationServer(
                configuration: configuration,
                model: .float(model), manifest: manifest, edgeInputs: [edgeVersion: edge], store: FuzzStore.shared,
                logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
            blocking { await server.closeClient() }
            return server
        } catch {
            fatalError("cannot build the escalation fuzz fixture: \(error)")
        }
    }()

    /// The full model: flatten → dense with fixed weights, standardization mean 0.1, std 1.5.
    static func fullModel() throws -> (FloatModel, ModelManifest) {
        let inputs = window * channels
        let classes = classNames.count
        let architecture = [LayerSpec(type: .flatten), LayerSpec(type: .dense, units: classes)]
        let weights = (0..<(classes * inputs)).map { Float(($0 * 7919) % 23 - 11) / 10 }
        let model = try FloatModel(
            architecture: architecture, window: window, channels: channels, classes: classes,
            weights: [
                "1.weight": Tensor(shape: [classes, inputs], scalars: weights),
                "1.bias": Tensor(shape: [classes], scalars: [0.1, 0, -0.1]),
            ])
        let manifest = ModelManifest(
            name: "full", version: "full-1", createdAt: "2026-01-01T00:00:00Z", architecture: architecture,
            input: InputSpec(
                channels: channels, window: window, hop: window / 2, mean: [0.1, 0.1], std: [1.5, 1.5]),
            classNames: classNames)
        return (model, manifest)
    }

    /// Writes the CRC-32 of everything before the last four bytes into them.
    static func repairChecksum(_ payload: inout [UInt8]) {
        guard payload.count >= 4 else { return }
        let crc = payload.withUnsafeBytes {
            CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[..<(payload.count - 4)]))
        }
        for k in 0..<4 { payload[payload.count - 4 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
    }

    /// Runs `body` to completion from synchronous code (fixture setup, outside any task).
    static func blocking(_ body: @escaping @Sendable () async -> Void) {
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            await body()
            done.signal()
        }
        done.wait()
    }
}

/// A sample store in memory that keeps only what the targets look at: the last ids inserted (so a repeated id is
/// a duplicate) and one answered escalation. Bounded, so a fuzzing run of millions of inputs holds a few kilobytes.
final class FuzzStore: EscalationStore, @unchecked Sendable {
    // @unchecked: every stored property is read and written under `lock`.
    static let shared = FuzzStore()
    private let lock = NSLock()
    private var recent: [UUID] = []
    private var labels = 0

    func insert(_ escalations: [SampleStore.Escalation]) throws -> [Bool] {
        lock.withLock {
            escalations.map { escalation in
                if escalation.id == EscalationFixture.answeredID || recent.contains(escalation.id) { return false }
                recent.append(escalation.id)
                if recent.count > 16 { recent.removeFirst() }
                return true
            }
        }
    }

    func answer(_ verdicts: [(id: UUID, verdict: SampleStore.StoredVerdict)], at time: Double) throws {}

    func verdict(for id: UUID) throws -> SampleStore.StoredVerdict? {
        id == EscalationFixture.answeredID
            ? SampleStore.StoredVerdict(label: 1, probabilities: [0.2, 0.7, 0.1], model: "full-1") : nil
    }

    func claimStale(worker: String, staleSeconds: Double, now: Double, limit: Int, maximumClaims: Int) throws
        -> SampleStore.Claim
    {
        SampleStore.Claim()
    }

    func markTerminal(_ ids: [UUID], reason: SampleStore.TerminalReason, at time: Double) throws -> [UUID] { ids }

    func terminalCounts() throws -> [SampleStore.TerminalReason: Int] { [:] }

    func labelRange(_ range: TimeRangeLabel, label: Int, at time: Double) throws -> Int { 0 }
    func unlabelled(limit: Int) throws -> [SampleStore.UnlabelledEscalation] { [] }

    func counts() throws -> (rows: Int, answered: Int) { lock.withLock { (recent.count, 0) } }

    func ids() throws -> [UUID] { lock.withLock { recent } }

    func recordLabels(_ labels: [(id: UUID, label: Int)], from origin: SampleStore.LabelOrigin, at time: Double) throws
        -> [SampleStore.LabelOutcome]
    {
        lock.withLock {
            self.labels += labels.count
            return labels.map { recent.contains($0.id) ? .matched : .pending }
        }
    }

    func labelCount() throws -> Int { lock.withLock { labels } }
}
