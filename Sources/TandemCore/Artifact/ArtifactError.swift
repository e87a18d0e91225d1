/// Why a model artifact, or a key file that protects one, could not be read, verified or written.
///
/// The message says what went wrong and where: the byte offset inside the file, the tensor's name, the
/// file path once one is known. `description` puts them on one line for logs and the command line.
public struct ArtifactError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure, for callers that react differently to each (and for per-reason counters).
    public enum Code: String, Sendable, CaseIterable {
        /// The file ends before a field the layout promises.
        case truncated
        /// The file does not start with the `.tandem` magic bytes.
        case badMagic
        /// The file declares a format version this build cannot read.
        case unsupportedVersion
        /// A SHA-256 stored in the file does not match the bytes it covers.
        case checksumMismatch
        /// The Ed25519 signature does not verify, or uses an unknown algorithm.
        case badSignature
        /// The signature's key id matches none of the trusted keys, or no keys were given to check it.
        case untrustedKey
        /// The signature is by a key a signed revocation list revoked.
        case revokedKey
        /// A signature was required but the file carries none.
        case missingSignature
        /// A length, offset, count, dimension or name breaks the layout's rules.
        case malformed
        /// The manifest is not valid JSON for a `ModelManifest`.
        case badManifest
        /// Bytes follow the last block the layout allows.
        case trailingBytes
        /// No tensor of the requested name exists.
        case missingTensor
        /// The tensor exists but holds another element type than requested.
        case wrongTensorType
        /// A key file is missing, unreadable, too widely readable or not in the expected format.
        case badKeyFile
        /// Reading, writing, syncing or renaming a file failed.
        case io
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong, in words.
    public var message: String
    /// The byte offset in the artifact the failure refers to, if it refers to one.
    public var offset: Int?
    /// The file the failure refers to, once known.
    public var path: String?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: What went wrong.
    ///   - offset: The byte offset the failure refers to, if any.
    ///   - path: The file the failure refers to, if known.
    public init(_ code: Code, _ message: String, offset: Int? = nil, path: String? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
        self.path = path
    }

    /// `path: byte N: message [code]`, leaving out the parts that are unknown.
    public var description: String {
        var parts: [String] = []
        if let path { parts.append(path) }
        if let offset { parts.append("byte \(offset)") }
        parts.append("\(message) [\(code.rawValue)]")
        return parts.joined(separator: ": ")
    }

    /// The same error, attributed to `path` unless it already names a file.
    func located(at path: String) -> ArtifactError {
        var copy = self
        if copy.path == nil { copy.path = path }
        return copy
    }
}
