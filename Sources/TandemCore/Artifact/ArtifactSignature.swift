import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// An Ed25519 signature by a Tandem signing key: which key signed, and the signature.
///
/// An artifact's signature is over its SHA-256 digest, prefixed with a fixed context string so a
/// Tandem signing key cannot be tricked into producing a signature that is valid for anything else
/// (see docs/ARTIFACT.md). Model assignments and key revocation lists are signed with the same keys
/// through ``init(signing:with:)`` and checked with ``TrustedKeys/verify(_:over:offset:)``, each over
/// bytes that start with their own context string (docs/PROTOCOL.md).
public struct ArtifactSignature: Sendable, Equatable {
    /// The key id: the first 8 bytes of SHA-256 over the raw 32-byte public key.
    public let keyID: [UInt8]
    /// The 64-byte Ed25519 signature.
    public let signature: [UInt8]

    /// A signature as a message carries it; nil unless `keyID` has 8 bytes and `signature` 64.
    ///
    /// - Parameters:
    ///   - keyID: The signing key's id.
    ///   - signature: The Ed25519 signature.
    public init?(keyID: [UInt8], signature: [UInt8]) {
        guard keyID.count == Self.keyIDByteCount, signature.count == Self.signatureByteCount else { return nil }
        self.keyID = keyID
        self.signature = signature
    }

    /// Signs `message` with `privateKey`.
    ///
    /// Every signed Tandem message starts with its own context string (the artifact's is
    /// `tandem-artifact-signature-v1`, a model assignment's `tandem-model-assignment-v2`), so a signature made
    /// for one kind of message never verifies as another; `message` must include it.
    ///
    /// - Parameters:
    ///   - message: The bytes to sign, context string first.
    ///   - privateKey: The Ed25519 signing key.
    /// - Throws: `ArtifactError` with code `badSignature` if the crypto library fails to sign.
    public init(signing message: [UInt8], with privateKey: Curve25519.Signing.PrivateKey) throws(ArtifactError) {
        let bytes: Data
        do {
            bytes = try privateKey.signature(for: message)
        } catch {
            throw ArtifactError(.badSignature, "signing failed: \(error)")
        }
        guard let signature = ArtifactSignature(keyID: Self.keyID(for: privateKey.publicKey), signature: Array(bytes))
        else {
            throw ArtifactError(.badSignature, "signing produced \(bytes.count) bytes, not 64")
        }
        self = signature
    }

    /// The key id as 16 lowercase hex digits, as `tandem sign` prints it.
    public var keyIDHex: String { Self.hex(keyID) }

    /// Bytes in a key id.
    public static let keyIDByteCount = 8
    /// Bytes in an Ed25519 signature.
    public static let signatureByteCount = 64

    /// The key id of a public key: the first 8 bytes of SHA-256 over its raw representation.
    ///
    /// - Parameter publicKey: The Ed25519 public key.
    public static func keyID(for publicKey: Curve25519.Signing.PublicKey) -> [UInt8] {
        Array(SHA256.hash(data: publicKey.rawRepresentation).prefix(keyIDByteCount))
    }

    /// The key id of a public key as 16 lowercase hex digits.
    ///
    /// - Parameter publicKey: The Ed25519 public key.
    public static func keyIDHex(for publicKey: Curve25519.Signing.PublicKey) -> String {
        hex(keyID(for: publicKey))
    }

    /// The bytes a signature covers: the context string, then the 32-byte artifact digest.
    static func message(digest: [UInt8]) -> [UInt8] {
        ArtifactFormat.signatureContext + digest
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
