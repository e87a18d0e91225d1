import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A trained model as one self-describing, checksummed and optionally signed `.tandem` file.
///
/// An artifact holds the manifest (architecture, input spec, classes, lineage, metrics), the named
/// tensors in order, golden inputs with the outputs the model must reproduce on them, and an optional
/// Ed25519 signature. The artifact only stores the golden data; whoever loads the model runs the self-test.
///
/// Changing the manifest, tensors or golden data drops the signature, since it would no longer verify;
/// call `signed(with:)` again. The byte layout is specified in docs/ARTIFACT.md.
public struct ModelArtifact: Sendable, Equatable {
    /// The model's description: architecture, input spec, classes, version, lineage and metrics.
    public var manifest: ModelManifest { didSet { signature = nil } }
    /// The model's tensors, in the order the model consumes them; names are unique.
    public var tensors: [ArtifactTensor] { didSet { signature = nil } }
    /// Inputs for the load-time self-test, `[count, window, channels]`, already normalized.
    public var goldenInputs: Tensor { didSet { signature = nil } }
    /// The outputs the model must reproduce on `goldenInputs` (within the loader's stated tolerance).
    public var goldenOutputs: Tensor { didSet { signature = nil } }
    /// The signature over this artifact's contents, if it is signed.
    public private(set) var signature: ArtifactSignature?

    /// The file name extension of artifacts, without the dot.
    public static let fileExtension = "tandem"
    /// The format version this build writes and reads.
    public static var formatVersion: UInt32 { ArtifactFormat.version }

    /// Creates an unsigned artifact.
    ///
    /// - Parameters:
    ///   - manifest: The model's manifest.
    ///   - tensors: The model's tensors in order.
    ///   - goldenInputs: Inputs for the self-test.
    ///   - goldenOutputs: Expected outputs on `goldenInputs`.
    /// - Precondition: tensor names are unique.
    public init(manifest: ModelManifest, tensors: [ArtifactTensor], goldenInputs: Tensor, goldenOutputs: Tensor) {
        precondition(Set(tensors.map(\.name)).count == tensors.count, "tensor names must be unique")
        self.manifest = manifest
        self.tensors = tensors
        self.goldenInputs = goldenInputs
        self.goldenOutputs = goldenOutputs
        self.signature = nil
    }

    init(
        manifest: ModelManifest, tensors: [ArtifactTensor], goldenInputs: Tensor, goldenOutputs: Tensor,
        signature: ArtifactSignature?
    ) {
        self.manifest = manifest
        self.tensors = tensors
        self.goldenInputs = goldenInputs
        self.goldenOutputs = goldenOutputs
        self.signature = signature
    }

    // MARK: - Tensors by name

    /// The tensor called `name`.
    ///
    /// - Parameter name: The tensor's name.
    /// - Throws: `ArtifactError` with code `missingTensor` if there is none.
    public func tensor(named name: String) throws(ArtifactError) -> ArtifactTensor {
        guard let found = tensors.first(where: { $0.name == name }) else {
            throw ArtifactError(
                .missingTensor, "model \(manifest.name) \(manifest.version) has no tensor named '\(name)'")
        }
        return found
    }

    /// The float32 tensor called `name`.
    ///
    /// - Parameter name: The tensor's name.
    /// - Throws: `ArtifactError` with code `missingTensor`, or `wrongTensorType` if it is not float32.
    public func float(named name: String) throws(ArtifactError) -> Tensor {
        let found = try tensor(named: name)
        guard case .float32(let tensor) = found.storage else { throw wrongType(found, expected: .float32) }
        return tensor
    }

    /// The int8 tensor called `name`, as its shape and row-major values.
    ///
    /// - Parameter name: The tensor's name.
    /// - Throws: `ArtifactError` with code `missingTensor`, or `wrongTensorType` if it is not int8.
    public func int8(named name: String) throws(ArtifactError) -> (shape: [Int], values: [Int8]) {
        let found = try tensor(named: name)
        guard case .int8(let shape, let values) = found.storage else { throw wrongType(found, expected: .int8) }
        return (shape, values)
    }

    /// The int32 tensor called `name`, as its shape and row-major values.
    ///
    /// - Parameter name: The tensor's name.
    /// - Throws: `ArtifactError` with code `missingTensor`, or `wrongTensorType` if it is not int32.
    public func int32(named name: String) throws(ArtifactError) -> (shape: [Int], values: [Int32]) {
        let found = try tensor(named: name)
        guard case .int32(let shape, let values) = found.storage else { throw wrongType(found, expected: .int32) }
        return (shape, values)
    }

    private func wrongType(_ tensor: ArtifactTensor, expected: ArtifactElementType) -> ArtifactError {
        ArtifactError(
            .wrongTensorType,
            "tensor '\(tensor.name)' of model \(manifest.name) \(manifest.version) is \(tensor.elementType) "
                + "\(tensor.shape), not \(expected)")
    }

    /// The SHA-256 the file stores, as 64 lowercase hex digits: it covers everything but the signature,
    /// so it names the model's contents whether or not (and by whom) it is signed.
    ///
    /// Computing it serializes the artifact; keep the result rather than asking again.
    public func contentDigest() -> String {
        ArtifactSignature.hex(Self.digest(of: serializedBody()))
    }

    // MARK: - Signing

    /// A copy of this artifact signed with `privateKey`, replacing any earlier signature.
    ///
    /// - Parameter privateKey: The Ed25519 signing key.
    /// - Throws: `ArtifactError` with code `badSignature` if the crypto library fails to sign.
    public func signed(with privateKey: Curve25519.Signing.PrivateKey) throws(ArtifactError) -> ModelArtifact {
        let digest = Self.digest(of: serializedBody())
        var copy = self
        copy.signature = try ArtifactSignature(signing: ArtifactSignature.message(digest: digest), with: privateKey)
        return copy
    }

    /// Checks this artifact's signature against `trustedKeys`.
    ///
    /// - Parameters:
    ///   - trustedKeys: The public keys whose signatures are accepted.
    ///   - revokedKeyIDs: Ids of keys whose signatures are refused even if they are among `trustedKeys`.
    /// - Returns: The key that made the signature.
    /// - Throws: `ArtifactError` with code `missingSignature` if unsigned, `revokedKey` if the key is revoked,
    ///   `untrustedKey` if no trusted key has the signature's key id, `badSignature` if the signature does not
    ///   verify.
    @discardableResult
    public func verifySignature(
        trustedKeys: [Curve25519.Signing.PublicKey], revokedKeyIDs: Set<String> = []
    ) throws(ArtifactError) -> Curve25519.Signing.PublicKey {
        guard let signature else {
            throw ArtifactError(.missingSignature, "model \(manifest.name) \(manifest.version) is not signed")
        }
        return try TrustedKeys(trustedKeys, revokedKeyIDs: revokedKeyIDs).verify(
            signature, over: ArtifactSignature.message(digest: Self.digest(of: serializedBody())))
    }

    static func digest(of bytes: some DataProtocol) -> [UInt8] {
        Array(SHA256.hash(data: bytes))
    }

    /// The SHA-256 of a whole artifact file, lower-case hex: what a model assignment names.
    public static func fileDigestHex(_ bytes: some DataProtocol) -> String {
        ArtifactSignature.hex(digest(of: bytes))
    }
}
