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
    /// The agent policy in force (docs/PROTOCOL.md "Agent policy"); nil while the agent runs its agent.yaml alone.
    public var policyVersion: String?
    /// What became of the latest agent policy message: `active P` or `rejected P: reason`.
    public var policyUpdate: ModelUpdateState?
    /// Windows the edge model called novel since the agent started (absent when the model has no novelty
    /// statistics).
    public var novelWindows: Int?
    /// Novel windows per window since the agent started (absent when the model has no novelty statistics).
    public var noveltyRate: Double?
    /// Windows escalated because they were novel though confident.
    public var novelEscalations: Int?
    /// Confident windows escalated for an audit.
    public var auditEscalations: Int?

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
        case uptimeSeconds, rssBytes, outbox, badVerdicts, connected, policyVersion, policyUpdate
        case novelWindows, noveltyRate, novelEscalations, auditEscalations
    }

    /// Decodes a status; only `device` is required (`state` defaults to online).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func field<T: Decodable>(_ key: CodingKeys) -> T? { (try? c.decodeIfPresent(T.self, forKey: key)) ?? nil }
        device = try c.decode(String.self, forKey: .device)
        state = field(.state) ?? .online
        modelVersion = field(.modelVersion)
        // A long rejection reason is cut rather than refused: the rejection itself must reach the rollout.
        modelUpdate = (field(.modelUpdate) as ModelUpdateState?)?.truncated
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
        policyVersion = field(.policyVersion)
        policyUpdate = (field(.policyUpdate) as ModelUpdateState?)?.truncated
        novelWindows = field(.novelWindows)
        noveltyRate = field(.noveltyRate)
        novelEscalations = field(.novelEscalations)
        auditEscalations = field(.auditEscalations)
    }

    /// The largest status message read, in bytes.
    public static let maximumBytes = 64 * 1024
    /// The largest count a device may report: about 35 years of 1,000 windows a second, and small enough that
    /// the counts of a million devices add up without overflow.
    public static let maximumCount = 1 << 40
    /// The most streams, and reasons per stream, a status may list.
    public static let maximumStreams = 4096
    /// The longest device id, model version or model update text read.
    public static let maximumTextLength = 1024

    /// Reads a status message; nil if ``init(validating:)`` refuses it.
    public init?(decoding bytes: [UInt8]) {
        guard let status = try? DeviceStatus(validating: bytes) else { return nil }
        self = status
    }

    /// Reads a status message and checks every number and size a device reports (it is hostile until checked):
    /// counts within 0…``maximumCount``, rates and confidences finite within 0…1, times and sizes finite and
    /// non-negative, at most ``maximumStreams`` streams.
    ///
    /// - Throws: ``PayloadError`` (`malformed` naming the field, `truncated` never) when the bytes are not a JSON
    ///   object with a `device` string, are larger than ``maximumBytes``, or report a number out of range.
    public init(validating bytes: [UInt8]) throws(PayloadError) {
        guard bytes.count <= Self.maximumBytes else {
            throw PayloadError(.malformed, "status of \(bytes.count) bytes, more than \(Self.maximumBytes)")
        }
        do {
            self = try JSONDecoder().decode(DeviceStatus.self, from: Data(bytes))
        } catch {
            throw PayloadError(.malformed, "not a JSON object with a device string (\(bytes.count) bytes)")
        }
        if let problem = rangeProblem { throw PayloadError(.malformed, problem) }
    }

    /// The first field out of range, described; nil when every field is in range.
    var rangeProblem: String? {
        let counts: [(String, Int?)] = [
            ("windows", windows), ("escalations", escalations), ("cappedEscalations", cappedEscalations),
            ("verdictsInTime", verdictsInTime), ("corrections", corrections), ("badVerdicts", badVerdicts),
            ("outbox.pending", outbox?.pending), ("outbox.delivered", outbox?.delivered),
            ("outbox.dropped", outbox?.dropped), ("outbox.refused", outbox?.refused),
            ("outbox.journalBytes", outbox?.journalBytes), ("novelWindows", novelWindows),
            ("novelEscalations", novelEscalations), ("auditEscalations", auditEscalations),
        ]
        for case (let name, let value?) in counts where !(0...Self.maximumCount).contains(value) {
            return "\(name) \(value) is outside 0…\(Self.maximumCount)"
        }
        if let rss = rssBytes, !(-1...Self.maximumCount).contains(rss) { return "rssBytes \(rss) is out of range" }
        let unitFractions: [(String, Double?)] = [
            ("escalationRate", escalationRate), ("meanConfidence", meanConfidence), ("noveltyRate", noveltyRate),
        ]
        for case (let name, let value?) in unitFractions where !(value.isFinite && (0...1).contains(value)) {
            return "\(name) \(value) is outside 0…1"
        }
        if let threshold, !threshold.isFinite { return "threshold is not finite" }
        if let uptime = uptimeSeconds, !(uptime.isFinite && uptime >= 0) {
            return "uptimeSeconds \(uptime) is out of range"
        }
        for text in [
            device, modelVersion ?? "", modelUpdate?.description ?? "", policyVersion ?? "",
            policyUpdate?.description ?? "",
        ]
        where text.utf8.count > Self.maximumTextLength {
            return "a text field of \(text.utf8.count) bytes is longer than \(Self.maximumTextLength)"
        }
        if let mismatches = sampleRateMismatchHz {
            if mismatches.count > Self.maximumStreams {
                return "sampleRateMismatchHz lists \(mismatches.count) streams"
            }
            if mismatches.values.contains(where: { !$0.isFinite }) {
                return "a sampleRateMismatchHz value is not finite"
            }
        }
        if let streams = inputErrors {
            if streams.count > Self.maximumStreams { return "inputErrors lists \(streams.count) streams" }
            // The total must stay a count too (``inputErrorTotal`` adds them up).
            var total = 0
            for reasons in streams.values {
                if reasons.count > Self.maximumStreams { return "inputErrors lists \(reasons.count) reasons" }
                for count in reasons.values {
                    guard (0...Self.maximumCount).contains(count) else {
                        return "an inputErrors count \(count) is outside 0…\(Self.maximumCount)"
                    }
                    total += count
                    if total > Self.maximumCount { return "inputErrors add up to more than \(Self.maximumCount)" }
                }
            }
        }
        return nil
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

    /// Input errors over every stream and reason, if reported (at most ``maximumCount`` in a validated status);
    /// the sum saturates at `Int.max`, and negative counts (which validation refuses) add nothing, so a status
    /// built without validation cannot make it trap either.
    public var inputErrorTotal: Int? {
        inputErrors.map { streams in
            var total = 0
            for reasons in streams.values {
                for count in reasons.values where count > 0 {
                    let (sum, overflow) = total.addingReportingOverflow(count)
                    total = overflow ? .max : sum
                }
            }
            return total
        }
    }

    /// This status updated by a newer one; a last will (no model version) keeps the last known numbers.
    public func updated(by newer: DeviceStatus) -> DeviceStatus {
        guard newer.modelVersion == nil else { return newer }
        var merged = self
        merged.state = newer.state
        return merged
    }
}
