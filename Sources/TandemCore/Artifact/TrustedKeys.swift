import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The public keys whose signatures are accepted, less the revoked ones.
///
/// A device trusts every key its configuration names (several during a key rotation) until a signed
/// revocation list names one: from then on whatever that key signed — artifacts, model assignments, later
/// revocation lists — is refused with `revokedKey`, even though the key file is still configured. The same
/// check serves every signed Tandem message, so a revoked key is refused everywhere at once.
public struct TrustedKeys: Sendable {
    /// The configured keys, revoked ones included.
    public let keys: [Curve25519.Signing.PublicKey]
    /// Ids (16 lower-case hex digits) of keys whose signatures are refused.
    public let revokedKeyIDs: Set<String>

    /// Trusts `keys` except those whose id is in `revokedKeyIDs`.
    ///
    /// - Parameters:
    ///   - keys: The public keys.
    ///   - revokedKeyIDs: Ids of revoked keys, as ``ArtifactSignature/keyIDHex`` spells them.
    public init(_ keys: [Curve25519.Signing.PublicKey], revokedKeyIDs: Set<String> = []) {
        self.keys = keys
        self.revokedKeyIDs = revokedKeyIDs
    }

    /// Reads the public key files at `paths`.
    ///
    /// - Parameters:
    ///   - paths: Public key files (``SigningKeyFile``).
    ///   - revokedKeyIDs: Ids of revoked keys.
    /// - Throws: `ArtifactError` (`badKeyFile`, `io`) naming the first file that cannot be used.
    public static func read(paths: [String], revokedKeyIDs: Set<String> = []) throws(ArtifactError) -> TrustedKeys {
        var keys: [Curve25519.Signing.PublicKey] = []
        for path in paths {
            keys.append(try SigningKeyFile.readPublicKey(from: URL(fileURLWithPath: path)))
        }
        return TrustedKeys(keys, revokedKeyIDs: revokedKeyIDs)
    }

    /// The ids of the keys that are trusted and not revoked.
    public var activeKeyIDs: [String] {
        keys.map(ArtifactSignature.keyIDHex(for:)).filter { !revokedKeyIDs.contains($0) }
    }

    /// Checks that `signature` is a valid signature over `message` by a trusted key that is not revoked.
    ///
    /// - Parameters:
    ///   - signature: The signature and the id of the key that made it.
    ///   - message: The signed bytes, context string first.
    ///   - offset: Where the signature sits in a file, for the error.
    /// - Returns: The key that made the signature.
    /// - Throws: `ArtifactError`: `revokedKey` if the key is revoked, `untrustedKey` if no trusted key has the
    ///   signature's key id, `badSignature` if the signature does not verify.
    @discardableResult
    public func verify(
        _ signature: ArtifactSignature, over message: [UInt8], offset: Int? = nil
    ) throws(ArtifactError) -> Curve25519.Signing.PublicKey {
        // Revocation first: a revoked key is refused by name, whether or not it is still configured.
        guard !revokedKeyIDs.contains(signature.keyIDHex) else {
            throw ArtifactError(.revokedKey, "signed by key \(signature.keyIDHex), which is revoked", offset: offset)
        }
        guard let key = keys.first(where: { ArtifactSignature.keyID(for: $0) == signature.keyID }) else {
            throw ArtifactError(
                .untrustedKey,
                "signed by key \(signature.keyIDHex), which is not among the trusted keys "
                    + "[\(activeKeyIDs.joined(separator: ", "))]", offset: offset)
        }
        guard key.isValidSignature(signature.signature, for: message) else {
            throw ArtifactError(
                .badSignature, "the signature by key \(signature.keyIDHex) does not match the contents", offset: offset)
        }
        return key
    }
}
