import TandemCore
import TandemProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The agent policy a device took last, kept next to its model (`model.path` + `.policy`) so that a replayed older
/// policy is refused after a restart too. JSON, replaced atomically; unreadable stops policy updates (not the
/// agent), as an empty record would take every policy ever signed again.
public struct PolicyRecord: Sendable, Equatable, Codable {
    /// The sequence of the newest policy taken; 0 before the first.
    public var sequence: UInt64 = 0
    /// SHA-256 (hex) of its signed bytes, to tell its redelivery from another message with the same number.
    public var digest = ""
    /// Its version.
    public var version: String?

    /// Nothing taken yet.
    public init() {}

    /// The record file of the model at `modelPath`.
    public static func path(forModelAt modelPath: String) -> String { modelPath + ".policy" }

    /// Reads the record at `path`; an empty record if there is no file.
    ///
    /// - Throws: ``ModelLoadError`` (`unreadable`) if the file exists but cannot be read or decoded.
    public static func read(from path: String) throws(ModelLoadError) -> PolicyRecord {
        try RecordFile.read(PolicyRecord.self, from: path, what: "policy", advice: "remove it to start over")
            ?? PolicyRecord()
    }

    /// Replaces the record at `path` atomically.
    ///
    /// - Throws: ``ModelLoadError`` (`unreadable`) naming the failed step.
    public func write(to path: String) throws(ModelLoadError) {
        try RecordFile.write(self, to: path, what: "policy")
    }
}

/// Decides whether a device takes an agent policy: signed by a trusted key no revocation list revoked, for this
/// fleet and this device, a sequence above the newest policy taken (the same message delivered again — a retained
/// policy after a reconnect — is recognised by its signed bytes), not expired. A pure value, like
/// ``AssignmentGate``: the record comes in, the record to persist goes out, time comes in as `now:`.
struct PolicyGate: Sendable {
    /// The newest policy taken.
    var record: PolicyRecord
    /// The device's fleet.
    let fleet: String
    /// The device's id.
    let device: String

    /// What to do with a policy that passed.
    enum Decision: Equatable {
        /// A new policy: persist the record, then apply it.
        case accept(PolicyRecord)
        /// The policy taken last, delivered again: apply it (after a restart it is not in force yet).
        case current
    }

    /// Checks `policy` against `keys` (which carry the revocations) at `now` (seconds since 1970).
    ///
    /// - Throws: ``AssignmentRefusal`` saying why it is refused.
    func check(_ policy: AgentPolicy, keys: TrustedKeys, now: UInt64) throws(AssignmentRefusal) -> Decision {
        guard let carried = policy.signature,
            let signature = ArtifactSignature(keyID: carried.keyID, signature: carried.signature)
        else { throw AssignmentRefusal(.unsigned, "the policy carries no signature") }
        let signed = policy.signedBytes
        do {
            try keys.verify(signature, over: signed)
        } catch {
            throw AssignmentRefusal(error.code == .revokedKey ? .revoked : .untrusted, "policy \(error.message)")
        }
        guard policy.fleet == fleet else {
            throw AssignmentRefusal(.wrongFleet, "the policy is for fleet \(policy.fleet), this device is in \(fleet)")
        }
        guard policy.device == device else {
            throw AssignmentRefusal(.wrongDevice, "the policy is for device \(policy.device), this is \(device)")
        }
        let digest = ModelArtifact.fileDigestHex(signed)
        if policy.sequence == record.sequence && digest == record.digest { return .current }
        guard policy.sequence > record.sequence else {
            throw AssignmentRefusal(
                .replayed, "policy sequence \(policy.sequence) is not above \(record.sequence), the newest taken")
        }
        guard now < policy.expiresAt else {
            throw AssignmentRefusal(
                .expired, "the policy expired at \(policy.expiresAt) (seconds since 1970); it is now \(now)")
        }
        var next = record
        next.sequence = policy.sequence
        next.digest = digest
        next.version = policy.version
        return .accept(next)
    }
}
