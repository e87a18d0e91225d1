import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

extension ModelArtifact {
    /// Atomically writes the artifact to `url` (temporary file, fsync, rename, directory fsync).
    ///
    /// - Parameter url: The destination; an existing file is replaced only once the new one is complete.
    /// - Throws: `ArtifactError` with code `io` if any step fails; the destination is then unchanged.
    public func write(to url: URL) throws(ArtifactError) {
        try AtomicFile.write(serialized(), to: url)
    }

    /// Reads and verifies the artifact at `url`.
    ///
    /// - Parameters:
    ///   - url: The `.tandem` file.
    ///   - trustedKeys: Public keys whose signatures are accepted; `nil` skips signature verification.
    ///   - revokedKeyIDs: Ids of keys whose signatures are refused even if they are among `trustedKeys`.
    ///   - requireSignature: Whether an unsigned artifact is rejected.
    /// - Throws: `ArtifactError` naming the file, with code `io` if it cannot be read, otherwise as
    ///   `init(bytes:trustedKeys:revokedKeyIDs:requireSignature:)`.
    public static func read(
        from url: URL, trustedKeys: [Curve25519.Signing.PublicKey]? = nil, revokedKeyIDs: Set<String> = [],
        requireSignature: Bool = false
    ) throws(ArtifactError) -> ModelArtifact {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: url))
        } catch {
            throw ArtifactError(.io, "cannot read: \(describe(error))", path: url.path)
        }
        do {
            return try ModelArtifact(
                bytes: bytes, trustedKeys: trustedKeys, revokedKeyIDs: revokedKeyIDs, requireSignature: requireSignature
            )
        } catch {
            throw error.located(at: url.path)
        }
    }
}
