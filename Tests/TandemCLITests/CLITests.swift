import Foundation
import TandemTestSupport
import Testing

/// The `tandem` executable, run as a user would: simulate, train, evaluate, inspect, sign.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct CLITests {
    let tandem = BuiltProducts.executable("tandem")
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func run(_ arguments: [String]) throws -> CommandResult { try runCommand(tandem, arguments) }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("simulate → train → eval → inspect → keygen → sign → verified eval, with JSON results")
    func wholeFlow() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        let simulate = try run(["simulate", "--out", "\(dir)/sim", "--duration", "80", "--seed", "3"])
        #expect(simulate.status == 0, "\(simulate.standardError)")
        let spec = Self.root.appendingPathComponent("cloud-config/models/edge.yaml").path
        let train = try run([
            "train", "--data", "\(dir)/sim", "--spec", spec, "--out", "\(dir)/edge.tandem", "--epochs", "4", "--json",
        ])
        #expect(train.status == 0, "\(train.standardError)")
        #expect(train.standardError.contains("epoch 1/4"), "progress lines go to stderr")
        let trained = try json(train.standardOutput)
        let testAccuracy = try #require(trained["testAccuracy"] as? Double)
        #expect(testAccuracy > 0.4, "four epochs on 80 s of data already reach twice chance (0.2)")

        let eval = try run(["eval", "--model", "\(dir)/edge.tandem", "--data", "\(dir)/sim", "--json"])
        #expect(eval.status == 0, "\(eval.standardError)")
        let evaluated = try json(eval.standardOutput)
        #expect(
            abs((evaluated["accuracy"] as? Double ?? -1) - testAccuracy) < 1e-9, "eval reproduces train's test score")
        let confusion = try #require(evaluated["confusion"] as? [[Int]])
        #expect(confusion.count == 5 && confusion.flatMap { $0 }.reduce(0, +) == evaluated["windows"] as? Int)

        let cascade = try run([
            "eval", "--cascade", "--edge", "\(dir)/edge.tandem", "--full", "\(dir)/edge.tandem", "--data", "\(dir)/sim",
            "--budgets", "0.1,1", "--thresholds", "0", "--json",
        ])
        #expect(cascade.status == 0, "\(cascade.standardError)")
        let points = try #require(try json(cascade.standardOutput)["points"] as? [[String: Any]])
        let rates = points.compactMap { $0["escalationRate"] as? Double }
        #expect(rates.count == 3 && rates.first == 0 && rates.last == 1)
        #expect(abs((points.last?["cascadeAccuracy"] as? Double ?? -1) - testAccuracy) < 1e-9)

        // Two epochs make a weak student; --max-accuracy-drop 1 writes it anyway (this flow checks the plumbing).
        let compress = try run([
            "compress", "--teacher", "\(dir)/edge.tandem", "--spec", spec, "--data", "\(dir)/sim", "--out",
            "\(dir)/edge-int8.tandem", "--prune", "0.25", "--epochs", "2", "--fine-tune-epochs", "1",
            "--max-accuracy-drop", "1", "--json",
        ])
        #expect(compress.status == 0, "\(compress.standardError)")
        let int8Eval = try run(["eval", "--model", "\(dir)/edge-int8.tandem", "--data", "\(dir)/sim", "--json"])
        #expect(int8Eval.status == 0, "\(int8Eval.standardError)")
        #expect((try json(int8Eval.standardOutput)["accuracy"] as? Double ?? 0) > 0.3)
        let int8Inspect = try run(["inspect", "\(dir)/edge-int8.tandem", "--json"])
        let int8Manifest = try #require(try json(int8Inspect.standardOutput)["manifest"] as? [String: Any])
        #expect(int8Manifest["numerics"] as? String == "int8")

        // --int8-only: the trained float model quantized as it is. Bounds of 0 and 1 always write it (the
        // plumbing); the default gate writes it exactly when the measurements it recorded pass 99.5 % / 0.3 pp.
        let anyInt8 = try run([
            "compress", "--int8-only", "--teacher", "\(dir)/edge.tandem", "--data", "\(dir)/sim", "--out",
            "\(dir)/full-int8-any.tandem", "--int8-min-agreement", "0", "--int8-max-accuracy-drop", "1", "--json",
        ])
        #expect(anyInt8.status == 0, "\(anyInt8.standardError)")
        let measured = try json(anyInt8.standardOutput)
        let agreement = try #require(measured["int8AgreementWithFloat"] as? Double)
        let drop =
            try #require(measured["floatAccuracy"] as? Double) - (try #require(measured["int8Accuracy"] as? Double))
        let anyManifest = try #require(
            try json(try run(["inspect", "\(dir)/full-int8-any.tandem", "--json"]).standardOutput)["manifest"]
                as? [String: Any])
        #expect(anyManifest["numerics"] as? String == "int8")
        let metrics = try #require(anyManifest["metrics"] as? [String: Double])
        #expect(metrics["int8_agreement_with_float"] == agreement && metrics["int8_gate_minimum_agreement"] == 0)
        #expect(metrics["int8_gate_maximum_accuracy_drop"] == 1 && metrics["float_test_accuracy"] != nil)
        let gated = try run([
            "compress", "--int8-only", "--teacher", "\(dir)/edge.tandem", "--data", "\(dir)/sim", "--out",
            "\(dir)/full-int8.tandem",
        ])
        let passes = agreement >= 0.995 && drop <= 0.003
        #expect((gated.status == 0) == passes, "agreement \(agreement), drop \(drop): \(gated.standardError)")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/full-int8.tandem") == passes)
        if !passes { #expect(gated.standardError.contains("--int8-min-agreement"), "\(gated.standardError)") }
        let withSpec = try run([
            "compress", "--int8-only", "--teacher", "\(dir)/edge.tandem", "--spec", spec, "--data", "\(dir)/sim",
            "--out", "\(dir)/x.tandem",
        ])
        #expect(withSpec.status != 0 && withSpec.standardError.contains("--int8-only"), "\(withSpec.standardError)")

        let inspect = try run(["inspect", "\(dir)/edge.tandem", "--json"])
        #expect(inspect.status == 0)
        let inspected = try json(inspect.standardOutput)
        #expect((inspected["parameters"] as? Int ?? 0) > 1000)
        #expect(inspected["signedBy"] == nil)

        #expect(try run(["keygen", "--out", "\(dir)/key"]).status == 0)
        #expect(try run(["sign", "--key", "\(dir)/key", "\(dir)/edge.tandem"]).status == 0)
        let verified = try run([
            "eval", "--model", "\(dir)/edge.tandem", "--data", "\(dir)/sim", "--trusted-key", "\(dir)/key.pub",
        ])
        #expect(verified.status == 0, "\(verified.standardError)")
        #expect(try run(["keygen", "--out", "\(dir)/other"]).status == 0)
        let untrusted = try run([
            "eval", "--model", "\(dir)/edge.tandem", "--data", "\(dir)/sim", "--trusted-key", "\(dir)/other.pub",
        ])
        #expect(untrusted.status != 0)
        #expect(untrusted.standardError.lowercased().contains("key"), "\(untrusted.standardError)")
    }

    @Test("bad inputs fail with a message that names the problem")
    func clearErrors() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        try "name: x\nlayers:\n  - {type: conv1d, filters: 4, kernal: 3}\n".write(
            toFile: "\(dir)/bad.yaml", atomically: true, encoding: .utf8)
        try "timestamp,a,label\n0,1,x\n".write(toFile: "\(dir)/d.csv", atomically: true, encoding: .utf8)
        let badSpec = try run([
            "train", "--data", "\(dir)/d.csv", "--spec", "\(dir)/bad.yaml", "--out", "\(dir)/m.tandem",
        ])
        #expect(badSpec.status != 0)
        #expect(badSpec.standardError.contains("kernal"), "\(badSpec.standardError)")
        try Data([0x89, 0x54, 0x4E, 0x44, 0x4D, 0, 1, 2]).write(to: scratch.url.appendingPathComponent("junk.tandem"))
        let junk = try run(["inspect", "\(dir)/junk.tandem"])
        #expect(junk.status != 0)
        #expect(
            junk.standardError.contains("junk.tandem") || junk.standardError.contains("truncated"),
            "\(junk.standardError)")
        let help = try run(["train", "--help"])
        #expect(help.status == 0 && help.standardOutput.contains("--spec") && help.standardOutput.contains("early"))
    }

    @Test("every command's --help reads as prose: defaults as typed, paragraphs not broken mid-sentence")
    func helpTextsRead() throws {
        var commands = [[String]()]
        var index = 0
        while index < commands.count {
            let command = commands[index]
            index += 1
            // The width the break check below assumes, whatever the terminal running the tests says.
            let help = try runCommand(
                tandem, command + ["--help"],
                environment: ProcessInfo.processInfo.environment.merging(["COLUMNS": "80"]) { $1 })
            #expect(help.status == 0, "\(command): \(help.standardError)")
            let text = help.standardOutput
            // A default shown as a Swift value (`LengthPolicyOption(text: "require")`) instead of what one types.
            #expect(
                text.range(of: #"default: [A-Z][A-Za-z]+\("#, options: .regularExpression) == nil,
                "\(command): \(text)")
            let lines = text.components(separatedBy: "\n").prefix { !$0.hasPrefix("USAGE:") }
            // Source indentation carried into the text: a run of spaces between two words.
            for line in lines where line.range(of: #"\S {3,}\S"#, options: .regularExpression) != nil {
                Issue.record("\(command): a run of spaces inside \"\(line)\"")
            }
            // A hard line break inside a paragraph: a short line whose sentence goes on in lower case below it.
            for (line, next) in zip(lines, lines.dropFirst()) where line.count < 50 && !line.isEmpty {
                let last = line.trimmingCharacters(in: .whitespaces).last
                let continues = next.first.map { $0.isLowercase } ?? false
                // ArgumentParser wraps at 80 columns: a next word that would not have fitted is a fair break.
                let word = next.split(separator: " ").first.map(\.count) ?? 0
                if line.count + 1 + word > 80 { continue }
                #expect(
                    !(continues && last != ":" && last != "." && !line.hasPrefix(" ")),
                    "\(command): \"\(line)\" is cut short before \"\(next)\"")
            }
            guard let listed = text.components(separatedBy: "SUBCOMMANDS:").dropFirst().first else { continue }
            for line in listed.components(separatedBy: "\n") where line.hasPrefix("  ") && !line.hasPrefix("   ") {
                let name = line.trimmingCharacters(in: .whitespaces).components(separatedBy: " ")[0]
                if !name.isEmpty && name != "See" { commands.append(command + [name]) }
            }
        }
        #expect(commands.count > 20, "the walk reached the subcommands: \(commands)")
    }

    @Test(
        "tandem rollout start refuses --steps that do not rise, or that contradict --canary-percent, before connecting")
    func rolloutStepsAreChecked() throws {
        let common = [
            "rollout", "start", "v2", "--fleet", "plant", "--key", "unused.key", "--broker-url", "mqtt://127.0.0.1:1",
        ]
        let falling = try run(common + ["--steps", "10,50,40"])
        #expect(falling.status != 0)
        #expect(falling.standardError.contains("above the one before"), "\(falling.standardError)")
        let contradicting = try run(common + ["--steps", "10,50,100", "--canary-percent", "20"])
        #expect(contradicting.status != 0)
        #expect(contradicting.standardError.contains("--canary-percent says 20.0 %"), "\(contradicting.standardError)")
        let garbled = try run(common + ["--steps", "10,fifty"])
        #expect(garbled.status != 0 && garbled.standardError.contains("'10,fifty'"), "\(garbled.standardError)")
        let help = try run(["rollout", "start", "--help"])
        #expect(help.standardOutput.contains("--steps") && help.standardOutput.contains("--step-seconds"))
        #expect(help.standardOutput.contains("--max-rejections"))
    }

    @Test("tandem policy set checks its settings and staging before connecting; --help names the agent.yaml keys")
    func policySettingsAreChecked() throws {
        let common = [
            "policy", "set", "p1", "--fleet", "plant", "--key", "unused.key", "--broker-url", "mqtt://127.0.0.1:1",
        ]
        for (flags, said) in [
            (["--threshold", "1.5"], "threshold must be within [0, 1]"),
            (["--budget", "1"], "budget must be within (0, 1)"),
            (["--measure", "loudness"], "maxProbability, margin, entropy"),
            (["--burst", "0.5"], "burst must be within [1, 1e6]"),
            ([], "sets at least one of"),
            (["--threshold", "0.5", "--steps", "10,5"], "above the one before"),
        ] {
            let result = try run(common + flags)
            #expect(result.status != 0)
            #expect(result.standardError.contains(said), "\(flags): \(result.standardError)")
        }
        let help = try run(["policy", "set", "--help"])
        #expect(help.standardOutput.contains("--max-escalations-per-second") && help.standardOutput.contains("--steps"))
        #expect(try run(["policy", "--help"]).standardOutput.contains("agent.yaml"))
    }
}
