import TandemMQTT
import TandemProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

extension AgentConfiguration {
    /// Checks every value and their consistency.
    ///
    /// - Throws: ``ConfigurationError`` listing every problem, each naming its key
    ///   (`streams[1].channels: must be positive, got 0`).
    public func validate() throws(ConfigurationError) {
        var issues = [ConfigurationError.Issue]()
        func check(_ condition: Bool, _ key: String, _ message: @autoclosure () -> String) {
            if !condition { issues.append(.init(code: .invalidValue, key: key, message: message())) }
        }
        func topicSafe(_ text: String) -> Bool { !text.isEmpty && !text.contains(where: { "/+#".contains($0) }) }

        check(
            topicSafe(device.id) && !ProtocolTopics.reservedLevels.contains(device.id), "device.id",
            "must be non-empty without '/', '+' or '#' and not 'models' or 'keys' (fleet levels), got '\(device.id)'"
        )
        check(
            topicSafe(device.fleet), "device.fleet", "must be non-empty without '/', '+' or '#', got '\(device.fleet)'")
        if !broker.url.isEmpty {  // empty: no broker
            do throws(ConfigurationError) {
                _ = try broker.brokerConfiguration()
            } catch {
                issues += error.issues
            }
        }
        check(
            broker.keepAliveSeconds > 0, "broker.keepAliveSeconds", "must be positive, got \(broker.keepAliveSeconds)")
        check(
            broker.reconnectMaxSeconds >= 0.1 && broker.reconnectMaxSeconds <= 3600, "broker.reconnectMaxSeconds",
            "must be within 0.1…3600, got \(broker.reconnectMaxSeconds)")
        check(!model.path.isEmpty, "model.path", "must name the model artifact")
        for (i, key) in model.trustedKeys.enumerated() {
            check(!key.isEmpty, "model.trustedKeys[\(i)]", "must be a path")
        }

        check(!streams.isEmpty, "streams", "at least one stream is needed")
        var names = Set<String>()
        for (i, stream) in streams.enumerated() {
            let p = "streams[\(i)]"
            check(
                topicSafe(stream.name), "\(p).name", "must be non-empty without '/', '+' or '#', got '\(stream.name)'")
            check(
                names.insert(stream.name).inserted || stream.name.isEmpty, "\(p).name",
                "'\(stream.name)' is used by an earlier stream")
            check(stream.channels > 0, "\(p).channels", "must be positive, got \(stream.channels)")
            check(
                stream.gapFactor > 1 && stream.gapFactor.isFinite, "\(p).gapFactor",
                "must be a finite number above 1, got \(stream.gapFactor)")
            let s = stream.source
            check(s.maxLineBytes >= 16, "\(p).source.maxLineBytes", "must be at least 16, got \(s.maxLineBytes)")
            switch s.kind {
            case .stdin: break
            case .file:
                check(!s.path.isEmpty, "\(p).source.path", "a file source needs a path")
                check(s.pollIntervalMs > 0, "\(p).source.pollIntervalMs", "must be positive, got \(s.pollIntervalMs)")
            case .udp:
                check((1...65535).contains(s.port), "\(p).source.port", "must be within 1…65535, got \(s.port)")
                var address = in_addr()
                check(
                    inet_pton(AF_INET, s.host, &address) == 1, "\(p).source.host",
                    "must be an IPv4 address, got '\(s.host)'")
                for (j, entry) in s.allowFrom.enumerated() {
                    check(
                        IPv4Network(entry) != nil, "\(p).source.allowFrom[\(j)]",
                        "must be an IPv4 address or block like 192.168.1.0/24, got '\(entry)'")
                }
            case .mqtt:
                check(!s.topic.isEmpty, "\(p).source.topic", "an mqtt source needs a topic")
                do throws(MQTTBrokerConfigurationError) {
                    check(
                        !(try MQTTBrokerConfiguration.Endpoint(url: s.url).usesTLS), "\(p).source.url",
                        "must be mqtt://host[:port] (a source has no TLS settings), got '\(s.url)'")
                } catch {
                    check(false, "\(p).source.url", error.message)
                }
            }
            // Streams may share a source (JSON lines then name their stream), but only with identical settings.
            if let j = streams[..<i].firstIndex(where: { Self.sourceKey($0.source) == Self.sourceKey(s) }),
                streams[j].source != s
            {
                check(
                    false, "\(p).source",
                    "reads the same \(s.kind.rawValue) source as streams[\(j)] with other settings")
            }
        }

        check(
            policy.threshold >= 0 && policy.threshold <= 1, "policy.threshold",
            "must be within [0, 1], got \(policy.threshold)")
        if let budget = policy.budget {
            check(budget > 0 && budget < 1, "policy.budget", "must be within (0, 1), got \(budget)")
        }
        check(
            policy.maxEscalationsPerSecond >= 0, "policy.maxEscalationsPerSecond",
            "must not be negative, got \(policy.maxEscalationsPerSecond)")
        if let burst = policy.burst { check(burst >= 1, "policy.burst", "must be at least 1, got \(burst)") }
        check(policy.gain >= 0, "policy.gain", "must not be negative, got \(policy.gain)")
        check(
            policy.auditShare >= 0 && policy.auditShare <= 0.5, "policy.auditShare",
            "must be within [0, 0.5], got \(policy.auditShare)")
        check((1...255).contains(policy.topK), "policy.topK", "must be within 1…255, got \(policy.topK)")
        check(verdictDeadlineMs > 0, "verdictDeadlineMs", "must be positive, got \(verdictDeadlineMs)")
        check(statusIntervalSeconds > 0, "statusIntervalSeconds", "must be positive, got \(statusIntervalSeconds)")

        check(!sinks.isEmpty, "sinks", "at least one sink is needed")
        for (i, sink) in sinks.enumerated() {
            if sink.kind == .file { check(!sink.path.isEmpty, "sinks[\(i)].path", "a file sink needs a path") }
            check(
                sink.flushIntervalMs > 0, "sinks[\(i)].flushIntervalMs", "must be positive, got \(sink.flushIntervalMs)"
            )
        }
        check(!outbox.directory.isEmpty, "outbox.directory", "must name a directory")
        check(outbox.maxBytes > 0, "outbox.maxBytes", "must be positive, got \(outbox.maxBytes)")
        if !metricsListen.isEmpty {
            let parts = metricsListen.split(separator: ":", omittingEmptySubsequences: false)
            check(
                parts.count == 2 && !parts[0].isEmpty && Int(parts[1]).map { (1...65535).contains($0) } == true,
                "metrics.listen", "must be host:port (e.g. 127.0.0.1:9464) or empty, got '\(metricsListen)'")
        }
        check(log.maxMessages >= 0, "log.maxMessages", "must not be negative, got \(log.maxMessages)")
        check(log.intervalSeconds > 0, "log.intervalSeconds", "must be positive, got \(log.intervalSeconds)")
        if !issues.isEmpty { throw ConfigurationError(issues: issues) }
    }

    /// What identifies a source: streams whose sources have the same key share one reader.
    static func sourceKey(_ source: Source) -> String {
        switch source.kind {
        case .stdin: "stdin"
        case .file: "file \(source.path)"
        case .udp: "udp \(source.port)"
        case .mqtt: "mqtt \(source.url) \(source.topic)"
        }
    }

    /// The streams grouped by the source they read, in order of first appearance: one reader per group.
    ///
    /// A JSON line on a shared source goes to the stream its `stream` field names; a line without one
    /// (every CSV line) goes to the group's first stream.
    public var sourceGroups: [[Int]] {
        var groups = [[Int]]()
        var byKey = [String: Int]()
        for (i, stream) in streams.enumerated() {
            let key = Self.sourceKey(stream.source)
            if let g = byKey[key] {
                groups[g].append(i)
            } else {
                byKey[key] = groups.count
                groups.append([i])
            }
        }
        return groups
    }

    /// The configuration as YAML, every key with its effective value (what `check-config` prints).
    public func effectiveYAML() -> String {
        var lines = [String]()
        var section = ""
        for setting in Self.settings {
            let parts = setting.key.split(separator: ".", maxSplits: 1).map(String.init)
            let value = quoted(setting.get(self))
            if parts.count == 2 {
                if parts[0] != section {
                    section = parts[0]
                    lines.append("\(section):")
                }
                if setting.key == "model.trustedKeys" {
                    lines.append("  trustedKeys: [\(model.trustedKeys.map(quoted).joined(separator: ", "))]")
                } else {
                    lines.append("  \(parts[1]): \(value)")
                }
            } else {
                section = ""
                lines.append("\(setting.key): \(value)")
            }
        }
        lines.append("streams:")
        for stream in streams {
            lines.append("  - name: \(quoted(stream.name))")
            lines.append("    channels: \(stream.channels)")
            lines.append("    gapFactor: \(Self.format(stream.gapFactor))")
            let s = stream.source
            lines.append("    source:")
            lines.append("      kind: \(s.kind.rawValue)")
            switch s.kind {
            case .stdin: break
            case .file:
                lines.append("      path: \(quoted(s.path))")
                lines.append("      startAtEnd: \(s.startAtEnd)")
                lines.append("      pollIntervalMs: \(s.pollIntervalMs)")
            case .udp:
                lines.append("      host: \(quoted(s.host))")
                lines.append("      port: \(s.port)")
                lines.append("      allowFrom: [\(s.allowFrom.map(quoted).joined(separator: ", "))]")
            case .mqtt:
                lines.append("      topic: \(quoted(s.topic))")
                lines.append("      url: \(quoted(s.url))")
            }
            lines.append("      maxLineBytes: \(s.maxLineBytes)")
        }
        lines.append("sinks:")
        for sink in sinks {
            lines.append("  - kind: \(sink.kind.rawValue)")
            if sink.kind == .file { lines.append("    path: \(quoted(sink.path))") }
            lines.append("    flushIntervalMs: \(sink.flushIntervalMs)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` as a YAML scalar the reader gives back as `text`: plain when nothing in it means more to YAML, else
    /// double-quoted with `\\`, `\"` and control characters escaped.
    ///
    /// A plain scalar must not start with an indicator (`-` alone starts a list, `@` is reserved) nor end with `:`
    /// (a key); the fuzz target `yaml` found `username: -` printed plain.
    private func quoted(_ text: String) -> String {
        let plain =
            !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "-_./:@".contains($0) }
            && text.first.map { $0.isLetter || $0.isNumber || "_./".contains($0) } == true && text.last != ":"
            && !["true", "false", "null", "yes", "no", "on", "off", "~"].contains(text.lowercased())
        if plain { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
