import Crypto
import Foundation
import TandemCore
import TandemProtocol

/// Signs a fleet's model assignments (format 2) with the fleet's signing key — the key that signs its
/// artifacts — taking each assignment's sequence and release from ``FleetSigningState``.
///
/// One call signs one assignment per device, all with the same new sequence: each is for its own device, so the
/// number orders the fleet's decisions while the signatures stay device-bound. A key the fleet's revocation list
/// names is refused when the signer is made, so an operator holding an old key hears it before anything is
/// published.
public struct AssignmentSigner: Sendable {
    /// The signing key.
    public let key: Curve25519.Signing.PrivateKey
    /// Where the sequence and releases are kept.
    public let state: FleetSigningState
    /// How long an assignment stays valid, in seconds: a device that sees it later refuses it (`expired`).
    public let validitySeconds: UInt64

    /// Thirty days: long enough for a device that was switched off for a while to still take its retained
    /// assignment, short enough that an assignment withheld and replayed later has lapsed.
    public static let defaultValiditySeconds: UInt64 = 30 * 24 * 3600

    /// A signer for `state`'s fleet.
    ///
    /// - Parameters:
    ///   - key: The fleet's signing key.
    ///   - state: The fleet's signing state (in the registry's data directory).
    ///   - validitySeconds: How long assignments stay valid (at least a minute).
    /// - Throws: ``RegistryError`` (`signing`) if the fleet's revocation list names the key; `io` if the list
    ///   cannot be read.
    public init(
        key: Curve25519.Signing.PrivateKey, state: FleetSigningState,
        validitySeconds: UInt64 = AssignmentSigner.defaultValiditySeconds
    ) throws(RegistryError) {
        let keyID = ArtifactSignature.keyIDHex(for: key.publicKey)
        if let revoked = try state.revocationList(), revoked.revokedKeyIDs.contains(keyID) {
            throw RegistryError(
                .signing,
                "signing key \(keyID) is revoked for fleet \(state.fleet) (revocation list \(revoked.sequence)); "
                    + "sign with a key the devices still trust", path: state.revocationsURL.path)
        }
        self.key = key
        self.state = state
        self.validitySeconds = max(60, validitySeconds)
    }

    /// The fleet.
    public var fleet: String { state.fleet }

    /// The id of the signing key (16 hex digits).
    public var keyID: String { ArtifactSignature.keyIDHex(for: key.publicKey) }

    /// Signs `artifact` (an unsigned description: version, SHA-256, size, topic) for each of `devices`.
    ///
    /// - Parameters:
    ///   - artifact: What to run.
    ///   - devices: The devices; each gets its own signed assignment.
    ///   - rollback: Whether this deliberately returns devices to an older version.
    ///   - now: The signing time; the assignments expire ``validitySeconds`` later.
    /// - Returns: Each device's signed assignment, in the order of `devices`.
    /// - Throws: ``RegistryError`` (`io`) if the sequence cannot be taken, `signing` if signing fails.
    public func sign(
        _ artifact: ModelAssignment, for devices: [String], rollback: Bool = false, now: Date = Date()
    ) throws(RegistryError) -> [(device: String, assignment: ModelAssignment)] {
        guard !devices.isEmpty else { return [] }
        let (sequence, release) = try state.nextAssignment(naming: artifact.version)
        let expiresAt = UInt64(max(0, now.timeIntervalSince1970)) + validitySeconds
        var signed: [(device: String, assignment: ModelAssignment)] = []
        signed.reserveCapacity(devices.count)
        for device in devices {
            var assignment = ModelAssignment(
                version: artifact.version, sha256: artifact.sha256, size: artifact.size, topic: artifact.topic,
                terms: .init(
                    fleet: fleet, target: .device(device), sequence: sequence, release: release,
                    expiresAt: expiresAt, rollback: rollback))
            let signature: ArtifactSignature
            do {
                signature = try ArtifactSignature(signing: assignment.signedBytes, with: key)
            } catch {
                throw RegistryError(
                    .signing, "cannot sign the assignment of \(artifact.version) to \(device): \(error)")
            }
            assignment.signature = MessageSignature(keyID: signature.keyID, signature: signature.signature)
            signed.append((device, assignment))
        }
        return signed
    }
}
