#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A device's retained status message on `…/status` (docs/PROTOCOL.md "Status"): the edge encodes it, the cloud's
/// fleet view, drift history and rollouts decode it.
///
/// JSON with sorted keys. The last will carries only `device` and `state`, so every other field is optional. A
/// field of the wrong type decodes as absent rather than failing the whole message (a status is advisory and a
/// newer agent may report more); unknown keys are ignored. The device a status belongs to is the one its topic
/// names: the `device` field is the agent's own account of itself and is never used as authority.
public struct DeviceStatus: Sendable, Equatable, Codable {
    /// Whether the agent is running.
    public enum State: String, Sendable, Codable {
        /// Published while the agent runs.
        case online
        /// The last will, and the agent's last message when it stops.
        case offline
    }

    /// The durable outbox's counters; present when the agent has a broker link.
    public struct Outbox: Sendable, Equatable, Codable {
        /// Messages waiting for the broker.
        public var pending: Int
        /// Messages the broker acknowledged.
        public var delivered: Int
        /// Messages dropped because the outbox was full.
        public var dropped: Int
        /// Messages the broker refused (an ACL, a size limit).
        public var refused: Int
        /// Bytes of the journal on disk.
        public var journalBytes: Int

        /// Creates outbox counters.
        public init(pending: Int, delivered: Int, dropped: Int, refused: Int, journalBytes: Int) {
            self.pending = pending
            self.delivered = delivered
            self.dropped = dropped
            self.refused = refused
            self.journalBytes = journalBytes
        }
    }

    /// The device id the agent reports.
    public var device: String
    /// `online` or `offline`.
    public var state: State
    /// The model version serving.
    public var modelVersion: String?
    /// Where the agent's model update stands.
    public var modelUpdate: ModelUpdateState?
    /// Windows classified since the agent started.
    public var windows: Int?
    /// Windows escalated since the agent started.
    public var escalations: Int?
    /// Escalations the rate cap held back.
    public var cappedEscalations: Int?
    /// Verdicts that arrived before their deadline.
    public var verdictsInTime: Int?
    /// Provisional predictions corrected by a verdict.
    public var corrections: Int?
    /// By stream: how far the measured sample rate is from the configured one, in hertz.
    public var sampleRateMismatchHz: [String: Double]?
    /// Escalations per window since the agent started.
    public var escalationRate: Double?
    /// Mean confidence of the edge model's predictions.
    public var meanConfidence: Double?
    /// The escalation threshold in force.
    public var threshold: Double?
    /// Rejected input since the agent started, by stream and reason.
    public var inputErrors: [String: [String: Int]]?
    /// Seconds since the agent started.
    public var uptimeSeconds: Double?
    /// The agent's resident memory, bytes (-1 when unknown).
    public var rssBytes: Int?
    /// The outbox's counters.
    public var outbox: Outbox?
    /// Verdicts the agent could not read.
    public var badVerdicts: Int?
    /// Whether the agent's broker connection is up.
    public var connected: Bool?

    /// Creates a status.
    public init(
        device: String, state: State = .online, modelVersion: String? = nil, modelUpdate: ModelUpdateState? = nil,
        windows: Int? = nil, escalations: Int? = nil, escalationRate: Double? = nil,
        inputErrors: [String: [String: Int]]? = nil
    ) {
        self.device = device
        self.state = state
        self.modelVersion = modelVersion
        self.modelUpdate = modelUpdate
        self.windows = windows
        self.escalations = escalations
        self.escalationRate = escalationRate
        self.inputErrors = inputErrors
    }

    /// The last will an agent leaves with the broker: `{"device":"…","state":"offline"}`.
    public static func lastWill(device: String) -> DeviceStatus { DeviceStatus(device: device, state: .offline) }

    enum CodingKeys: String, CodingKey {
        case device, state, modelVersion, modelUpdate, windows, escalations, cappedEscalations, verdictsInTime
        case corrections, sampleRateMismatchHz, escalationRate, meanConfidence, threshold, inputErrors
        case uptimeSeconds, rssBytes, outbox, badVerdicts, connected
    }

    /// Decodes a status; only `device` is required (`state` defaults to online).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func field<T: Decodable>(_ key: CodingKeys) -> T? { (try? c.decodeIfPresent(T.self, forKey: key)) ?? nil }
        device = try c.decode(String.self, forKey: .device)
        state = field(.state) ?? .online
        modelVersion = field(.modelVersion)
        modelUpdate = field(.modelUpdate)
        windows = field(.windows)
        escalations = field(.escalations)
        cappedEscalations = field(.cappedEscalations)
        verdictsInTime = field(.verdictsInTime)
        corrections = field(.corrections)
        sampleRateMismatchHz = field(.sampleRateMismatchHz)
        escalationRate = field(.escalationRate)
        meanConfidence = field(.meanConfidence)
        threshold = field(.threshold)
        inputErrors = field(.inputErrors)
        uptimeSeconds = field(.uptimeSeconds)
        rssBytes = field(.rssBytes)
        outbox = field(.outbox)
        badVerdicts = field(.badVerdicts)
        connected = field(.connected)
    }

    /// Reads a status message; nil if it is not a JSON object with a `device` string.
    public init?(decoding bytes: [UInt8]) {
        guard let status = try? JSONDecoder().decode(DeviceStatus.self, from: Data(bytes)) else { return nil }
        self = status
    }

    /// The JSON form, keys sorted.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Every field is a string, a finite number the agent computed, or a collection of them.
        return (try? Array(encoder.encode(self))) ?? Array(#"{"device":"","state":"offline"}"#.utf8)
    }

    /// The reason a device gave for refusing `version`, if its model update state says it did.
    public func rejectionReason(for version: String) -> String? {
        guard case .rejected(version, let reason) = modelUpdate else { return nil }
        return reason
    }

    /// Input errors over every stream and reason, if reported.
    public var inputErrorTotal: Int? { inputErrors.map { $0.values.reduce(0) { $0 + $1.values.reduce(0, +) } } }

    /// This status updated by a newer one; a last will (no model version) keeps the last known numbers.
    public func updated(by newer: DeviceStatus) -> DeviceStatus {
        guard newer.modelVersion == nil else { return newer }
        var merged = self
        merged.state = newer.state
        return merged
    }
}
