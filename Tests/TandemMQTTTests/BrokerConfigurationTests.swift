import Foundation
import TandemMQTT
import TandemTestSupport
import Testing

/// `MQTTBrokerConfiguration`: the one reader of broker URLs and the checks of what goes with them.
struct BrokerConfigurationTests {
    struct GoodURL: Sendable, CustomTestStringConvertible {
        let url: String
        let host: String
        let port: Int
        let usesTLS: Bool
        var testDescription: String { url }
    }

    static let goodURLs = [
        GoodURL(url: "mqtt://localhost", host: "localhost", port: 1883, usesTLS: false),
        GoodURL(url: "mqtt://broker.example:1884", host: "broker.example", port: 1884, usesTLS: false),
        GoodURL(url: "mqtts://broker.example", host: "broker.example", port: 8883, usesTLS: true),
        GoodURL(url: "mqtts://10.0.0.5:9883", host: "10.0.0.5", port: 9883, usesTLS: true),
        GoodURL(url: "tcp://127.0.0.1:1883", host: "127.0.0.1", port: 1883, usesTLS: false),
        GoodURL(url: "ssl://gateway", host: "gateway", port: 8883, usesTLS: true),
        GoodURL(url: "MQTTS://Broker:1", host: "Broker", port: 1, usesTLS: true),
        GoodURL(url: "mqtt://[::1]:1884", host: "::1", port: 1884, usesTLS: false),
        GoodURL(url: "mqtts://[2001:db8::7]", host: "2001:db8::7", port: 8883, usesTLS: true),
        GoodURL(url: "mqtt://host/", host: "host", port: 1883, usesTLS: false),
        GoodURL(url: "mqtt://my_gateway-1.local:65535", host: "my_gateway-1.local", port: 65535, usesTLS: false),
    ]

    @Test("a broker URL gives its host, port (1883 or 8883 by default) and whether it is TLS", arguments: goodURLs)
    func goodURL(_ good: GoodURL) throws {
        let endpoint = try MQTTBrokerConfiguration.Endpoint(url: good.url)
        #expect(endpoint.host == good.host)
        #expect(endpoint.port == good.port)
        #expect(endpoint.usesTLS == good.usesTLS)
        // The description is a URL this parser reads back to the same endpoint.
        #expect(try MQTTBrokerConfiguration.Endpoint(url: endpoint.description) == endpoint)
    }

    struct BadURL: Sendable, CustomTestStringConvertible {
        let url: String
        let code: MQTTBrokerConfigurationError.Code
        /// A part of the message that says what is wrong.
        let says: String
        var testDescription: String { url.isEmpty ? "(empty)" : url }
    }

    static let badURLs = [
        BadURL(url: "http://broker:1883", code: .unsupportedScheme, says: "unsupported scheme 'http'"),
        BadURL(url: "ws://broker", code: .unsupportedScheme, says: "'ws'"),
        BadURL(url: "mqtt+ssl://broker", code: .unsupportedScheme, says: "'mqtt+ssl'"),
        BadURL(url: "https://user:pw@broker/x", code: .unsupportedScheme, says: "https://***@broker/x"),
        BadURL(url: "", code: .invalidURL, says: "expected mqtt://host[:port]"),
        BadURL(url: "localhost:1883", code: .invalidURL, says: "expected mqtt://host[:port]"),
        BadURL(url: "://broker", code: .invalidURL, says: "expected mqtt://host[:port]"),
        BadURL(url: "mqtt://", code: .invalidURL, says: "the host is empty"),
        BadURL(url: "mqtt://:1883", code: .invalidURL, says: "the host is empty"),
        BadURL(url: "mqtt://[]:1883", code: .invalidURL, says: "not an IPv6 address"),
        BadURL(url: "mqtt://host:0", code: .invalidURL, says: "port '0'"),
        BadURL(url: "mqtt://host:65536", code: .invalidURL, says: "within 1…65535"),
        BadURL(url: "mqtt://host:", code: .invalidURL, says: "port ''"),
        BadURL(url: "mqtt://host:-1", code: .invalidURL, says: "port '-1'"),
        BadURL(url: "mqtt://host:18a3", code: .invalidURL, says: "port '18a3'"),
        BadURL(url: "mqtt://host:000001883", code: .invalidURL, says: "port '000001883'"),
        BadURL(url: "mqtt://host/tandem", code: .invalidURL, says: "a path"),
        BadURL(url: "mqtt://host:1883//", code: .invalidURL, says: "a path"),
        BadURL(url: "mqtt://host?qos=1", code: .invalidURL, says: "a query"),
        BadURL(url: "mqtt://host#x", code: .invalidURL, says: "a fragment"),
        BadURL(url: "mqtt://edge:s3cret@host", code: .invalidURL, says: "mqtt://***@host"),
        BadURL(url: "mqtt://::1:1883", code: .invalidURL, says: "in brackets"),
        BadURL(url: "mqtt://[::1", code: .invalidURL, says: "'[' without ']'"),
        BadURL(url: "mqtt://[::1]1883", code: .invalidURL, says: "':port' after ']'"),
        BadURL(url: "mqtt://[broker]:1883", code: .invalidURL, says: "not an IPv6 address"),
        BadURL(url: "mqtt://bro ker", code: .invalidURL, says: "not a host name"),
        BadURL(url: "mqtt://brökér", code: .invalidURL, says: "not a host name"),
    ]

    @Test("a bad broker URL is refused with a typed error that names it", arguments: badURLs)
    func badURL(_ bad: BadURL) {
        let error = #expect(throws: MQTTBrokerConfigurationError.self) { try MQTTBrokerConfiguration(url: bad.url) }
        #expect(error?.code == bad.code && error?.setting == .url)
        #expect(error?.message.contains(bad.says) == true, "\(String(describing: error))")
        #expect(error?.message.contains("s3cret") == false && error?.message.contains(":pw@") == false)
    }

    @Test("an unsupported scheme is reported before any other problem")
    func schemeFirst() {
        let error = #expect(throws: MQTTBrokerConfigurationError.self) {
            try MQTTBrokerConfiguration(
                url: "http://broker:99999/x", passwordFile: "/nonexistent", certificateAuthorities: .file("ca.pem"),
                certificateFile: "client.pem")
        }
        #expect(error?.code == .unsupportedScheme)
    }

    struct BadSettings: Sendable, CustomTestStringConvertible {
        let name: String
        let make: @Sendable () throws -> MQTTBrokerConfiguration
        let code: MQTTBrokerConfigurationError.Code
        let setting: MQTTBrokerConfigurationError.Setting
        var testDescription: String { name }
    }

    static let badSettings = [
        BadSettings(
            name: "mqtts without a CA", make: { try MQTTBrokerConfiguration(url: "mqtts://b") }, code: .missingSetting,
            setting: .caFile),
        BadSettings(
            name: "a CA file with plain mqtt",
            make: { try MQTTBrokerConfiguration(url: "mqtt://b", certificateAuthorities: .file("ca.pem")) },
            code: .unexpectedSetting, setting: .caFile),
        BadSettings(
            name: "the system trust store with plain mqtt",
            make: { try MQTTBrokerConfiguration(url: "tcp://b", certificateAuthorities: .system) },
            code: .unexpectedSetting, setting: .caFile),
        BadSettings(
            name: "a client certificate with plain mqtt",
            make: { try MQTTBrokerConfiguration(url: "mqtt://b", certificateFile: "c.pem", keyFile: "k.pem") },
            code: .unexpectedSetting, setting: .certificateFile),
        BadSettings(
            name: "a certificate without its key",
            make: {
                try MQTTBrokerConfiguration(url: "mqtts://b", certificateAuthorities: .system, certificateFile: "c")
            },
            code: .missingSetting, setting: .keyFile),
        BadSettings(
            name: "a key without its certificate",
            make: { try MQTTBrokerConfiguration(url: "mqtts://b", certificateAuthorities: .system, keyFile: "k") },
            code: .missingSetting, setting: .certificateFile),
        BadSettings(
            name: "a password file without a username",
            make: { try MQTTBrokerConfiguration(url: "mqtt://b", passwordFile: "/etc/tandem/broker.password") },
            code: .missingSetting, setting: .username),
    ]

    @Test("settings that disagree with the URL or each other are refused, naming the setting", arguments: badSettings)
    func settingsDisagree(_ bad: BadSettings) {
        let error = #expect(throws: MQTTBrokerConfigurationError.self) { try bad.make() }
        #expect(error?.code == bad.code && error?.setting == bad.setting, "\(String(describing: error))")
    }

    @Test("empty strings count as settings not given; `system` names the system's trust store")
    func emptyAndSystem() throws {
        let plain = try MQTTBrokerConfiguration(
            url: "mqtt://b", username: "", passwordFile: "", certificateAuthorities: .file(""), certificateFile: "",
            keyFile: "")
        #expect(plain.username == nil && plain.passwordFile == nil)
        #expect(plain.certificateAuthorities == nil && plain.clientCertificate == nil)
        #expect(MQTTBrokerConfiguration.CertificateAuthorities("system") == .system)
        #expect(MQTTBrokerConfiguration.CertificateAuthorities("./system") == .file("./system"))
        #expect(MQTTBrokerConfiguration.CertificateAuthorities("/etc/tandem/ca.crt") == .file("/etc/tandem/ca.crt"))
    }

    @Test("the client configuration carries the endpoint, credentials and the caller's session settings")
    func clientConfiguration() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let password = try scratch.write("pw", "s3cret\n")
        let ca = try scratch.write("ca.crt", "-----BEGIN CERTIFICATE-----\n")
        let certificate = try scratch.write("client.crt", "-----BEGIN CERTIFICATE-----\n")
        let key = try scratch.write("client.key", "-----BEGIN PRIVATE KEY-----\n")
        let broker = try MQTTBrokerConfiguration(
            url: "mqtts://[::1]:8884", username: "plant/box-1", passwordFile: password,
            certificateAuthorities: .file(ca), certificateFile: certificate, keyFile: key)
        #expect(broker.description == "mqtts://[::1]:8884")
        let will = MQTTClientConfiguration.LastWill(MQTTMessage(topic: "t/status", string: "offline"))
        let configuration = try broker.clientConfiguration(
            clientID: "box-1", cleanStart: false, sessionExpirySeconds: 600, lastWill: will)
        #expect(configuration.host == "::1" && configuration.port == 8884 && configuration.clientID == "box-1")
        #expect(configuration.username == "plant/box-1" && configuration.password == "s3cret")
        #expect(configuration.tls == .init(caFile: ca, certificateFile: certificate, keyFile: key))
        #expect(!configuration.cleanStart && configuration.sessionExpirySeconds == 600)
        #expect(configuration.lastWill == will)

        let plain = try MQTTBrokerConfiguration(url: "mqtt://b").clientConfiguration(clientID: "c")
        #expect(plain.host == "b" && plain.port == 1883 && plain.tls == nil)
        #expect(plain.username == nil && plain.password == nil && plain.cleanStart && plain.lastWill == nil)
    }

    @Test("the system trust store resolves to the first CA bundle the system has")
    func systemTrustStore() throws {
        let broker = try MQTTBrokerConfiguration(url: "mqtts://b", certificateAuthorities: .system)
        let present = MQTTBrokerConfiguration.systemTrustStores.first { FileManager.default.isReadableFile(atPath: $0) }
        if let present {
            #expect(try broker.clientConfiguration(clientID: "c").tls?.caFile == present)
        } else {
            #expect(throws: MQTTBrokerConfigurationError.self) { try broker.clientConfiguration(clientID: "c") }
        }
    }

    struct PasswordFile: Sendable, CustomTestStringConvertible {
        let contents: [UInt8]
        let password: String
        var testDescription: String { String(decoding: contents, as: UTF8.self).debugDescription }

        init(_ text: String, _ password: String) {
            contents = Array(text.utf8)
            self.password = password
        }
    }

    static let passwordFiles = [
        PasswordFile("s3cret\n", "s3cret"),
        PasswordFile("s3cret", "s3cret"),
        PasswordFile("s3cret\r\n", "s3cret"),
        PasswordFile("s3cret \t\n\n", "s3cret"),
        PasswordFile("pass word\nsecond line\n", "pass word"),
        PasswordFile("  leading kept\n", "  leading kept"),
        PasswordFile("pässwörd\n", "pässwörd"),
    ]

    @Test("the password is the file's first line without trailing white space", arguments: passwordFiles)
    func passwordFile(_ file: PasswordFile) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("password").path
        try Data(file.contents).write(to: URL(fileURLWithPath: path))
        let broker = try MQTTBrokerConfiguration(url: "mqtt://b", username: "u", passwordFile: path)
        #expect(try broker.clientConfiguration(clientID: "c").password == file.password)
    }

    static let unusablePasswordFiles: [(contents: [UInt8], code: MQTTBrokerConfigurationError.Code)] = [
        (Array("".utf8), .emptyFile),
        (Array("\n".utf8), .emptyFile),
        (Array(" \t\r\n".utf8), .emptyFile),
        (Array("\nsecond line\n".utf8), .emptyFile),
        ([0x73, 0xFF, 0xFE, 0x0A], .unreadableFile),
    ]

    @Test("an empty or non-UTF-8 password file is an error naming the file", arguments: unusablePasswordFiles)
    func unusablePasswordFile(_ contents: [UInt8], _ code: MQTTBrokerConfigurationError.Code) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("password").path
        try Data(contents).write(to: URL(fileURLWithPath: path))
        let broker = try MQTTBrokerConfiguration(url: "mqtt://b", username: "u", passwordFile: path)
        let error = #expect(throws: MQTTBrokerConfigurationError.self) { try broker.clientConfiguration(clientID: "c") }
        #expect(error?.code == code && error?.setting == .passwordFile)
        #expect(error?.message.contains("password file '\(path)'") == true, "\(String(describing: error))")
    }

    @Test("files are read when the client configuration is made, so a missing one fails then and a rotated one is seen")
    func filesReadOnResolution() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("password").path
        let broker = try MQTTBrokerConfiguration(url: "mqtt://b", username: "u", passwordFile: path)
        let missing = #expect(throws: MQTTBrokerConfigurationError.self) {
            try broker.clientConfiguration(clientID: "c")
        }
        #expect(missing?.code == .unreadableFile && missing?.setting == .passwordFile)
        #expect(missing?.message == "password file '\(path)': No such file or directory")
        try "first\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try broker.clientConfiguration(clientID: "c").password == "first")
        try "second\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try broker.clientConfiguration(clientID: "c").password == "second")

        let directory = try MQTTBrokerConfiguration(url: "mqtt://b", username: "u", passwordFile: scratch.url.path)
        let unreadable = #expect(throws: MQTTBrokerConfigurationError.self) {
            try directory.clientConfiguration(clientID: "c")
        }
        #expect(unreadable?.code == .unreadableFile && unreadable?.message.contains("Is a directory") == true)
    }

    @Test("a CA, certificate or key file that is missing or empty is an error naming that setting and file")
    func unusableTLSFiles() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let good = try scratch.write("good.pem", "-----BEGIN CERTIFICATE-----\n")
        let empty = try scratch.write("empty.pem", "")
        let missing = scratch.url.appendingPathComponent("missing.pem").path
        let cases: [(ca: String, certificate: String?, key: String?, setting: MQTTBrokerConfigurationError.Setting)] = [
            (missing, nil, nil, .caFile), (empty, nil, nil, .caFile), (good, missing, good, .certificateFile),
            (good, good, empty, .keyFile),
        ]
        for (ca, certificate, key, setting) in cases {
            let broker = try MQTTBrokerConfiguration(
                url: "mqtts://b", certificateAuthorities: .file(ca), certificateFile: certificate, keyFile: key)
            let error = #expect(throws: MQTTBrokerConfigurationError.self) {
                try broker.clientConfiguration(clientID: "c")
            }
            let path = [ca, certificate ?? "", key ?? ""].first { $0 == missing || $0 == empty }
            #expect(error?.setting == setting, "\(String(describing: error))")
            #expect(path.map { error?.message.contains("'\($0)'") == true } == true, "\(String(describing: error))")
        }
    }
}

extension ScratchDirectory {
    /// Writes `text` to a file named `name` in the directory and returns its path.
    fileprivate func write(_ name: String, _ text: String) throws -> String {
        let path = url.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
