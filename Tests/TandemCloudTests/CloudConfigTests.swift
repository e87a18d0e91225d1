import Foundation
import TandemTestSupport
import Testing

struct CloudConfigTests {
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("cloud-config/cloud.yaml")

    /// A cloud.yaml naming this test's broker, model and data, with worker.id `from-file`.
    static func write(_ directory: String, brokerPort: Int) throws -> String {
        let path = "\(directory)/cloud.yaml"
        try """
        broker:
          url: mqtt://localhost:\(brokerPort)
        models:
          full: \(directory)/full.tandem
          edge: []
        store:
          dataDir: \(directory)/data
        worker:
          id: from-file
          statsInterval: 0
        http:
          address: 127.0.0.1:0
          apiTokenFile: \(directory)/token
        trainer:
          enabled: false
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("cloud.yaml sets the worker; a TANDEM_CLOUD_ variable overrides the file and a flag overrides both")
    func precedence() async throws {
        try await MosquittoBroker.with { broker in
            let cases: [(environment: [String: String], flags: [String], expected: String)] = [
                ([:], [], "from-file"),
                (["TANDEM_CLOUD_WORKER_ID": "from-env"], [], "from-env"),
                (["TANDEM_CLOUD_WORKER_ID": "from-env"], ["--worker-id", "from-flag"], "from-flag"),
            ]
            for (environment, flags, expected) in cases {
                let cloud = try await RunningCloud(
                    broker: broker,
                    arguments: { dir in ["serve", "--config", try Self.write(dir, brokerPort: broker.port)] + flags },
                    environment: environment)
                let health = try await cloud.json("GET", "/healthz")
                #expect(health.object["worker"] as? String == expected, "\(health.object)")
                #expect(await cloud.terminate() == 0, "\(cloud.log)")
            }
        }
    }

    @Test("unknown keys and values of the wrong kind are refused, naming each key; the shipped file is valid")
    func badKeys() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        try """
        worker:
          maxBatchSize: 3
          id: [a, b]
        trainer:
          enabled: perhaps
        brokr:
          url: mqtt://x
        """.write(toFile: "\(dir)/bad.yaml", atomically: true, encoding: .utf8)
        let bad = try run(["serve", "--config", "\(dir)/bad.yaml"])
        #expect(bad.status != 0)
        for key in [
            "worker.maxBatchSize: unknown key", "worker.id: must be a single value", "trainer.enabled",
            "brokr.url: unknown key",
        ] {
            #expect(bad.errors.contains(key), "\(bad.errors)")
        }
        // The shipped file has every key; without a model it stops at the model, not at the file.
        let shipped = try run(["serve", "--config", Self.shipped.path, "--http", ""])
        #expect(shipped.status != 0)
        #expect(!shipped.errors.contains("unknown key"), "\(shipped.errors)")
        #expect(shipped.errors.contains("--model"), "\(shipped.errors)")
    }

    @Test("every retraining flag is a trainer key of the shipped cloud.yaml, documented with the --help default")
    func trainerKeysMatchHelp() throws {
        let help = try run(["serve", "--help"], output: true).errors
        let section = try #require(help.range(of: "RETRAINING:")).upperBound
        let end = try #require(help.range(of: "\nOPTIONS:", range: section..<help.endIndex)).lowerBound
        // Option blocks: a line starting with "  --flag", then its wrapped help lines.
        var defaults = [String: String?]()
        var flag: String?
        var text = ""
        func close() {
            guard let flag else { return }
            let joined = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            let value = joined.range(of: "(default: ").map { start in
                String(joined[start.upperBound...].prefix { $0 != ")" })
            }
            defaults[flag] = value
        }
        for line in help[section..<end].split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            if trimmed.hasPrefix("--") && line.hasPrefix("  --") {
                close()
                flag = String(trimmed.prefix { $0 != " " })
                text = String(trimmed.drop { $0 != " " })
            } else {
                text += " " + trimmed
            }
        }
        close()
        #expect(defaults["--retrain-drift-window"] == "3600.0", "\(defaults)")

        // The shipped file's trainer section: `  key: value` lines.
        let yaml = try String(contentsOf: Self.shipped, encoding: .utf8)
        let trainer = try #require(yaml.range(of: "\ntrainer:\n")).upperBound
        var documented = [String: String]()
        for line in yaml[trainer...].split(separator: "\n") where line.hasPrefix("  ") && !line.hasPrefix("  #") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if value == "\"\"" { value = "" }
            // trainer.enabled is --trainer; the other keys are their flags' names in camel case.
            let name =
                key == "enabled"
                ? "trainer"
                : key.reduce(into: "") { name, c in
                    name += c.isUppercase ? "-" + c.lowercased() : String(c)
                }
            documented["--" + name] = value
        }
        // A drill is a one-off run, not a setting, so it has no key.
        #expect(Set(defaults.keys).subtracting(["--drill-shuffled-labels"]) == Set(documented.keys))
        for (flag, value) in documented {
            guard let help = defaults[flag] else { continue }
            switch (help, Double(value)) {
            case (let shown?, let number?):
                #expect(Double(shown) == number, "\(flag): --help says \(shown), cloud.yaml \(value)")
            case (let shown?, nil):
                // An empty value means "not set": --help may only describe what happens then.
                #expect(shown == value || (value.isEmpty && shown.contains(" ")), "\(flag): \(shown) vs \(value)")
            case (nil, _):
                #expect(
                    value.isEmpty || value == "false", "\(flag) has no default in --help but \(value) in cloud.yaml")
            }
        }
    }

    func run(_ arguments: [String], output: Bool = false) throws -> (status: Int32, errors: String) {
        let process = Process()
        process.executableURL = BuiltProducts.executable("tandem-cloud")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = output ? errors : FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
