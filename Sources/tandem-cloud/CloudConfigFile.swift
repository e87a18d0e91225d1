import Foundation
import Yams

/// `tandem-cloud serve --config cloud.yaml`: the file's keys become the equivalent command-line flags, placed
/// before the ones given on the command line, so the precedence is built-in defaults < the file <
/// `TANDEM_CLOUD_…` environment variables < flags (for a list key the file's entries and the flags' add up).
///
/// Every key, its flag and its default are in cloud-config/cloud.yaml. Unknown keys, lists where a single
/// value belongs and values of the wrong kind are errors that name the key.
enum CloudConfigFile {
    enum Kind { case value, list, flag, valueWhereEmptyCounts }

    /// `section.key` → (flag, kind), in the order of cloud-config/cloud.yaml.
    static let keys: [(key: String, flag: String, kind: Kind)] = [
        ("broker.url", "--broker-url", .value),
        ("broker.username", "--username", .value),
        ("broker.passwordFile", "--password-file", .value),
        ("broker.caFile", "--broker-ca-file", .value),
        ("broker.certFile", "--broker-cert-file", .value),
        ("broker.keyFile", "--broker-key-file", .value),
        ("models.full", "--model", .value),
        ("models.precision", "--precision", .value),
        ("models.edge", "--edge-model", .list),
        ("models.trustedKeys", "--trusted-key", .list),
        ("store.dataDir", "--data-dir", .value),
        ("store.url", "--store-url", .value),
        ("worker.id", "--worker-id", .value),
        ("worker.maxBatch", "--max-batch", .value),
        ("worker.maxWaitMs", "--max-wait-ms", .value),
        ("worker.modelThreads", "--model-threads", .value),
        ("worker.statsInterval", "--stats-interval", .value),
        ("worker.shutdownGracePeriod", "--shutdown-grace-period", .value),
        ("worker.answerAttempts", "--answer-attempts", .value),
        ("worker.fullModelCheckInterval", "--full-model-check-interval", .value),
        ("limits.deviceEscalationsPerSecond", "--device-escalations-per-second", .value),
        ("limits.deviceEscalationBurst", "--device-escalation-burst", .value),
        ("limits.deviceLabelsPerSecond", "--device-labels-per-second", .value),
        ("limits.deviceLabelBurst", "--device-label-burst", .value),
        ("http.address", "--http", .valueWhereEmptyCounts),
        ("http.apiTokenFile", "--api-token-file", .value),
        ("http.idleTimeout", "--http-idle-timeout", .value),
        ("http.maxConnections", "--http-max-connections", .value),
        ("trainer.enabled", "--trainer", .flag),
        ("trainer.trainingData", "--training-data", .value),
        ("trainer.edgeSpec", "--edge-spec", .value),
        ("trainer.signingKey", "--signing-key", .value),
        ("trainer.fleet", "--fleet", .value),
        ("trainer.retrainInterval", "--retrain-interval", .value),
        ("trainer.retrainHardExamples", "--retrain-hard-examples", .value),
        ("trainer.retrainLabels", "--retrain-labels", .value),
        ("trainer.retrainEvery", "--retrain-every", .value),
        ("trainer.retrainFollowUpLabels", "--retrain-follow-up-labels", .value),
        ("trainer.retrainAuditMin", "--retrain-audit-min", .value),
        ("trainer.retrainAuditDrop", "--retrain-audit-drop", .value),
        ("trainer.retrainDriftWindow", "--retrain-drift-window", .value),
        ("trainer.retrainDriftMinWindows", "--retrain-drift-min-windows", .value),
        ("trainer.retrainDriftBound", "--retrain-drift-bound", .value),
        ("trainer.retrainDriftRelative", "--retrain-drift-relative", .value),
        ("trainer.retrainDriftScope", "--retrain-drift-scope", .value),
        ("trainer.leaseSeconds", "--lease-seconds", .value),
        ("trainer.fineTuneEpochs", "--fine-tune-epochs", .value),
        ("trainer.distillationEpochs", "--distillation-epochs", .value),
        ("trainer.fineTuneSeconds", "--fine-tune-seconds", .value),
        ("trainer.compressSeconds", "--compress-seconds", .value),
        ("trainer.replayWindows", "--replay-windows", .value),
        ("trainer.hardExampleLimit", "--hard-example-limit", .value),
        ("trainer.trainerNice", "--trainer-nice", .value),
        ("trainer.trainerBlasThreads", "--trainer-blas-threads", .value),
        ("trainer.fullMinLabelledWindows", "--full-min-labelled-windows", .value),
        ("trainer.gateEpsilon", "--gate-epsilon", .value),
        ("trainer.gateEscalationSlack", "--gate-escalation-slack", .value),
        ("trainer.canaryPercent", "--canary-percent", .value),
        ("trainer.soakSeconds", "--soak-seconds", .value),
        ("trainer.maxEscalationIncrease", "--max-escalation-increase", .value),
        ("trainer.minCanaryWindows", "--min-canary-windows", .value),
        ("trainer.maxAccuracyDrop", "--max-accuracy-drop", .value),
        ("trainer.minLabelledWindows", "--min-labelled-windows", .value),
        ("trainer.rolloutSteps", "--rollout-steps", .value),
        ("trainer.rolloutStepSeconds", "--rollout-step-seconds", .value),
        ("trainer.maxRejections", "--max-rejections", .value),
        ("trainer.rolloutInterval", "--rollout-interval", .value),
    ]

    /// The environment variable of `section.someKey`: TANDEM_CLOUD_SECTION_SOME_KEY.
    static func environmentName(_ key: String) -> String {
        var name = "TANDEM_CLOUD_"
        for character in key {
            if character == "." {
                name += "_"
            } else if character.isUppercase {
                name += "_" + String(character)
            } else {
                name += character.uppercased()
            }
        }
        return name
    }

    /// `arguments` (without the program name) with `--config FILE`'s keys and the `TANDEM_CLOUD_…`
    /// variables expanded into flags in front of the command line's own; `serve` first.
    static func expand(_ arguments: [String], environment: [String: String]) throws -> [String] {
        var rest = arguments
        let subcommand = rest.first == "serve" ? rest.removeFirst() : nil
        // Anything but serve (help, another subcommand) goes through untouched.
        if subcommand == nil, let first = rest.first, !first.hasPrefix("-") { return arguments }
        if rest.contains(where: { $0 == "-h" || $0 == "--help" }) { return arguments }
        var flags: [String] = []
        if let index = rest.firstIndex(of: "--config") {
            guard index + 1 < rest.count else { throw ConfigError("--config needs a file") }
            flags += try fileFlags(path: rest[index + 1])
        } else if let option = rest.first(where: { $0.hasPrefix("--config=") }) {
            flags += try fileFlags(path: String(option.dropFirst("--config=".count)))
        }
        for (key, flag, kind) in keys {
            guard let value = environment[environmentName(key)] else { continue }
            switch kind {
            case .flag:
                guard let on = boolean(value) else {
                    throw ConfigError("\(environmentName(key)): '\(value)' is not true or false")
                }
                if on { flags.append(flag) }
            case .list:
                for item in value.split(separator: ",") { flags += [flag, String(item)] }
            case .value, .valueWhereEmptyCounts:
                flags += [flag, value]
            }
        }
        return ["serve"] + flags + rest
    }

    static func fileFlags(path: String) throws -> [String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError("\(path): cannot read: \(error.localizedDescription)")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text, .basic) } catch {
            throw ConfigError("\(path): not valid YAML: \(error)")
        }
        guard let root else { return [] }
        guard let sections = root.mapping else { throw ConfigError("\(path): the top level must be a mapping") }
        var flags: [String] = []
        var problems: [String] = []
        for (sectionNode, sectionValue) in sections {
            let section = sectionNode.string ?? ""
            guard let entries = sectionValue.mapping else {
                problems.append("\(section): must be a section of keys")
                continue
            }
            for (keyNode, value) in entries {
                let key = "\(section).\(keyNode.string ?? "")"
                guard let (_, flag, kind) = keys.first(where: { $0.key == key }) else {
                    problems.append("\(key): unknown key")
                    continue
                }
                switch kind {
                case .list:
                    if value.scalar?.string == "" || value.scalar?.string == "[]" { continue }
                    guard let items = value.sequence else {
                        problems.append("\(key): must be a list")
                        continue
                    }
                    for item in items {
                        guard let text = item.scalar?.string else {
                            problems.append("\(key): every entry must be a single value")
                            continue
                        }
                        flags += [flag, text]
                    }
                case .flag:
                    guard let text = value.scalar?.string, let on = boolean(text) else {
                        problems.append("\(key): must be true or false")
                        continue
                    }
                    if on { flags.append(flag) }
                case .value, .valueWhereEmptyCounts:
                    guard let text = value.scalar?.string else {
                        problems.append("\(key): must be a single value, not a list or section")
                        continue
                    }
                    if text.isEmpty && kind == .value { continue }
                    flags += [flag, text]
                }
            }
        }
        guard problems.isEmpty else {
            throw ConfigError("\(path): " + problems.joined(separator: "; "))
        }
        return flags
    }

    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on", "1": true
        case "false", "no", "off", "0": false
        default: nil
        }
    }
}

/// A configuration file or variable that cannot be used, naming the file and key.
struct ConfigError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
