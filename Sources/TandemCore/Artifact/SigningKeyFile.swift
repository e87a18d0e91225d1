import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads and writes the Ed25519 key files that sign artifacts (cloud) and verify them (edge).
///
/// A key file is one line of text: a label saying what it holds, a space, and the raw 32-byte key in
/// base64, e.g. `tandem-ed25519-public-key 3q2+7w…=`. The label keeps a public key from being loaded
/// as a private key (both are 32 bytes). Private key files are written with mode 0600 and refused
/// when group or others can read them, as ssh does.
public enum SigningKeyFile {
    /// The label of private key files.
    public static let privateKeyLabel = "tandem-ed25519-private-key"
    /// The label of public key files.
    public static let publicKeyLabel = "tandem-ed25519-public-key"

    /// Generates a new Ed25519 key pair and writes the private key to `url` (mode 0600) and the public key
    /// next to it (`publicKeyURL(forPrivateKeyAt:)`, mode 0644).
    ///
    /// - Parameters:
    ///   - url: Where the private key goes.
    ///   - replacing: Whether existing key files may be overwritten. Losing a signing key strands every
    ///     device that trusts only it, so the default refuses.
    /// - Returns: The public key file's URL and the key id (16 hex digits) artifacts signed with it carry.
    /// - Throws: `ArtifactError` with code `io` if a key file exists and `replacing` is false, or writing fails.
    @discardableResult
    public static func createKeyPair(
        at url: URL, replacing: Bool = false
    ) throws(ArtifactError) -> (publicKeyURL: URL, keyID: String) {
        let publicURL = publicKeyURL(forPrivateKeyAt: url)
        if !replacing {
            for existing in [url, publicURL] where FileManager.default.fileExists(atPath: existing.path) {
                throw ArtifactError(.io, "a key file already exists; refusing to overwrite it", path: existing.path)
            }
        }
        let key = Curve25519.Signing.PrivateKey()
        // Private key first: a crash in between leaves a key whose public half can be derived again,
        // never a public key without its private key.
        try writePrivateKey(key, to: url)
        try writePublicKey(key.publicKey, to: publicURL)
        return (publicURL, ArtifactSignature.keyIDHex(for: key.publicKey))
    }

    /// Atomically writes `key` to `url` with mode 0600.
    ///
    /// - Parameters:
    ///   - key: The private key.
    ///   - url: The destination.
    /// - Throws: `ArtifactError` with code `io` if writing fails.
    public static func writePrivateKey(_ key: Curve25519.Signing.PrivateKey, to url: URL) throws(ArtifactError) {
        try AtomicFile.write(line(privateKeyLabel, key.rawRepresentation), to: url, permissions: 0o600)
    }

    /// Atomically writes `key` to `url` with mode 0644.
    ///
    /// - Parameters:
    ///   - key: The public key.
    ///   - url: The destination.
    /// - Throws: `ArtifactError` with code `io` if writing fails.
    public static func writePublicKey(_ key: Curve25519.Signing.PublicKey, to url: URL) throws(ArtifactError) {
        try AtomicFile.write(line(publicKeyLabel, key.rawRepresentation), to: url, permissions: 0o644)
    }

    /// Reads a private key file.
    ///
    /// - Parameter url: The key file.
    /// - Throws: `ArtifactError` with code `badKeyFile` if the file is readable by group or others, or is
    ///   not a private key file; `io` if it cannot be read.
    public static func readPrivateKey(from url: URL) throws(ArtifactError) -> Curve25519.Signing.PrivateKey {
        // The label first: handing over the public key by mistake deserves that message, not one about modes.
        let raw = try readKey(from: url, label: privateKeyLabel)
        var status = stat()
        if stat(url.path, &status) == 0, status.st_mode & 0o077 != 0 {
            let mode = String(status.st_mode & 0o777, radix: 8)
            throw ArtifactError(
                .badKeyFile, "private key permissions 0\(mode) are too open; run chmod 600", path: url.path)
        }
        do {
            return try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        } catch {
            throw ArtifactError(.badKeyFile, "not a valid Ed25519 private key: \(error)", path: url.path)
        }
    }

    /// Reads a public key file.
    ///
    /// - Parameter url: The key file.
    /// - Throws: `ArtifactError` with code `badKeyFile` if it is not a public key file; `io` if it cannot be read.
    public static func readPublicKey(from url: URL) throws(ArtifactError) -> Curve25519.Signing.PublicKey {
        let raw = try readKey(from: url, label: publicKeyLabel)
        do {
            return try Curve25519.Signing.PublicKey(rawRepresentation: raw)
        } catch {
            throw ArtifactError(.badKeyFile, "not a valid Ed25519 public key: \(error)", path: url.path)
        }
    }

    /// The path of the public key that goes with the private key at `url`: the same path plus `.pub`.
    ///
    /// - Parameter url: The private key file.
    public static func publicKeyURL(forPrivateKeyAt url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".pub")
    }

    private static func line(_ label: String, _ raw: Data) -> [UInt8] {
        Array("\(label) \(raw.base64EncodedString())\n".utf8)
    }

    private static func readKey(from url: URL, label: String) throws(ArtifactError) -> Data {
        let contents: Data
        do {
            contents = try Data(contentsOf: url)
        } catch {
            throw ArtifactError(.io, "cannot read key file: \(describe(error))", path: url.path)
        }
        guard contents.count <= 4096, let text = String(data: contents, encoding: .utf8) else {
            throw ArtifactError(.badKeyFile, "not a Tandem key file (expected one line of text)", path: url.path)
        }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, fields[0] == label else {
            let found = fields.first.map { "'\($0)'" } ?? "an empty file"
            if let first = fields.first, first == privateKeyLabel || first == publicKeyLabel {
                let kind = first == privateKeyLabel ? "private" : "public"
                throw ArtifactError(.badKeyFile, "this is a \(kind) key file; expected '\(label)'", path: url.path)
            }
            throw ArtifactError(
                .badKeyFile, "expected '\(label) <base64>', found \(found)", path: url.path)
        }
        guard let raw = Data(base64Encoded: String(fields[1])), raw.count == 32 else {
            throw ArtifactError(.badKeyFile, "the key is not 32 bytes of base64", path: url.path)
        }
        return raw
    }
}
