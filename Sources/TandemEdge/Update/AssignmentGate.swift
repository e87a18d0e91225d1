import TandemCore
import TandemProtocol

/// Decides whether a device takes a model assignment or a key revocation list, given what it took before.
///
/// An assignment is taken only if, in this order: it is signed (format 2) when the agent requires signatures;
/// its signature is by a trusted key no accepted revocation list revoked; it is for this fleet and this device
/// (or the whole fleet); its sequence is above the newest one accepted (the same assignment delivered again
/// — a retained message after a reconnect — is recognised by its signed bytes and is not a replay); it has not
/// expired; and its release is not below the serving version's unless it is a signed rollback. A revocation list
/// is taken if it is signed by a trusted key that neither it nor an earlier list revokes, is for this fleet and
/// has a higher sequence; revocations only accumulate.
///
/// A pure value: the record comes in, the record to persist goes out, time comes in as `now:` (seconds since
/// 1970), keys as ``TrustedKeys``. ``ModelUpdater`` persists what it returns before acting on it; the emulated
/// devices of `tandem bench fleet` hold assignments to the same checks.
public struct AssignmentGate: Sendable {
    /// What the device took before.
    public var record: AssignmentRecord
    /// The device's fleet.
    public let fleet: String
    /// The device's id.
    public let device: String
    /// Whether only signed assignments and lists are taken (`model.requireSignature`, or trusted keys configured:
    /// always on a provisioned agent).
    public let requireSignature: Bool

    /// A gate for `device` of `fleet` that has taken `record` so far.
    public init(record: AssignmentRecord, fleet: String, device: String, requireSignature: Bool) {
        self.record = record
        self.fleet = fleet
        self.device = device
        self.requireSignature = requireSignature
    }

    /// What to do with an assignment that passed.
    public enum Decision: Equatable, Sendable {
        /// A new assignment: persist `record` (its sequence taken), then fetch and install the model.
        case accept(AssignmentRecord)
        /// The assignment accepted last, delivered again: nothing to persist; install it if it is not serving.
        case current
        /// An unsigned assignment on an agent that checks no signatures: no order to keep, install it.
        case unordered
    }

    /// Checks `assignment`.
    ///
    /// - Parameters:
    ///   - assignment: The decoded message.
    ///   - keys: The configured keys with the record's revocations.
    ///   - now: Seconds since 1970.
    /// - Throws: ``AssignmentRefusal`` saying why it is refused.
    public func check(_ assignment: ModelAssignment, keys: TrustedKeys, now: UInt64) throws(AssignmentRefusal)
        -> Decision
    {
        guard let terms = assignment.terms else {
            if requireSignature {
                throw AssignmentRefusal(
                    .unsigned,
                    "an unsigned (format 1) assignment; this agent takes only assignments signed by its trusted keys")
            }
            return .unordered
        }
        let signed = assignment.signedBytes
        if requireSignature {
            guard let carried = assignment.signature,
                let signature = ArtifactSignature(keyID: carried.keyID, signature: carried.signature)
            else { throw AssignmentRefusal(.unsigned, "the assignment carries no signature") }
            try Self.verify(signature, over: signed, keys: keys, what: "assignment")
        }
        guard terms.fleet == fleet else {
            throw AssignmentRefusal(
                .wrongFleet, "the assignment is for fleet \(terms.fleet), this device is in \(fleet)")
        }
        guard terms.target.includes(device) else {
            let target = if case .device(let other) = terms.target { other } else { "?" }
            throw AssignmentRefusal(.wrongDevice, "the assignment is for device \(target), this is \(device)")
        }
        let digest = ModelArtifact.fileDigestHex(signed)
        if terms.sequence == record.sequence && digest == record.assignmentDigest { return .current }
        guard terms.sequence > record.sequence else {
            throw AssignmentRefusal(
                .replayed,
                "assignment sequence \(terms.sequence) is not above \(record.sequence), the newest accepted")
        }
        guard now < terms.expiresAt else {
            throw AssignmentRefusal(
                .expired, "the assignment expired at \(terms.expiresAt) (seconds since 1970); it is now \(now)")
        }
        let older =
            terms.release < record.servingRelease
            || (terms.release == record.servingRelease && assignment.version != record.servingVersion
                && record.servingVersion != nil)
        if older && !terms.rollback {
            throw AssignmentRefusal(
                .downgrade,
                "\(assignment.version) (release \(terms.release)) is older than \(record.servingVersion ?? "?") "
                    + "(release \(record.servingRelease)) and the assignment is not a signed rollback")
        }
        var next = record
        next.sequence = terms.sequence
        next.assignmentDigest = digest
        return .accept(next)
    }

    /// The record once `version` of `assignment` serves.
    public func serving(_ assignment: ModelAssignment) -> AssignmentRecord {
        var next = record
        if let terms = assignment.terms {
            next.servingVersion = assignment.version
            next.servingRelease = terms.release
        }
        return next
    }

    /// Checks a revocation list.
    ///
    /// - Parameters:
    ///   - list: The decoded message.
    ///   - keys: The configured keys; the revocations checked are the record's and the list's.
    /// - Returns: The record to persist, or nil when `list` is the one accepted last, delivered again.
    /// - Throws: ``AssignmentRefusal`` saying why it is refused.
    public func check(_ list: KeyRevocationList, keys: TrustedKeys) throws(AssignmentRefusal) -> AssignmentRecord? {
        guard list.fleet == fleet else {
            throw AssignmentRefusal(
                .wrongFleet, "the revocation list is for fleet \(list.fleet), this device is in \(fleet)")
        }
        guard let carried = list.signature,
            let signature = ArtifactSignature(keyID: carried.keyID, signature: carried.signature)
        else { throw AssignmentRefusal(.unsigned, "the revocation list carries no signature") }
        // A list may not be signed by a key it revokes, nor by one revoked before.
        let revoked = Set(record.revokedKeyIDs).union(list.revokedKeyIDs)
        try Self.verify(
            signature, over: list.signedBytes, keys: TrustedKeys(keys.keys, revokedKeyIDs: revoked),
            what: "revocation list")
        let known = Set(record.revokedKeyIDs)
        if list.sequence == record.revocationSequence && known.isSuperset(of: list.revokedKeyIDs) { return nil }
        guard list.sequence > record.revocationSequence else {
            throw AssignmentRefusal(
                .replayed,
                "revocation list sequence \(list.sequence) is not above \(record.revocationSequence), the newest accepted"
            )
        }
        var next = record
        next.revocationSequence = list.sequence
        next.revokedKeyIDs = revoked.sorted()
        return next
    }

    private static func verify(
        _ signature: ArtifactSignature, over message: [UInt8], keys: TrustedKeys, what: String
    ) throws(AssignmentRefusal) {
        do {
            try keys.verify(signature, over: message)
        } catch {
            let code: AssignmentRefusal.Code = error.code == .revokedKey ? .revoked : .untrusted
            throw AssignmentRefusal(code, "\(what) \(error.message)")
        }
    }
}

/// Why a device refused a model assignment or a key revocation list; the previous model keeps serving.
public struct AssignmentRefusal: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of refusal.
    public enum Code: String, Sendable, CaseIterable {
        /// Unsigned, while the agent takes only signed assignments.
        case unsigned
        /// The signature does not verify or is by a key the agent does not trust.
        case untrusted
        /// The signature is by a revoked key.
        case revoked
        /// For another fleet.
        case wrongFleet
        /// For another device.
        case wrongDevice
        /// A sequence not above the newest accepted: a replayed or older message.
        case replayed
        /// Past its expiry.
        case expired
        /// Names an older release than the one serving without the rollback flag.
        case downgrade
    }

    /// The kind of refusal.
    public var code: Code
    /// What was refused and why.
    public var message: String

    /// Creates a refusal.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`, as the status's `rejected V: …` shows it.
    public var description: String { "\(code.rawValue): \(message)" }
}
