#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The retained message on `tandem/v1/{fleet}/{device}/model` that tells a device which model to run.
///
/// Format 2 (what the cloud writes) is signed with the fleet's signing key — the key that signs artifacts —
/// over ``signedBytes``: the artifact (version, SHA-256, size, topic) and the ``Terms``: the fleet and device it
/// is for, its place in the fleet's order of assignments (`sequence`), the order of the version it names
/// (`release`), when it expires, and whether it is a deliberate return to an older version (`rollback`). A
/// device refuses one that is not signed by a key it trusts, is for another fleet or device, has expired, has a
/// sequence not above the last one it accepted (a replay), or names an older release without the rollback flag
/// (docs/PROTOCOL.md, "Model assignment").
///
/// Format 1 is the same artifact description unsigned; only an agent that checks no signatures takes it.
/// The protocol encodes and decodes; signing and verifying happen where the keys are (TandemCore's
/// `ArtifactSignature` and `TrustedKeys`).
public struct ModelAssignment: Sendable, Equatable {
    /// The model version to run.
    public var version: String
    /// SHA-256 of the artifact file, lower-case hex.
    public var sha256: String
    /// The artifact's size in bytes.
    public var size: Int
    /// Where the retained artifact is published; nil: the fleet's `models/{version}` topic.
    public var topic: String?
    /// Format 2: whom the assignment is for, its order and expiry; nil in format 1.
    public var terms: Terms?
    /// Format 2: the signature over ``signedBytes``; nil in format 1 and before signing.
    public var signature: MessageSignature?

    /// What a format 2 assignment states besides the artifact, all of it signed.
    public struct Terms: Sendable, Equatable {
        /// The fleet it is for.
        public var fleet: String
        /// The device it is for, or the whole fleet.
        public var target: Target
        /// Its place in the fleet's order of assignments: above every assignment signed for the fleet before it.
        public var sequence: UInt64
        /// The order of the version it names: the sequence of the first assignment in the fleet that named it.
        /// A lower release than the one serving is an older version.
        public var release: UInt64
        /// When it stops being valid, in seconds since 1970 (UTC).
        public var expiresAt: UInt64
        /// Whether it deliberately returns to an older version (a lower release).
        public var rollback: Bool

        /// Terms of an assignment.
        public init(
            fleet: String, target: Target, sequence: UInt64, release: UInt64, expiresAt: UInt64,
            rollback: Bool = false
        ) {
            self.fleet = fleet
            self.target = target
            self.sequence = sequence
            self.release = release
            self.expiresAt = expiresAt
            self.rollback = rollback
        }
    }

    /// Whom an assignment is for.
    ///
    /// A cohort is addressed with one assignment per device, each signed for its device: the message each device
    /// reads stays small however large the cohort, and no device's assignment can be replayed to another.
    public enum Target: Sendable, Equatable {
        /// One device of the fleet.
        case device(String)
        /// Every device of the fleet.
        case fleet

        /// Whether `device` is addressed.
        public func includes(_ device: String) -> Bool {
            switch self {
            case .device(let id): id == device
            case .fleet: true
            }
        }
    }

    /// An unsigned format 1 assignment.
    public init(version: String, sha256: String, size: Int, topic: String? = nil) {
        self.version = version
        self.sha256 = sha256
        self.size = size
        self.topic = topic
        terms = nil
        signature = nil
    }

    /// A format 2 assignment, to be signed (``signature`` set from a signature over ``signedBytes``).
    public init(version: String, sha256: String, size: Int, topic: String? = nil, terms: Terms) {
        self.init(version: version, sha256: sha256, size: size, topic: topic)
        self.terms = terms
    }

    /// The format version (`v`): 2 with terms, 1 without.
    public var formatVersion: Int { terms == nil ? 1 : 2 }

    /// The largest artifact a device accepts.
    public static let maximumSize = 64 * 1024 * 1024
    /// The largest assignment message read; a real one is about 500 bytes.
    public static let maximumMessageBytes = 16 * 1024
    /// The longest fleet, device, version or topic accepted, in bytes.
    public static let maximumNameBytes = 1024
    /// The largest sequence, release or expiry: 2⁵³ − 1, so that every JSON reader holds it exactly.
    public static let maximumNumber: UInt64 = (1 << 53) - 1
    /// The context string the signed bytes start with (followed by a zero byte).
    public static let signatureContext = "tandem-model-assignment-v2"

    /// The bytes the signature covers (format 2), docs/PROTOCOL.md "Signed bytes": the context string and a
    /// zero byte, then every field but the signature, little-endian, each text as a u16 byte length and UTF-8.
    /// Empty for a format 1 assignment, which has nothing to sign.
    public var signedBytes: [UInt8] {
        guard let terms else { return [] }
        var writer = CanonicalBytes(context: Self.signatureContext)
        writer.append(UInt8(2))
        writer.append(terms.fleet)
        switch terms.target {
        case .device(let device):
            writer.append(UInt8(1))
            writer.append(device)
        case .fleet:
            writer.append(UInt8(2))
            writer.append("")
        }
        writer.append(version)
        writer.append(raw: Hex.decode(sha256, byteCount: 32) ?? [])
        writer.append(UInt64(clamping: size))
        writer.append(topic ?? "")
        writer.append(terms.sequence)
        writer.append(terms.release)
        writer.append(terms.expiresAt)
        writer.append(UInt8(terms.rollback ? 1 : 0))
        return writer.bytes
    }

    /// Reads an assignment message, format 1 or 2. The signature is not checked here (the protocol holds no
    /// keys); a format 2 message without one is refused.
    ///
    /// - Throws: ``PayloadError`` (`malformed`, `unsupportedVersion`) saying what is wrong.
    public init(decoding bytes: [UInt8]) throws(PayloadError) {
        guard bytes.count <= Self.maximumMessageBytes else {
            throw PayloadError(
                .malformed, "model assignment of \(bytes.count) bytes, more than \(Self.maximumMessageBytes)",
                offset: 0)
        }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch {
            throw PayloadError(
                .malformed, "model assignment is not {v, version, sha256, size, …} JSON", offset: 0)
        }
        guard wire.v == 1 || wire.v == 2 else {
            throw PayloadError(.unsupportedVersion, "model assignment version \(wire.v), this agent reads 1 and 2")
        }
        guard Self.isName(wire.version), Hex.decode(wire.sha256, byteCount: 32) != nil,
            (1...Self.maximumSize).contains(wire.size)
        else {
            throw PayloadError(
                .malformed,
                "model assignment needs a topic-safe version, 64 lower-case hex sha256 and a size within 1…\(Self.maximumSize)"
            )
        }
        if let topic = wire.topic {
            guard !topic.isEmpty, topic.utf8.count <= Self.maximumNameBytes,
                !topic.contains(where: { "+#".contains($0) })
            else { throw PayloadError(.malformed, "model assignment topic must be a topic name without wildcards") }
        }
        self.init(version: wire.version, sha256: wire.sha256, size: wire.size, topic: wire.topic)
        if wire.v == 1 { return }
        terms = try Self.terms(of: wire)
        guard let keyID = wire.keyId, let signatureHex = wire.signature,
            let signature = MessageSignature(keyIDHex: keyID, signatureHex: signatureHex)
        else {
            throw PayloadError(
                .malformed, "model assignment version 2 needs keyId (16 hex digits) and signature (128 hex digits)")
        }
        self.signature = signature
    }

    private static func terms(of wire: Wire) throws(PayloadError) -> Terms {
        guard let fleet = wire.fleet, isName(fleet) else {
            throw PayloadError(.malformed, "model assignment version 2 needs a topic-safe fleet")
        }
        let target: Target
        switch (wire.target, wire.device) {
        case ("device", let device?) where isName(device): target = .device(device)
        case ("fleet", nil): target = .fleet
        default:
            throw PayloadError(
                .malformed, "model assignment target must be \"device\" with a topic-safe device, or \"fleet\" alone")
        }
        let range = 1...maximumNumber
        guard let sequence = wire.sequence, range.contains(sequence), let release = wire.release,
            range.contains(release), release <= sequence, let expires = wire.expires, range.contains(expires),
            let rollback = wire.rollback
        else {
            throw PayloadError(
                .malformed,
                "model assignment version 2 needs sequence, release (at most the sequence) and expires within "
                    + "1…\(maximumNumber), and rollback")
        }
        return Terms(
            fleet: fleet, target: target, sequence: sequence, release: release, expiresAt: expires, rollback: rollback)
    }

    /// Non-empty, at most ``maximumNameBytes``, no `/`, `+` or `#`.
    static func isName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= maximumNameBytes && !text.contains(where: { "/+#".contains($0) })
    }

    /// The JSON bytes, keys sorted.
    public func encoded() -> [UInt8] {
        var wire = Wire(v: formatVersion, version: version, sha256: sha256, size: size, topic: topic)
        if let terms {
            wire.fleet = terms.fleet
            switch terms.target {
            case .device(let device):
                wire.target = "device"
                wire.device = device
            case .fleet:
                wire.target = "fleet"
            }
            wire.sequence = terms.sequence
            wire.release = terms.release
            wire.expires = terms.expiresAt
            wire.rollback = terms.rollback
        }
        wire.keyId = signature?.keyIDHex
        wire.signature = signature?.signatureHex
        return signedMessageJSON(wire)
    }

    /// The JSON object of both formats.
    private struct Wire: Codable {
        var v: Int
        var version: String
        var sha256: String
        var size: Int
        var topic: String?
        var fleet: String?
        var target: String?
        var device: String?
        var sequence: UInt64?
        var release: UInt64?
        var expires: UInt64?
        var rollback: Bool?
        var keyId: String?
        var signature: String?
    }
}
