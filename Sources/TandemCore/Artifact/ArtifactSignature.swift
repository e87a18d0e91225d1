import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The Ed25519 signature block of a model artifact: which key signed it, and the signature.
///
/// The signature is over the artifact's SHA-256 digest, prefixed with a fixed context string so a
/// Tandem signing key cannot be tricked into producing a signature that is valid for anything else
/// (see docs/ARTIFACT.md). Values come from `ModelArtifact.signed(with:)` or the loader.
public struct ArtifactSignature: Sendable, Equatable {
    /// The key id: the first 8 bytes of SHA-256 over the raw 32-byte public key.
    public let keyID: [UInt8]
    /// The 64-byte Ed25519 signature.
    public let signature: [UInt8]

    init(keyID: [UInt8], signature: [UInt8]) {
        precondition(keyID.count == Self.keyIDByteCount && signature.count == Self.signatureByteCount)
        self.keyID = keyID
        self.signature = signature
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
