import Foundation
import TandemCore
import TandemProtocol

/// The assignment the cloud would send for the artifact `bytes`: format 2, for `device` of `fleet`, signed with
/// the private key at `keyURL` over its signed bytes (what `AssignmentSigner` does in TandemFleet).
///
/// - Parameter release: The version's release; default: the sequence (a version never assigned before).
func signedAssignment(
    of bytes: [UInt8], version: String, keyURL: URL, sequence: UInt64, release: UInt64? = nil,
    rollback: Bool = false, expiresAt: UInt64 = UInt64(Date().timeIntervalSince1970) + 3600, fleet: String = "test",
    device: String = "box1"
) throws -> ModelAssignment {
    var assignment = ModelAssignment(
        version: version, sha256: ModelArtifact.fileDigestHex(bytes), size: bytes.count,
        terms: .init(
            fleet: fleet, target: .device(device), sequence: sequence, release: release ?? sequence,
            expiresAt: expiresAt, rollback: rollback))
    try sign(&assignment, keyURL: keyURL)
    return assignment
}

/// Signs `assignment` (its signed bytes as they are) with the private key at `keyURL`.
func sign(_ assignment: inout ModelAssignment, keyURL: URL) throws {
    let key = try SigningKeyFile.readPrivateKey(from: keyURL)
    let signature = try ArtifactSignature(signing: assignment.signedBytes, with: key)
    assignment.signature = MessageSignature(keyID: signature.keyID, signature: signature.signature)
}

/// A revocation list for `fleet` revoking `keyIDs`, signed with the private key at `keyURL`.
func signedRevocations(_ keyIDs: [String], sequence: UInt64, keyURL: URL, fleet: String = "test") throws
    -> KeyRevocationList
{
    var list = try KeyRevocationList(fleet: fleet, sequence: sequence, revokedKeyIDs: keyIDs)
    let signature = try ArtifactSignature(
        signing: list.signedBytes, with: try SigningKeyFile.readPrivateKey(from: keyURL))
    list.signature = MessageSignature(keyID: signature.keyID, signature: signature.signature)
    return list
}
