import Foundation
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
                  - {name: three, channels: 2, source: {kind: udp, port: 9000, maxLineBytes: 100}}
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
                "streams[2].source", "policy.threshold", "policy.budget", "policy.topK", "sinks[0].path",
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
                    var s = AgentConfiguration.Source(); s.kind = .udp; s.port = 9100; return s
                }()),
        ]
        config.policy.budget = 0.1
        config.model.trustedKeys = ["/k/a.pub"]
        config.sinks = [.init(kind: .file, path: "/tmp/p.jsonl")]
        var reread = AgentConfiguration()
        try reread.apply(yaml: config.effectiveYAML())
        #expect(reread == config)
    }
}
