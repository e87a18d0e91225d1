import Crypto
import Foundation
import TandemCore
import TandemEdge

extension FuzzTarget {
    /// A model artifact's bytes through everything a device and the registry do before a model serves: the
    /// parser (header, checksum, manifest, tensor table, signature), ``VerifiedModel`` (input spec, float or int8
    /// model, golden self-test), the edge's windower for its input and the rule for replacing a serving model.
    ///
    /// Input: a byte of options (repair the SHA-256 and the signature block's checksum so mutations reach the
    /// layers behind them; check the signature against the fixture key; require one), then the file. Checks: an
    /// artifact read serializes to bytes that read back and serialize the same; a verified model's input spec
    /// makes a windower.
    static let artifact = FuzzTarget(
        name: "artifact",
        summary: "ModelArtifact(bytes:) → VerifiedModel (float/int8, golden self-test) → StreamWindower, replacement"
    ) { bytes in
        var input = FuzzInput(bytes)
        let options = input.byte()
        var file = Array(input.rest)
        if options & 1 == 1 { ArtifactFixture.reseal(&file) }
        let keys = options & 2 == 2 ? [ArtifactFixture.signingKey.publicKey] : nil
        let requireSignature = keys != nil && options & 4 == 4
        let artifact: ModelArtifact
        do {
            artifact = try ModelArtifact(bytes: file, trustedKeys: keys, requireSignature: requireSignature)
        } catch {
            return .refused
        }
        let written = artifact.serialized()
        let reread = try? ModelArtifact(bytes: written)
        FuzzCheck.require(reread?.serialized() == written, "an artifact read does not serialize back the same")

        let model: VerifiedModel
        do {
            model = try VerifiedModel(artifact: artifact, source: "fuzz")
        } catch {
            return .refused
        }
        let spec = model.manifest.input
        do {
            _ = try StreamWindower(spec: spec)
        } catch {
            FuzzCheck.require(false, "a verified model's input spec makes no windower: \(error)")
        }
        _ = spec.replacementDifferences(
            classNames: model.manifest.classNames, replacing: ArtifactFixture.servingInput,
            currentClasses: ArtifactFixture.servingClasses)
        return .accepted
    }
}

/// What the artifact target checks against: the signing key of the signed seeds and the input of a serving model.
package enum ArtifactFixture {
    /// The key the signed seed artifacts carry (fixed, so the seeds are reproducible; it signs nothing else).
    package static let signingKey: Curve25519.Signing.PrivateKey = {
        do {
            return try Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 0x5A, count: 32))
        } catch {
            fatalError("a 32-byte Ed25519 seed is always a key: \(error)")
        }
    }()

    static let servingInput = InputSpec(
        channels: 2, window: 8, hop: 4, mean: [0.5, -1], std: [2, 0.25], channelNames: ["x", "y"])
    static let servingClasses = ["normal", "bearing-fault", "imbalance"]

    /// Rewrites the SHA-256 after the body the header describes and, when a signature block follows, the block's
    /// own checksum: a mutated artifact then fails (or passes) on its contents, not on a stale checksum.
    static func reseal(_ file: inout [UInt8]) {
        guard file.count >= 48 else { return }
        func field(at offset: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(file[offset + $1]) << (8 * UInt64($1)) }
        }
        let (dataOffset, dataLength) = (field(at: 32), field(at: 40))
        guard dataOffset < 1 << 40, dataLength < 1 << 40 else { return }
        let bodyEnd = Int(dataOffset + dataLength)
        guard bodyEnd >= 48, file.count >= bodyEnd + 32 else { return }
        let digest = Array(SHA256.hash(data: file[0..<bodyEnd]))
        file.replaceSubrange(bodyEnd..<(bodyEnd + 32), with: digest)
        let block = bodyEnd + 32
        guard file.count == block + 112 else { return }
        let blockDigest = Array(SHA256.hash(data: digest + file[block..<(block + 80)]))
        file.replaceSubrange((block + 80)..<(block + 112), with: blockDigest)
    }
}
