#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// How to reach a broker: its URL, credentials and TLS files, checked together. The one place a broker
/// URL is read; every client (agent, gateway source, cloud worker, CLI) is made through it.
///
/// Making one checks everything that needs no file: the URL (scheme first, so an unknown scheme is
/// refused before anything else), and that the settings agree with it:
///
/// * `mqtt://host[:port]` is plain TCP (default port 1883); `mqtts://host[:port]` is TLS with hostname
///   verification (default port 8883). `tcp://` and `ssl://` are accepted for them, as the edge always has.
///   A host is a name, an IPv4 address or an IPv6 address in brackets (`mqtt://[::1]:1883`). A path, query,
///   fragment or user information (`user:password@`) is refused, and so is a port outside 1…65535.
/// * `mqtts://` needs ``CertificateAuthorities``: a CA file, or the system's trust store asked for
///   explicitly (``CertificateAuthorities/system``). Trusting the system's store by default would let any
///   public CA vouch for a private broker, so it is never implied.
/// * A CA file, client certificate or key with plain `mqtt://` is an error, not a warning: it means the
///   operator expects an encrypted link that this URL would not give.
/// * A client certificate needs its key and a key its certificate; a password file needs a username.
///
/// Files are read only by ``clientConfiguration(clientID:cleanStart:sessionExpirySeconds:lastWill:)``, each
/// time it is called, so a rotated password is picked up by the next client.
public struct MQTTBrokerConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// The part of a broker URL that says where the broker is and whether the link is TLS.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        /// The host name or address, IPv6 without brackets (as libmosquitto and TLS verification want it).
        public let host: String
        /// The port.
        public let port: Int
        /// Whether the link is TLS (`mqtts://`, `ssl://`).
        public let usesTLS: Bool

        /// Reads a broker URL: `mqtt://host[:port]` or `mqtts://host[:port]`, or the aliases `tcp://` and
        /// `ssl://`; the scheme is case-insensitive and one trailing `/` is allowed.
        ///
        /// - Throws: ``MQTTBrokerConfigurationError`` with `.unsupportedScheme` for any other scheme (checked
        ///   first), `.invalidURL` for everything else that is wrong; the message names the URL, with any
        ///   user information in it masked.
        public init(url: String) throws(MQTTBrokerConfigurationError) {
            let shown = Self.masked(url)
            func invalid(_ problem: String) -> MQTTBrokerConfigurationError {
                MQTTBrokerConfigurationError(.invalidURL, .url, "broker URL '\(shown)': \(problem)")
            }
            guard let separator = url.firstRange(of: "://"), separator.lowerBound > url.startIndex else {
                throw invalid("expected mqtt://host[:port] or mqtts://host[:port]")
            }
            let scheme = url[..<separator.lowerBound].lowercased()
            switch scheme {
            case "mqtt", "tcp": usesTLS = false
            case "mqtts", "ssl": usesTLS = true
            default:
                throw MQTTBrokerConfigurationError(
                    .unsupportedScheme, .url,
                    "broker URL '\(shown)': unsupported scheme '\(scheme)'; use mqtt://host[:port] or "
                        + "mqtts://host[:port] (tcp:// and ssl:// are accepted for them)")
            }
            var authority = url[separator.upperBound...]
            if authority.hasSuffix("/") { authority = authority.dropLast() }
            if let index = authority.firstIndex(where: { "/?#".contains($0) }) {
                let part = ["/": "a path", "?": "a query", "#": "a fragment"][authority[index]] ?? "a path"
                throw invalid("\(part) is not allowed; a broker URL names only the host and port")
            }
            if authority.contains("@") {
                throw invalid("user information is not allowed in the URL; give the username and password file")
            }
            let hostPart: Substring
            let portPart: Substring?
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { throw invalid("'[' without ']'") }
                hostPart = authority[authority.index(after: authority.startIndex)..<close]
                let rest = authority[authority.index(after: close)...]
                guard rest.isEmpty || rest.hasPrefix(":") else { throw invalid("expected ':port' after ']'") }
                portPart = rest.isEmpty ? nil : rest.dropFirst()
                var address = in6_addr()
                guard inet_pton(AF_INET6, String(hostPart), &address) == 1 else {
                    throw invalid("'[\(hostPart)]' is not an IPv6 address")
                }
            } else {
                let pieces = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                hostPart = pieces[0]
                portPart = pieces.count == 2 ? pieces[1] : nil
                if portPart?.contains(":") == true {
                    throw invalid("an IPv6 address goes in brackets, e.g. mqtt://[::1]:1883")
                }
                // Letters, digits, '-', '.' and '_': a DNS name or an IPv4 address, nothing to percent-decode.
                let allowed = hostPart.utf8.allSatisfy { byte in
                    (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                        || byte == 0x2D || byte == 0x2E || byte == 0x5F
                }
                guard allowed else { throw invalid("'\(hostPart)' is not a host name or address") }
            }
            guard !hostPart.isEmpty else { throw invalid("the host is empty") }
            host = String(hostPart)
            if let portPart {
                guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
                    let value = Int(portPart), (1...65535).contains(value)
                else {
                    throw invalid("port '\(portPart)' is not a number within 1…65535")
                }
                port = value
            } else {
                port = usesTLS ? 8883 : 1883
            }
        }

        /// The endpoint as a URL with its port, `mqtts://[::1]:8883`: the scheme normalized, for messages.
        public var description: String {
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "\(usesTLS ? "mqtts" : "mqtt")://\(shownHost):\(port)"
        }

        /// `url` with any user information replaced by `***`, so that an error message cannot leak a password.
        static func masked(_ url: String) -> String {
            guard let separator = url.firstRange(of: "://") else { return url }
            let rest = url[separator.upperBound...]
            let authorityEnd = rest.firstIndex(where: { "/?#".contains($0) }) ?? rest.endIndex
            guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
            return String(url[..<separator.upperBound]) + "***" + String(rest[at...])
        }
    }

    /// The certificates that may sign the broker's TLS certificate.
    public enum CertificateAuthorities: Sendable, Hashable {
        /// The PEM file at this path.
        case file(String)
        /// The system's trust store: the first of ``MQTTBrokerConfiguration/systemTrustStores`` that can be read.
        case system

        /// Reads a setting: `system` is the system's trust store, anything else a PEM file's path (write
        /// `./system` for a file of that name).
        public init(_ text: String) {
            self = text == "system" ? .system : .file(text)
        }
    }

    /// A client certificate and its private key, for brokers that require mutual TLS.
    public struct ClientCertificate: Sendable, Hashable {
        /// The PEM certificate.
        public let certificateFile: String
        /// The PEM private key of `certificateFile`.
        public let keyFile: String
    }

    /// The CA bundles ``CertificateAuthorities/system`` looks for, in order: Debian, Ubuntu, Alpine and Arch;
    /// Fedora and RHEL; openSUSE; the BSDs and macOS.
    public static let systemTrustStores = [
        "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ]

    /// Where the broker is and whether the link is TLS.
    public let endpoint: Endpoint
    /// The username, if the broker requires one.
    public let username: String?
    /// The file whose first line is the password (trailing white space removed).
    public let passwordFile: String?
    /// What verifies the broker's certificate; set exactly when the endpoint uses TLS.
    public let certificateAuthorities: CertificateAuthorities?
    /// The client certificate, if the broker requires one (TLS only).
    public let clientCertificate: ClientCertificate?

    /// Checks a broker URL and its settings together; reads no file.
    ///
    /// An empty string is the same as `nil` for every optional setting, so values from configuration files
    /// and flags can be passed as they are.
    ///
    /// - Parameters:
    ///   - url: `mqtt://host[:port]` or `mqtts://host[:port]` (see ``Endpoint/init(url:)``).
    ///   - username: The username, if the broker requires one.
    ///   - passwordFile: The file whose first line is the password; needs `username`.
    ///   - certificateAuthorities: Required for `mqtts://`, refused for `mqtt://`.
    ///   - certificateFile: A client certificate (TLS only); needs `keyFile`.
    ///   - keyFile: The client certificate's private key; needs `certificateFile`.
    /// - Throws: ``MQTTBrokerConfigurationError`` naming the URL or the setting that is wrong or missing; an
    ///   unsupported scheme is reported before anything else.
    public init(
        url: String, username: String? = nil, passwordFile: String? = nil,
        certificateAuthorities: CertificateAuthorities? = nil, certificateFile: String? = nil, keyFile: String? = nil
    ) throws(MQTTBrokerConfigurationError) {
        try self.init(
            endpoint: Endpoint(url: url), username: username, passwordFile: passwordFile,
            certificateAuthorities: certificateAuthorities, certificateFile: certificateFile, keyFile: keyFile)
    }

    /// Checks settings for an endpoint read already; reads no file.
    ///
    /// - Throws: ``MQTTBrokerConfigurationError`` as ``init(url:username:passwordFile:certificateAuthorities:certificateFile:keyFile:)``.
    public init(
        endpoint: Endpoint, username: String? = nil, passwordFile: String? = nil,
        certificateAuthorities: CertificateAuthorities? = nil, certificateFile: String? = nil, keyFile: String? = nil
    ) throws(MQTTBrokerConfigurationError) {
        func given(_ text: String?) -> String? { text?.isEmpty == false ? text : nil }
        let username = given(username)
        let passwordFile = given(passwordFile)
        let certificateFile = given(certificateFile)
        let keyFile = given(keyFile)
        let certificateAuthorities = certificateAuthorities == .file("") ? nil : certificateAuthorities
        if passwordFile != nil && username == nil {
            throw MQTTBrokerConfigurationError(
                .missingSetting, .username, "a password file is given for \(endpoint) but no username")
        }
        if endpoint.usesTLS {
            if certificateAuthorities == nil {
                throw MQTTBrokerConfigurationError(
                    .missingSetting, .caFile,
                    "\(endpoint) is TLS and needs a CA file to verify the broker (or the system's trust store, "
                        + "asked for explicitly)")
            }
            if (certificateFile == nil) != (keyFile == nil) {
                let missing: MQTTBrokerConfigurationError.Setting = certificateFile == nil ? .certificateFile : .keyFile
                throw MQTTBrokerConfigurationError(
                    .missingSetting, missing,
                    "a client certificate needs both a certificate file and a key file; the "
                        + "\(missing == .keyFile ? "key" : "certificate") file is missing")
            }
        } else {
            let unexpected: [(MQTTBrokerConfigurationError.Setting, Bool)] = [
                (.caFile, certificateAuthorities != nil), (.certificateFile, certificateFile != nil),
                (.keyFile, keyFile != nil),
            ]
            if let (setting, _) = unexpected.first(where: { $0.1 }) {
                throw MQTTBrokerConfigurationError(
                    .unexpectedSetting, setting,
                    "a \(setting.phrase) is given but \(endpoint) is plain TCP, not TLS; use mqtts:// or drop it")
            }
        }
        self.endpoint = endpoint
        self.username = username
        self.passwordFile = passwordFile
        self.certificateAuthorities = certificateAuthorities
        self.clientCertificate = certificateFile.flatMap { certificate in
            keyFile.map { ClientCertificate(certificateFile: certificate, keyFile: $0) }
        }
    }

    /// The endpoint, `mqtts://host:8883`, for messages (no credentials).
    public var description: String { endpoint.description }

    /// The client settings for `clientID`: reads the password file and checks that the TLS files can be read.
    ///
    /// Everything else (keepalive, reconnect timing, the in-flight window, `tcpNoDelay`) keeps
    /// ``MQTTClientConfiguration``'s defaults; change them on the result. A caller making several clients
    /// can make one configuration and change its `clientID`, reading the files once.
    ///
    /// - Parameters:
    ///   - clientID: The client identifier, unique per broker.
    ///   - cleanStart: Whether to start a new session.
    ///   - sessionExpirySeconds: How long the broker keeps the session after a disconnect (MQTT v5).
    ///   - lastWill: The message the broker publishes if the client drops without a clean DISCONNECT.
    /// - Throws: ``MQTTBrokerConfigurationError`` with `.unreadableFile` or `.emptyFile`, naming the setting
    ///   and the file (the password file's first line must hold the password).
    public func clientConfiguration(
        clientID: String, cleanStart: Bool = true, sessionExpirySeconds: UInt32 = 0,
        lastWill: MQTTClientConfiguration.LastWill? = nil
    ) throws(MQTTBrokerConfigurationError) -> MQTTClientConfiguration {
        var password: String?
        if let passwordFile { password = try Self.readPassword(passwordFile) }
        var tls: MQTTClientConfiguration.TLS?
        if endpoint.usesTLS {
            let caFile: String
            switch certificateAuthorities {
            case .file(let path):
                try Self.checkReadable(path, .caFile)
                caFile = path
            case .system, nil:
                guard let found = Self.systemTrustStores.first(where: { Self.isReadable($0) }) else {
                    throw MQTTBrokerConfigurationError(
                        .unreadableFile, .caFile,
                        "no system trust store found (looked for \(Self.systemTrustStores.joined(separator: ", "))); "
                            + "give a CA file")
                }
                caFile = found
            }
            if let clientCertificate {
                try Self.checkReadable(clientCertificate.certificateFile, .certificateFile)
                try Self.checkReadable(clientCertificate.keyFile, .keyFile)
            }
            let client = clientCertificate
            tls = .init(caFile: caFile, certificateFile: client?.certificateFile, keyFile: client?.keyFile)
        }
        return MQTTClientConfiguration(
            host: endpoint.host, port: endpoint.port, clientID: clientID, username: username, password: password,
            tls: tls, cleanStart: cleanStart, sessionExpirySeconds: sessionExpirySeconds, lastWill: lastWill)
    }

    // MARK: Files

    /// The password: the file's first line without trailing white space (a CR included).
    static func readPassword(_ path: String) throws(MQTTBrokerConfigurationError) -> String {
        let bytes = try read(path, .passwordFile, atMost: 64 * 1024)
        let firstLine = bytes.prefix { $0 != UInt8(ascii: "\n") }
        guard var password = String(validating: firstLine, as: UTF8.self) else {
            throw MQTTBrokerConfigurationError(
                .unreadableFile, .passwordFile, "password file '\(path)' is not UTF-8 text")
        }
        while let last = password.last, last.isWhitespace { password.removeLast() }
        guard !password.isEmpty else {
            throw MQTTBrokerConfigurationError(
                .emptyFile, .passwordFile, "password file '\(path)' is empty (its first line is the password)")
        }
        return password
    }

    /// Throws unless `path` can be opened and read and holds something.
    static func checkReadable(_ path: String, _ setting: MQTTBrokerConfigurationError.Setting)
        throws(MQTTBrokerConfigurationError)
    {
        if try read(path, setting, atMost: 1).isEmpty {
            throw MQTTBrokerConfigurationError(.emptyFile, setting, "\(setting.phrase) '\(path)' is empty")
        }
    }

    static func isReadable(_ path: String) -> Bool {
        (try? checkReadable(path, .caFile)) != nil
    }

    /// The first `limit` bytes of `path`, or an error with the system's reason (a directory fails to read).
    static func read(_ path: String, _ setting: MQTTBrokerConfigurationError.Setting, atMost limit: Int)
        throws(MQTTBrokerConfigurationError) -> [UInt8]
    {
        func failure() -> MQTTBrokerConfigurationError {
            let reason = String(cString: strerror(errno))
            return MQTTBrokerConfigurationError(.unreadableFile, setting, "\(setting.phrase) '\(path)': \(reason)")
        }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure() }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var count = 0
        while count < limit {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + count, limit - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure()
            }
            if n == 0 { break }
            count += n
        }
        return Array(bytes[..<count])
    }
}
