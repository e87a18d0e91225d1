import Crypto
import Foundation
import TandemTestSupport
import Testing

@testable import TandemCore

/// A small artifact with every element type, a non-trivial manifest and golden data.
func sampleArtifact() -> ModelArtifact {
    let manifest = ModelManifest(
        name: "edge", version: "2026.11.23-1", parentVersion: "2026.11.20-3", createdAt: "2026-11-23T11:50:00Z",
        architecture: [
            LayerSpec(type: .conv1d, filters: 4, kernel: 3, stride: 1, padding: .same),
            LayerSpec(type: .relu), LayerSpec(type: .globalavgpool1d), LayerSpec(type: .dense, units: 3),
        ],
        input: InputSpec(
            channels: 2, window: 8, hop: 4, sampleRateHz: 100, mean: [0.5, -1], std: [2, 0.25],
            channelNames: ["x", "y"]),
        classNames: ["normal", "imbalance", "bearing"], trainingDataDigest: String(repeating: "ab", count: 32),
        metrics: ["test_accuracy": 0.9375, "macro_f1": 0.91], numerics: "int8")
    let weights = Tensor(shape: [3, 2, 4], scalars: (0..<24).map { Float($0) * 0.125 - 1.5 })
    let special = Tensor(shape: [4], scalars: [-0.0, .infinity, -.infinity, .leastNonzeroMagnitude])
    return ModelArtifact(
        manifest: manifest,
        tensors: [
            .float32("conv.weight", weights),
            .float32("conv.bias", special),
            .int8("dense.weight", shape: [3, 4], values: [-128, -1, 0, 1, 127, 5, -5, 64, -64, 2, 3, 4]),
            .int32("dense.bias", shape: [3], values: [Int32.min, 0, Int32.max]),
            .int8("empty", shape: [0, 4], values: []),
            .int32("requant.shift", shape: [], values: [7]),
        ],
        goldenInputs: Tensor(shape: [1, 8, 2], scalars: (0..<16).map { Float($0) / 7 }),
        goldenOutputs: Tensor(shape: [1, 3], scalars: [0.25, 0.5, 0.25]))
}

struct ArtifactTests {
    @Test("serialized bytes load back to an identical artifact, with every element type")
    func roundTrip() throws {
        let artifact = sampleArtifact()
        let bytes = artifact.serialized()
        let loaded = try ModelArtifact(bytes: bytes)
        #expect(loaded == artifact)
        #expect(loaded.manifest == artifact.manifest)
        #expect(loaded.serialized() == bytes)
        // Bit patterns, not float equality: -0.0 and the subnormal must survive exactly.
        let special = try loaded.float(named: "conv.bias").scalars.map(\.bitPattern)
        #expect(special == [(-0.0 as Float).bitPattern, Float.infinity.bitPattern, (-Float.infinity).bitPattern, 1])
        #expect(try loaded.int8(named: "dense.weight").values.first == -128)
        #expect(try loaded.int32(named: "dense.bias").values == [Int32.min, 0, Int32.max])
        #expect(try loaded.int8(named: "empty").shape == [0, 4])
        #expect(try loaded.int32(named: "requant.shift") == ([], [7]))
        #expect(loaded.goldenInputs == artifact.goldenInputs)
        #expect(loaded.goldenOutputs == artifact.goldenOutputs)
        #expect(loaded.signature == nil)
    }

    @Test("tensor data starts on 64-byte boundaries at the offsets the table records")
    func alignment() throws {
        let bytes = sampleArtifact().serialized()
        let dataOffset = Int(bytes.littleEndianValues(of: UInt64.self, at: 32, count: 1)[0])
        #expect(dataOffset % 64 == 0)
        // The first tensor is conv.weight: its first float is at dataOffset.
        let first = Float(bitPattern: bytes.littleEndianValues(of: UInt32.self, at: dataOffset, count: 1)[0])
        #expect(first == -1.5)
    }

    @Test("accessors name the tensor when it is missing or of another type")
    func accessors() throws {
        let artifact = sampleArtifact()
        #expect(try artifact.float(named: "conv.weight").shape == [3, 2, 4])
        let missing = #expect(throws: ArtifactError.self) { try artifact.float(named: "nope") }
        #expect(missing?.code == .missingTensor)
        #expect(missing?.description.contains("'nope'") == true)
        let wrong = #expect(throws: ArtifactError.self) { try artifact.float(named: "dense.weight") }
        #expect(wrong?.code == .wrongTensorType)
        #expect(wrong?.description.contains("int8") == true)
        #expect(throws: ArtifactError.self) { try artifact.int32(named: "dense.weight") }
        #expect(throws: ArtifactError.self) { try artifact.int8(named: "conv.bias") }
    }

    @Test("a signature verifies with the signing key and is rejected with another key")
    func signature() throws {
        let key = Curve25519.Signing.PrivateKey()
        let signed = try sampleArtifact().signed(with: key)
        let signature = try #require(signed.signature)
        #expect(signature.keyIDHex == ArtifactSignature.keyIDHex(for: key.publicKey))
        #expect(signature.keyIDHex.count == 16)
        let bytes = signed.serialized()
        #expect(bytes.count == sampleArtifact().serialized().count + 112)

        let loaded = try ModelArtifact(bytes: bytes, trustedKeys: [key.publicKey], requireSignature: true)
        #expect(loaded == signed)
        let other = Curve25519.Signing.PrivateKey().publicKey
        let both = try ModelArtifact(bytes: bytes, trustedKeys: [other, key.publicKey], requireSignature: true)
        #expect(both.signature == signature)

        let untrusted = #expect(throws: ArtifactError.self) {
            try ModelArtifact(bytes: bytes, trustedKeys: [other], requireSignature: true)
        }
        #expect(untrusted?.code == .untrustedKey)
        #expect(untrusted?.message.contains(signature.keyIDHex) == true)
        #expect(throws: ArtifactError.self) {
            try ModelArtifact(bytes: bytes, trustedKeys: [], requireSignature: false)
        }
        // Without keys the signature is not checked, but it is kept.
        #expect(try ModelArtifact(bytes: bytes).signature == signature)
    }

    @Test("a signature made by a key with a trusted key's id but different bytes is rejected")
    func forgedSignature() throws {
        let trusted = Curve25519.Signing.PrivateKey()
        let attacker = Curve25519.Signing.PrivateKey()
        let signed = try sampleArtifact().signed(with: trusted)
        let forged = try sampleArtifact().signed(with: attacker)
        var bytes = signed.serialized()
        // Splice the attacker's signature under the trusted key id and fix up the block checksum.
        let start = bytes.count - 112
        let attackerSignature = try #require(forged.signature).signature
        bytes.replaceSubrange((start + 16)..<(start + 80), with: attackerSignature)
        let digest = Array(bytes[(start - 32)..<start])
        bytes.replaceSubrange(
            (start + 80)..<(start + 112), with: Array(SHA256.hash(data: digest + bytes[start..<(start + 80)])))
        let error = #expect(throws: ArtifactError.self) {
            try ModelArtifact(bytes: bytes, trustedKeys: [trusted.publicKey], requireSignature: true)
        }
        #expect(error?.code == .badSignature)
    }

    @Test("the content digest is the stored checksum and does not change with the signature")
    func contentDigest() throws {
        let artifact = sampleArtifact()
        let bytes = artifact.serialized()
        let stored = bytes[(bytes.count - 32)...].map { String(format: "%02x", $0) }.joined()
        #expect(artifact.contentDigest() == stored)
        #expect(try artifact.signed(with: .init()).contentDigest() == stored)
    }

    @Test("an unsigned artifact is rejected when a signature is required")
    func missingSignature() throws {
        let bytes = sampleArtifact().serialized()
        let key = Curve25519.Signing.PrivateKey().publicKey
        let error = #expect(throws: ArtifactError.self) {
            try ModelArtifact(bytes: bytes, trustedKeys: [key], requireSignature: true)
        }
        #expect(error?.code == .missingSignature)
        #expect(try ModelArtifact(bytes: bytes, trustedKeys: [key], requireSignature: false).signature == nil)
        let noKeys = #expect(throws: ArtifactError.self) {
            try ModelArtifact(bytes: try sampleArtifact().signed(with: .init()).serialized(), requireSignature: true)
        }
        #expect(noKeys?.code == .untrustedKey)
    }

    @Test("changing a signed artifact drops its signature; verifySignature checks in memory")
    func mutationDropsSignature() throws {
        let key = Curve25519.Signing.PrivateKey()
        var artifact = try sampleArtifact().signed(with: key)
        #expect(
            try artifact.verifySignature(trustedKeys: [key.publicKey]).rawRepresentation
                == key.publicKey.rawRepresentation)
        artifact.manifest.version = "tampered"
        #expect(artifact.signature == nil)
        let error = #expect(throws: ArtifactError.self) { try artifact.verifySignature(trustedKeys: [key.publicKey]) }
        #expect(error?.code == .missingSignature)
    }

    @Test("write(to:) replaces the file atomically and leaves no temporary files")
    func atomicWrite() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("model.tandem")
        let first = sampleArtifact()
        try first.write(to: url)
        var second = first
        second.manifest.version = "next"
        try second.write(to: url)
        #expect(try ModelArtifact.read(from: url) == second)
        let names = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
        #expect(names == ["model.tandem"])

        let missing = scratch.url.appendingPathComponent("no-such-dir/model.tandem")
        let error = #expect(throws: ArtifactError.self) { try first.write(to: missing) }
        #expect(error?.code == .io)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) == ["model.tandem"])

        // The rename fails when the destination is a directory: the temporary file must not stay behind.
        let directory = scratch.url.appendingPathComponent("taken")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        let renameError = #expect(throws: ArtifactError.self) { try first.write(to: directory) }
        #expect(renameError?.code == .io)
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).sorted()
        #expect(left == ["model.tandem", "taken"])
    }

    @Test("read(from:) names the file in its errors")
    func readErrorsNameTheFile() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("bad.tandem")
        try Data([0x89, 0x54]).write(to: url)
        let error = #expect(throws: ArtifactError.self) { try ModelArtifact.read(from: url) }
        #expect(error?.code == .truncated)
        #expect(error?.description.hasPrefix(url.path) == true)
        let absent = #expect(throws: ArtifactError.self) {
            try ModelArtifact.read(from: scratch.url.appendingPathComponent("absent.tandem"))
        }
        #expect(absent?.code == .io)
    }
}
