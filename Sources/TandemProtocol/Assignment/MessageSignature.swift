#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The Ed25519 signature a signed message carries: the signing key's id and the signature.
///
/// The protocol only carries and encodes it; the signing and checking (with the same keys and code that sign
/// artifacts) happen where the keys are, in TandemCore's `ArtifactSignature` and `TrustedKeys`. On the wire it
/// is two JSON strings: `keyId`, 16 lower-case hex digits (the first 8 bytes of SHA-256 over the raw public
/// key, as `tandem keygen` prints it), and `signature`, 128 lower-case hex digits.
public struct MessageSignature: Sendable, Equatable {
    /// The signing key's id, 8 bytes.
    public let keyID: [UInt8]
    /// The 64-byte Ed25519 signature.
    public let signature: [UInt8]

    /// A signature; nil unless `keyID` has 8 bytes and `signature` 64.
    public init?(keyID: [UInt8], signature: [UInt8]) {
        guard keyID.count == 8, signature.count == 64 else { return nil }
        self.keyID = keyID
        self.signature = signature
    }

    /// The key id as 16 lower-case hex digits.
    public var keyIDHex: String { Hex.encode(keyID) }

    /// Reads the two wire strings; nil if either is not lower-case hex of the right length.
    init?(keyIDHex: String, signatureHex: String) {
        guard let keyID = Hex.decode(keyIDHex, byteCount: 8), let signature = Hex.decode(signatureHex, byteCount: 64)
        else { return nil }
        self.keyID = keyID
        self.signature = signature
    }

    /// The signature as 128 lower-case hex digits.
    var signatureHex: String { Hex.encode(signature) }
}

/// Lower-case hexadecimal, the one spelling of digests and key ids on the wire.
enum Hex {
    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text`, which must be exactly `byteCount` bytes in lower-case hex; nil otherwise.
    static func decode(_ text: String, byteCount: Int) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count == 2 * byteCount else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(byteCount)
        var high: UInt8 = 0
        for (i, character) in utf8.enumerated() {
            let value: UInt8
            switch character {
            case 0x30...0x39: value = character - 0x30
            case 0x61...0x66: value = character - 0x61 + 10
            default: return nil
            }
            if i.isMultiple(of: 2) {
                high = value
            } else {
                bytes.append(high << 4 | value)
            }
        }
        return bytes
    }

    /// Whether `text` is a key id: 16 lower-case hex digits.
    static func isKeyID(_ text: String) -> Bool { decode(text, byteCount: 8) != nil }
}

/// The JSON a signed message travels as: keys sorted, slashes unescaped (the signature covers ``CanonicalBytes``,
/// not these bytes, but every signed document reads the same way).
func signedMessageJSON(_ wire: some Encodable) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // Plain strings, numbers and arrays cannot fail to encode.
    return (try? Array(encoder.encode(wire))) ?? []
}

/// Writes the canonical bytes a signature covers: little-endian integers and length-prefixed UTF-8, no
/// choices left to an encoder (docs/PROTOCOL.md, "Signed bytes").
struct CanonicalBytes {
    private(set) var bytes: [UInt8]

    /// Starts with the message kind's context string and its terminating zero byte.
    init(context: String) {
        bytes = Array(context.utf8) + [0]
    }

    mutating func append(_ value: UInt8) { bytes.append(value) }

    mutating func append(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A u16 byte length, then the UTF-8 bytes; decoders keep every text well below 65,535 bytes.
    mutating func append(_ text: String) {
        let utf8 = Array(text.utf8)
        withUnsafeBytes(of: UInt16(clamping: utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: utf8.prefix(Int(UInt16.max)))
    }

    mutating func append(raw: [UInt8]) { bytes.append(contentsOf: raw) }
}
