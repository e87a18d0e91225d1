import Crypto
import Foundation
import Testing

@testable import TandemCore

/// Recomputes the body checksum of an unsigned artifact, so structural checks behind it are reached.
func rechecksummed(_ bytes: [UInt8]) -> [UInt8] {
    let bodyEnd = bytes.count - 32
    return Array(bytes[0..<bodyEnd]) + Array(SHA256.hash(data: bytes[0..<bodyEnd]))
}

func putUInt32(_ value: UInt32, at offset: Int, in bytes: inout [UInt8]) {
    for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
}

func putUInt64(_ value: UInt64, at offset: Int, in bytes: inout [UInt8]) {
    for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
}

struct ArtifactCorruptionTests {
    static let key = Curve25519.Signing.PrivateKey()

    func loadError(
        _ bytes: [UInt8], trustedKeys: [Curve25519.Signing.PublicKey]? = nil, requireSignature: Bool = false
    ) -> ArtifactError? {
        do {
            _ = try ModelArtifact(bytes: bytes, trustedKeys: trustedKeys, requireSignature: requireSignature)
            return nil
        } catch {
            return error
        }
    }

    @Test("every truncation of an unsigned and a signed artifact is an ArtifactError", arguments: [false, true])
    func everyTruncation(signed: Bool) throws {
        let artifact = signed ? try sampleArtifact().signed(with: Self.key) : sampleArtifact()
        let bytes = artifact.serialized()
        // A signed file cut right after its checksum is a valid unsigned file (a signature can always be
        // stripped); that is why the edge requires one. So signed prefixes are loaded the way the edge does.
        let keys = signed ? [Self.key.publicKey] : nil
        var codes: [ArtifactError.Code: Int] = [:]
        for length in 0..<bytes.count {
            let error = loadError(Array(bytes[0..<length]), trustedKeys: keys, requireSignature: signed)
            #expect(error != nil, "a prefix of \(length) of \(bytes.count) bytes loaded")
            if let error { codes[error.code, default: 0] += 1 }
        }
        #expect(codes.values.reduce(0, +) == bytes.count)
        #expect(Set(codes.keys).isSubset(of: [.truncated, .missingSignature]))
        #expect(codes[.missingSignature, default: 0] == (signed ? 1 : 0))
    }

    @Test("thousands of random single-bit flips are all rejected", arguments: [false, true])
    func randomBitFlips(signed: Bool) throws {
        let artifact = signed ? try sampleArtifact().signed(with: Self.key) : sampleArtifact()
        let original = artifact.serialized()
        var rng = SeededGenerator(seed: signed ? 0x5167_4E45_44 : 0x0C0F_FEE)
        for _ in 0..<3000 {
            var bytes = original
            let bit = Int.random(in: 0..<(bytes.count * 8), using: &rng)
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            // No keys given: the signature block's own checksum still catches flips inside it.
            #expect(loadError(bytes) != nil, "flipping bit \(bit) was not detected")
            if signed, bit / 8 >= original.count - 112 {
                #expect(loadError(bytes, trustedKeys: [Self.key.publicKey], requireSignature: true) != nil)
            }
        }
    }

    @Test("every single-bit flip in the signature block is rejected, with or without keys")
    func signatureBlockFlips() throws {
        let original = try sampleArtifact().signed(with: Self.key).serialized()
        for bit in ((original.count - 112) * 8)..<(original.count * 8) {
            var bytes = original
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(loadError(bytes) != nil)
            #expect(loadError(bytes, trustedKeys: [Self.key.publicKey], requireSignature: true) != nil)
        }
    }

    @Test("random flips behind a recomputed checksum never crash the parser")
    func flipsBehindValidChecksum() throws {
        let original = sampleArtifact().serialized()
        let dataOffset = Int(original.littleEndianValues(of: UInt64.self, at: 32, count: 1)[0])
        var rng = SeededGenerator(seed: 42)
        var rejected = 0
        for _ in 0..<3000 {
            var bytes = original
            // Aim at the header, manifest and tensor table, where the structure lives.
            let bit = Int.random(in: 0..<(dataOffset * 8), using: &rng)
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            if loadError(rechecksummed(bytes)) != nil { rejected += 1 }
        }
        #expect(rejected > 1000)
    }

    @Test("a file with another format version names both versions")
    func wrongVersion() throws {
        var bytes = sampleArtifact().serialized()
        putUInt32(2, at: 8, in: &bytes)
        let error = try #require(loadError(bytes))
        #expect(error.code == .unsupportedVersion)
        #expect(error.message.contains("version 2") && error.message.contains("version 1"))
        #expect(error.offset == 8)
    }

    @Test("bad magic, trailing bytes and a checksum mismatch have their own codes")
    func badMagicAndTrailingBytes() throws {
        let bytes = sampleArtifact().serialized()
        #expect(loadError(Array("hello world, not a model".utf8))?.code == .badMagic)
        #expect(loadError(bytes + [0])?.code == .trailingBytes)
        #expect(loadError(bytes + Array(repeating: 0, count: 200))?.code == .trailingBytes)
        let signed = try sampleArtifact().signed(with: Self.key).serialized()
        #expect(loadError(signed + [0x54])?.code == .trailingBytes)
        var flipped = bytes
        flipped[100] ^= 0x01
        let error = try #require(loadError(flipped))
        #expect(error.code == .checksumMismatch)
        #expect(error.offset == bytes.count - 32)
    }

    @Test("absurd counts, dimensions and offsets are rejected before anything is allocated")
    func hostileHeaderAndTable() throws {
        let original = sampleArtifact().serialized()
        let manifestLength = Int(original.littleEndianValues(of: UInt32.self, at: 16, count: 1)[0])
        let tableOffset = 48 + manifestLength
        // First entry: conv.weight, name length 11, float32, rank 3.
        let dimsOffset = tableOffset + 4 + 11
        let cases: [(String, (inout [UInt8]) -> Void, ArtifactError.Code)] = [
            ("tensor count 2^32-1", { putUInt32(.max, at: 20, in: &$0) }, .malformed),
            ("tensor count fills the table", { putUInt32(60_000, at: 20, in: &$0) }, .malformed),
            ("manifest length 2^32-1", { putUInt32(.max, at: 16, in: &$0) }, .malformed),
            ("data length 2^64-1", { putUInt64(.max, at: 40, in: &$0) }, .malformed),
            ("data offset misaligned", { putUInt64(65, at: 32, in: &$0) }, .malformed),
            ("dimension 2^63", { putUInt64(1 << 63, at: dimsOffset, in: &$0) }, .malformed),
            (
                "dimensions whose product overflows",
                {
                    putUInt64(1 << 31, at: dimsOffset, in: &$0)
                    putUInt64(1 << 31, at: dimsOffset + 8, in: &$0)
                    putUInt64(1 << 31, at: dimsOffset + 16, in: &$0)
                }, .malformed
            ),
            ("byte length off by one", { putUInt64(97, at: dimsOffset + 24 + 8, in: &$0) }, .malformed),
            ("rank 200", { $0[tableOffset + 3] = 200 }, .malformed),
            ("unknown element type", { $0[tableOffset + 2] = 9 }, .malformed),
            ("name that is not UTF-8", { $0[tableOffset + 4] = 0xFF }, .malformed),
            (
                "name length zero",
                {
                    $0[tableOffset] = 0; $0[tableOffset + 1] = 0
                }, .malformed
            ),
            ("flags set", { $0[12] = 1 }, .malformed),
            ("manifest that is not JSON", { $0[48] = UInt8(ascii: "x") }, .badManifest),
        ]
        for (what, mutate, code) in cases {
            var bytes = original
            mutate(&bytes)
            let error = loadError(rechecksummed(bytes))
            #expect(error?.code == code, "\(what): \(String(describing: error))")
        }
    }

    @Test("a manifest that decodes as JSON but not as a manifest reports the decoding error")
    func manifestDecodingError() throws {
        var artifact = sampleArtifact()
        artifact.manifest.name = "x"
        var bytes = artifact.serialized()
        // Rename the "name" key so the required field is missing, keeping the length.
        let json = Array("\"name\":\"x\"".utf8)
        let start = try #require(
            bytes.indices.first { bytes[$0..<min($0 + json.count, bytes.count)].elementsEqual(json) })
        bytes[start + 1] = UInt8(ascii: "m")
        let error = try #require(loadError(rechecksummed(bytes)))
        #expect(error.code == .badManifest)
        #expect(error.message.contains("name"))
    }
}
