import Foundation
import TandemMQTT
import Testing

@testable import TandemEdge

struct ConfigurationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("the shipped agent.yaml loads, validates and equals the built-in defaults plus its one stream")
    func shippedFile() throws {
        let path = Self.root.appendingPathComponent("edge-config/agent.yaml").path
        var config = try AgentConfiguration.load(path: path)
        try config.validate()
        var expected = AgentConfiguration()
        expected.streams = [.init(name: "main", channels: 3)]
        expected.device.id = config.device.id
        config.streams[0].source.port = 0
        #expect(config == expected, "every key in agent.yaml states its default")
        // Every overridable key appears in the file.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for (key, _) in AgentConfiguration.overridableKeys {
            let leaf = String(key.split(separator: ".").last ?? "")
            #expect(text.contains("\(leaf):"), "\(key) is documented in agent.yaml")
        }
    }

    @Test("validation names every bad key")
    func validationNamesKeys() throws {
        var config = AgentConfiguration()
        try config.apply(
            yaml: """
                device: {id: "a/b"}
                broker: {url: "http://x"}
                streams:
                  - {name: one, channels: 3, source: {kind: udp, port: 9000}}
                  - {name: one, channels: 0, source: {kind: file}}
                  - {name: three, channels: 2, source: {kind: udp, port: 9000, maxLineBytes: 100, allowFrom: ["10.0.0.1/8"]}}
                policy: {threshold: 1.5, budget: 2, topK: 0}
                sinks: [{kind: file}]
                metrics: {listen: "nope"}
                """)
        do {
            try config.validate()
            Issue.record("validation passed")
        } catch {
            let keys = Set(error.issues.map(\.key))
            for key in [
                "device.id", "broker.url", "streams[1].name", "streams[1].channels", "streams[1].source.path",
                "streams[2].source", "streams[2].source.allowFrom[0]", "policy.threshold", "policy.budget",
                "policy.topK", "sinks[0].path",
                "metrics.listen",
            ] {
                #expect(keys.contains(key), "\(key) in \(error)")
            }
            #expect(error.description.contains("streams[1].channels: must be positive, got 0"))
        }
    }

    @Test("unknown keys and wrong shapes are errors naming the key")
    func unknownKeys() {
        var config = AgentConfiguration()
        #expect {
            try config.apply(
                yaml: "policy:\n  treshold: 0.3\nstreams:\n  - {name: a, chanels: 2, source: {kind: pipe}}\n")
        } throws: { error in
            let keys = (error as? ConfigurationError)?.issues.map(\.key) ?? []
            return keys == ["policy.treshold", "streams[0].chanels", "streams[0].source.kind"]
        }
        #expect(throws: ConfigurationError.self) { try config.apply(yaml: "policy: {threshold: [1, 2]}") }
        #expect(throws: ConfigurationError.self) { try config.apply(yaml: "verdictDeadlineMs: soon") }
        #expect(throws: ConfigurationError.self) { try config.apply(yaml: "- just a list") }
        #expect(throws: ConfigurationError.self) { try config.apply(yaml: "a: [unclosed") }
    }

    @Test("TANDEM_ variables override the file; a bad one is named")
    func environment() throws {
        #expect(AgentConfiguration.environmentName(forKey: "broker.url") == "TANDEM_BROKER_URL")
        #expect(
            AgentConfiguration.environmentName(forKey: "policy.maxEscalationsPerSecond")
                == "TANDEM_POLICY_MAX_ESCALATIONS_PER_SECOND")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try "device: {id: box-1}\nbroker: {url: mqtt://file:1883}\npolicy: {threshold: 0.4}\n".write(
            to: scratch, atomically: true, encoding: .utf8)
        let config = try AgentConfiguration.load(
            path: scratch.path,
            environment: [
                "TANDEM_BROKER_URL": "mqtts://env:8883", "TANDEM_POLICY_BUDGET": "0.1",
                "TANDEM_MODEL_TRUSTED_KEYS": "/k/a.pub, /k/b.pub", "TANDEM_VERDICT_DEADLINE_MS": "250", "HOME": "/x",
            ])
        #expect(config.device.id == "box-1")
        #expect(config.broker.url == "mqtts://env:8883")
        #expect(config.policy.threshold == 0.4 && config.policy.budget == 0.1)
        #expect(config.model.trustedKeys == ["/k/a.pub", "/k/b.pub"])
        #expect(config.verdictDeadlineMs == 250)
        #expect {
            try AgentConfiguration.load(path: nil, environment: ["TANDEM_POLICY_THRESHOLD": "high"])
        } throws: { error in
            (error as? ConfigurationError)?.issues.first?.key == "TANDEM_POLICY_THRESHOLD"
        }
    }

    @Test("the effective YAML reads back to the same configuration")
    func effectiveRoundTrip() throws {
        var config = AgentConfiguration()
        config.device.id = "box"
        config.streams = [
            .init(
                name: "a", channels: 2,
                source: {
                    var s = AgentConfiguration.Source(); s.kind = .file; s.path = "/tmp/x y.csv"; return s
                }()),
            .init(
                name: "b", channels: 2,
                source: {
                    var s = AgentConfiguration.Source(); s.kind = .udp; s.port = 9100
                    s.allowFrom = ["10.1.2.3", "192.168.0.0/16"]; return s
                }()),
        ]
        config.policy.budget = 0.1
        config.model.trustedKeys = ["/k/a.pub"]
        config.sinks = [.init(kind: .file, path: "/tmp/p.jsonl")]
        var reread = AgentConfiguration()
        try reread.apply(yaml: config.effectiveYAML())
        #expect(reread == config)
    }

    @Test(
        "the effective YAML reads back whatever the values (the fuzz target yaml found `username: -` printed plain)",
        arguments: ["-", "@home", "a:", ":x", "line\nbreak", "tab\tand\u{01}bell\u{7F}", "back\\slash \"q\""])
    func effectiveRoundTripOfAwkwardValues(_ value: String) throws {
        var config = AgentConfiguration()
        config.device.id = "box"
        config.broker.username = value
        config.model.path = value
        config.streams = [.init(name: value, channels: 1)]
        var reread = AgentConfiguration()
        try reread.apply(yaml: config.effectiveYAML())
        #expect(reread == config)
    }

    /// A configuration with one stdin stream whose `broker` section is `configure`d.
    static func broker(_ configure: (inout AgentConfiguration.Broker) -> Void) -> AgentConfiguration {
        var config = AgentConfiguration()
        config.device.id = "box"
        config.streams = [.init(name: "main", channels: 3)]
        configure(&config.broker)
        return config
    }

    struct BadBroker: Sendable, CustomTestStringConvertible {
        /// The URL, then `key=value` settings of the broker section, separated by spaces.
        let settings: String
        let key: String
        let says: String
        var testDescription: String { settings }
    }

    @Test(
        "broker settings are checked by the one broker parser and named by their key",
        arguments: [
            BadBroker(settings: "ftp://broker", key: "broker.url", says: "unsupported scheme 'ftp'"),
            BadBroker(settings: "mqtt://broker:70000", key: "broker.url", says: "within 1…65535"),
            BadBroker(settings: "mqtt://edge:pw@broker", key: "broker.url", says: "user information"),
            BadBroker(settings: "mqtt://broker/tandem", key: "broker.url", says: "a path"),
            BadBroker(settings: "mqtt://broker caFile=/etc/tandem/ca.crt", key: "broker.caFile", says: "plain TCP"),
            BadBroker(settings: "mqtts://broker certFile=/c.pem", key: "broker.keyFile", says: "key file is missing"),
            BadBroker(settings: "mqtt://broker passwordFile=/p", key: "broker.username", says: "no username"),
        ])
    func brokerValidation(_ bad: BadBroker) {
        let parts = bad.settings.split(separator: " ")
        let config = Self.broker { broker in
            broker.url = String(parts[0])
            for setting in parts.dropFirst() {
                let pair = setting.split(separator: "=").map(String.init)
                switch pair[0] {
                case "caFile": broker.caFile = pair[1]
                case "certFile": broker.certFile = pair[1]
                case "passwordFile": broker.passwordFile = pair[1]
                default: Issue.record("unknown setting \(pair[0])")
                }
            }
        }
        let error = #expect(throws: ConfigurationError.self) { try config.validate() }
        #expect(error?.issues.map(\.key) == [bad.key], "\(String(describing: error))")
        #expect(error?.description.contains(bad.says) == true, "\(String(describing: error))")
        #expect(error?.description.contains(":pw@") == false)
    }

    @Test("an empty broker.url runs without a broker; mqtts with an empty caFile uses the system's trust store")
    func brokerDefaults() throws {
        try Self.broker { $0.url = "" }.validate()
        try Self.broker { $0.url = "tcp://[::1]" }.validate()
        let secure = try Self.broker { $0.url = "ssl://broker" }.broker.brokerConfiguration()
        #expect(secure.certificateAuthorities == .system && secure.endpoint.port == 8883)
        let named = try Self.broker {
            $0.url = "mqtts://broker:9000"
            $0.caFile = "/etc/tandem/ca.crt"
        }.broker.brokerConfiguration()
        #expect(named.certificateAuthorities == .file("/etc/tandem/ca.crt"))
        let system = try Self.broker {
            $0.url = "mqtts://broker"
            $0.caFile = "system"
        }.broker.brokerConfiguration()
        #expect(system.certificateAuthorities == .system, "caFile: system is the trust store, not a file")
        #expect(try Self.broker { $0.url = "mqtt://b" }.broker.brokerConfiguration().certificateAuthorities == nil)
    }

    @Test("an mqtt source takes plain mqtt:// (or tcp://) URLs only: it has no TLS settings")
    func mqttSourceURL() throws {
        func config(_ url: String) -> AgentConfiguration {
            var config = Self.broker { _ in }
            config.streams[0].source.kind = .mqtt
            config.streams[0].source.topic = "gateway/lines"
            config.streams[0].source.url = url
            return config
        }
        try config("mqtt://gateway:1884").validate()
        try config("tcp://127.0.0.1").validate()
        for (url, says) in [("mqtts://gateway", "no TLS settings"), ("http://gateway", "unsupported scheme")] {
            let error = #expect(throws: ConfigurationError.self) { try config(url).validate() }
            #expect(error?.issues.map(\.key) == ["streams[0].source.url"])
            #expect(error?.description.contains(says) == true, "\(String(describing: error))")
        }
    }

    @Test("the link's client settings come from the broker section: password trimmed, keepalive and backoff kept")
    func linkClientConfiguration() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("password-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try "s3cret \r\n".write(to: scratch, atomically: true, encoding: .utf8)
        var broker = AgentConfiguration.Broker()
        broker.url = "mqtt://broker:1884"
        broker.username = "plant/box"
        broker.passwordFile = scratch.path
        broker.keepAliveSeconds = 12
        broker.reconnectMaxSeconds = 2.5
        let configuration = try EdgeLink.clientConfiguration(broker, clientID: "plant-box")
        #expect(configuration.host == "broker" && configuration.port == 1884 && configuration.clientID == "plant-box")
        #expect(configuration.username == "plant/box" && configuration.password == "s3cret")
        #expect(configuration.keepAliveSeconds == 12 && configuration.reconnect.maximumDelayMilliseconds == 2500)
        #expect(configuration.tls == nil)

        broker.passwordFile = scratch.path + ".missing"
        let error = #expect(throws: ConfigurationError.self) {
            try EdgeLink.clientConfiguration(broker, clientID: "plant-box")
        }
        #expect(error?.issues.map(\.key) == ["broker.passwordFile"])
        #expect(error?.description.contains(scratch.path + ".missing") == true)
    }
}
