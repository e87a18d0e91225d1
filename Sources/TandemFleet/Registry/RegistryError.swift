/// Why the model registry, the distributor or a rollout refused or failed an operation.
///
/// The message says what and where: the version, the file path, the topic.
public struct RegistryError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable, CaseIterable {
        /// The artifact could not be read or verified (truncated, bad checksum, bad manifest).
        case badArtifact
        /// The artifact's input spec or classes differ from the production model's.
        case incompatible
        /// A version of that name is registered already.
        case duplicateVersion
        /// The version is not registered, or its files are missing or damaged.
        case unknownVersion
        /// A version name is empty or holds characters a topic level cannot (`/`, `+`, `#`).
        case badVersionName
        /// A device id is not 1–64 letters, digits, `-`, `_` or `.`, or is a reserved topic level.
        case badDeviceName
        /// The broker refused or did not acknowledge a publish.
        case publishFailed
        /// A rollout operation does not fit the rollout's current phase, or no rollout exists.
        case rolloutState
        /// A signing key is revoked for the fleet, or signing failed.
        case signing
        /// Reading, writing or syncing a file failed.
        case io
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong, in words.
    public var message: String
    /// The file the failure refers to, if any.
    public var path: String?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: What went wrong.
    ///   - path: The file the failure refers to, if any.
    public init(_ code: Code, _ message: String, path: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
    }

    /// `path: message [code]`.
    public var description: String {
        (path.map { "\($0): " } ?? "") + "\(message) [\(code.rawValue)]"
    }
}
