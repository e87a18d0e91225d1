#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The retained message on `tandem/v1/{fleet}/{device}/policy` that changes a running agent's escalation settings
/// without a restart (docs/PROTOCOL.md "Agent policy").
///
/// Signed with the fleet's signing key over ``signedBytes`` (the context string `tandem-agent-policy-v1`, then the
/// fleet, the device, the policy's version, its sequence — taken from the fleet's one order of signed messages, so it
/// is above every assignment and policy signed before it — its expiry and every setting). A device takes one only if
/// it is signed by a key it trusts and no revocation list revoked, is for its fleet and its own id, has a sequence
/// above the newest policy it took and has not expired. A setting the policy leaves out keeps the agent's
/// `agent.yaml` value; a policy with no setting returns the agent to its local configuration.
public struct AgentPolicy: Sendable, Equatable {
    /// What a policy may change: the settings that are safe to change while windows flow.
    public struct Settings: Sendable, Equatable, Codable {
        /// The confidence measure: `maxProbability`, `margin` or `entropy` (agent.yaml `policy.measure`).
        public var measure: String?
        /// The escalation threshold, 0…1 (`policy.threshold`; the starting threshold in budget mode).
        public var threshold: Double?
        /// The share of windows to escalate, in (0, 1) (`policy.budget`): the agent adapts its threshold to it.
        public var budget: Double?
        /// The most escalations per second, at least 0 (`policy.maxEscalationsPerSecond`).
        public var maxEscalationsPerSecond: Double?
        /// The rate cap's burst, at least 1 (`policy.burst`).
        public var burst: Double?

        /// The measures an agent knows.
        public static let measures = ["maxProbability", "margin", "entropy"]

        /// Settings as given; nil leaves the agent's own value.
        public init(
            measure: String? = nil, threshold: Double? = nil, budget: Double? = nil,
            maxEscalationsPerSecond: Double? = nil, burst: Double? = nil
        ) {
            self.measure = measure
            self.threshold = threshold
            self.budget = budget
            self.maxEscalationsPerSecond = maxEscalationsPerSecond
            self.burst = burst
        }

        /// Whether it sets nothing (the agent's local configuration).
        public var isEmpty: Bool { self == Settings() }

        /// Checks every setting is within the range agent.yaml allows.
        ///
        /// - Throws: ``PayloadError`` (`malformed`) naming the setting.
        public func check() throws(PayloadError) {
            if let measure, !Self.measures.contains(measure) {
                throw PayloadError(
                    .malformed,
                    "policy measure '\(measure.prefix(40))' is not one of \(Self.measures.joined(separator: ", "))")
            }
            let checks: [(String, Double?, (Double) -> Bool, String)] = [
                ("threshold", threshold, { (0...1).contains($0) }, "within [0, 1]"),
                ("budget", budget, { $0 > 0 && $0 < 1 }, "within (0, 1)"),
                ("maxEscalationsPerSecond", maxEscalationsPerSecond, { $0 >= 0 && $0 <= 1e6 }, "within [0, 1e6]"),
                ("burst", burst, { $0 >= 1 && $0 <= 1e6 }, "within [1, 1e6]"),
            ]
            for (name, value, inRange, range) in checks {
                if let value, !(value.isFinite && inRange(value)) {
                    throw PayloadError(.malformed, "policy \(name) must be \(range), not \(value)")
                }
            }
        }

        /// `threshold 0.6, budget 0.1`: the settings it makes, or `local configuration`.
        public var summary: String {
            var parts: [String] = []
            if let measure { parts.append("measure \(measure)") }
            if let threshold { parts.append("threshold \(threshold)") }
            if let budget { parts.append("budget \(budget)") }
            if let maxEscalationsPerSecond { parts.append("at most \(maxEscalationsPerSecond) escalations/s") }
            if let burst { parts.append("burst \(burst)") }
            return parts.isEmpty ? "local configuration" : parts.joined(separator: ", ")
        }
    }

    /// The policy's version (a topic-safe name, e.g. `policy-3`).
    public var version: String
    /// What it sets.
    public var settings: Settings
    /// The fleet it is for.
    public var fleet: String
    /// The device it is for.
    public var device: String
    /// Its place in the fleet's order of signed messages.
    public var sequence: UInt64
    /// When it stops being valid, in seconds since 1970.
    public var expiresAt: UInt64
    /// The signature over ``signedBytes``; nil before signing.
    public var signature: MessageSignature?

    /// The largest policy message read; a real one is about 400 bytes.
    public static let maximumMessageBytes = 4096
    /// The context string the signed bytes start with.
    public static let signatureContext = "tandem-agent-policy-v1"

    /// A policy to sign.
    public init(
        version: String, settings: Settings, fleet: String, device: String, sequence: UInt64, expiresAt: UInt64
    ) {
        self.version = version
        self.settings = settings
        self.fleet = fleet
        self.device = device
        self.sequence = sequence
        self.expiresAt = expiresAt
    }

    /// The bytes the signature covers: the context and a zero byte, fleet, device, version (u16 length + UTF-8),
    /// sequence and expiry (u64 little-endian), then each setting as a presence byte followed by its value (the
    /// measure as text, numbers as the IEEE 754 bits of a binary64, little-endian).
    public var signedBytes: [UInt8] {
        var writer = CanonicalBytes(context: Self.signatureContext)
        writer.append(fleet)
        writer.append(device)
        writer.append(version)
        writer.append(sequence)
        writer.append(expiresAt)
        writer.append(UInt8(settings.measure == nil ? 0 : 1))
        writer.append(settings.measure ?? "")
        for value in [
            settings.threshold, settings.budget, settings.maxEscalationsPerSecond, settings.burst,
        ] {
            writer.append(UInt8(value == nil ? 0 : 1))
            writer.append((value ?? 0).bitPattern)
        }
        return writer.bytes
    }

    /// Reads a policy message; the signature is not checked here (the protocol holds no keys), but one without a
    /// signature, with a setting out of range or a number the JSON readers cannot hold exactly is refused.
    ///
    /// - Throws: ``PayloadError`` (`malformed`, `unsupportedVersion`) saying what is wrong.
    public init(decoding bytes: [UInt8]) throws(PayloadError) {
        guard bytes.count <= Self.maximumMessageBytes else {
            throw PayloadError(
                .malformed, "agent policy of \(bytes.count) bytes, more than \(Self.maximumMessageBytes)", offset: 0)
        }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch {
            throw PayloadError(.malformed, "agent policy is not {v, version, fleet, device, sequence, …} JSON")
        }
        guard wire.v == 1 else {
            throw PayloadError(.unsupportedVersion, "agent policy version \(wire.v), this agent reads 1")
        }
        guard ModelAssignment.isName(wire.version), ModelAssignment.isName(wire.fleet),
            ModelAssignment.isName(wire.device)
        else { throw PayloadError(.malformed, "agent policy needs a topic-safe version, fleet and device") }
        let range = 1...ModelAssignment.maximumNumber
        guard range.contains(wire.sequence), range.contains(wire.expires) else {
            throw PayloadError(
                .malformed, "agent policy sequence and expires must be within 1…\(ModelAssignment.maximumNumber)")
        }
        try wire.settings.check()
        guard let keyID = wire.keyId, let signatureHex = wire.signature,
            let signature = MessageSignature(keyIDHex: keyID, signatureHex: signatureHex)
        else {
            throw PayloadError(.malformed, "agent policy needs keyId (16 hex digits) and signature (128 hex digits)")
        }
        self.init(
            version: wire.version, settings: wire.settings, fleet: wire.fleet, device: wire.device,
            sequence: wire.sequence, expiresAt: wire.expires)
        self.signature = signature
    }

    /// The JSON bytes, keys sorted.
    public func encoded() -> [UInt8] {
        let wire = Wire(
            v: 1, version: version, fleet: fleet, device: device, sequence: sequence, expires: expiresAt,
            settings: settings, keyId: signature?.keyIDHex, signature: signature?.signatureHex)
        return signedMessageJSON(wire)
    }

    private struct Wire: Codable {
        var v: Int
        var version: String
        var fleet: String
        var device: String
        var sequence: UInt64
        var expires: UInt64
        var settings: Settings
        var keyId: String?
        var signature: String?
    }
}
