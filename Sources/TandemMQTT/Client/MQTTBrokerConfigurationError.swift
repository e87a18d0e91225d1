/// A broker configuration that cannot be used, with the setting it concerns so that a caller can name its own
/// key or flag (`broker.caFile`, `--broker-ca-file`).
public struct MQTTBrokerConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a closed set callers can switch over.
    public enum Code: String, Sendable, Hashable {
        /// The URL's scheme is not `mqtt`, `mqtts` or their aliases `tcp` and `ssl`.
        case unsupportedScheme
        /// The URL is malformed: no scheme or host, a bad port, a path, query or user information.
        case invalidURL
        /// A setting the others require is missing: a CA for `mqtts://`, half of a client certificate, the
        /// username of a password file.
        case missingSetting
        /// A TLS setting is given for a plain `mqtt://` URL.
        case unexpectedSetting
        /// A password, CA, certificate or key file cannot be read.
        case unreadableFile
        /// A password, CA, certificate or key file is empty (for a password file: its first line is).
        case emptyFile
    }

    /// The setting a problem concerns.
    public enum Setting: String, Sendable, Hashable, CaseIterable {
        /// The broker URL.
        case url
        /// The username.
        case username
        /// The password file.
        case passwordFile
        /// The CA file (or the system's trust store).
        case caFile
        /// The client certificate file.
        case certificateFile
        /// The client key file.
        case keyFile

        /// The setting in words, for messages.
        var phrase: String {
            switch self {
            case .url: "broker URL"
            case .username: "username"
            case .passwordFile: "password file"
            case .caFile: "CA file"
            case .certificateFile: "client certificate file"
            case .keyFile: "client key file"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// The setting at fault.
    public var setting: Setting
    /// What is wrong, naming the URL or the file.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ setting: Setting, _ message: String) {
        self.code = code
        self.setting = setting
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
