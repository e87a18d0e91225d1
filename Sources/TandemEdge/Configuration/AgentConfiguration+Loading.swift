import TandemCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

extension AgentConfiguration {
    /// A setting addressed by key path, set from text: how YAML scalars, `TANDEM_…` variables and
    /// flags all reach the configuration.
    struct Setting: Sendable {
        let key: String
        let set: @Sendable (inout AgentConfiguration, String) throws(ConfigurationError) -> Void
        let get: @Sendable (AgentConfiguration) -> String

        /// `policy.maxEscalationsPerSecond` → `TANDEM_POLICY_MAX_ESCALATIONS_PER_SECOND`.
        var environmentName: String { AgentConfiguration.environmentName(forKey: key) }
    }

    /// The environment variable that overrides `key`: `TANDEM_` + the key in upper snake case, dots as `_`.
    public static func environmentName(forKey key: String) -> String {
        var name = "TANDEM_"
        for scalar in key.unicodeScalars {
            if scalar == "." {
                name += "_"
            } else if scalar.properties.isUppercase {
                name += "_" + String(scalar)
            } else {
                name += String(scalar).uppercased()
            }
        }
        return name
    }

    /// The keys that can be overridden from the environment and flags, with their environment names.
    public static var overridableKeys: [(key: String, environment: String)] {
        settings.map { ($0.key, $0.environmentName) }
    }

    static func text(_ key: String, _ path: WritableKeyPath<AgentConfiguration, String> & Sendable) -> Setting {
        Setting(key: key, set: { config, value in config[keyPath: path] = value }, get: { $0[keyPath: path] })
    }

    static func integer(_ key: String, _ path: WritableKeyPath<AgentConfiguration, Int> & Sendable) -> Setting {
        Setting(
            key: key,
            set: { config, value throws(ConfigurationError) in
                guard let v = Int(value.trimmingWhitespace()) else {
                    throw ConfigurationError(.invalidValue, key: key, "'\(value)' is not an integer")
                }
                config[keyPath: path] = v
            }, get: { String($0[keyPath: path]) })
    }

    static func number(_ key: String, _ path: WritableKeyPath<AgentConfiguration, Double> & Sendable) -> Setting {
        Setting(
            key: key,
            set: { config, value throws(ConfigurationError) in
                config[keyPath: path] = try parseNumber(value, key: key)
            }, get: { format($0[keyPath: path]) })
    }

    static func optionalNumber(_ key: String, _ path: WritableKeyPath<AgentConfiguration, Double?> & Sendable)
        -> Setting
    {
        Setting(
            key: key,
            set: { config, value throws(ConfigurationError) in
                let trimmed = value.trimmingWhitespace()
                config[keyPath: path] =
                    trimmed.isEmpty || trimmed == "null" || trimmed == "~" ? nil : try parseNumber(trimmed, key: key)
            }, get: { $0[keyPath: path].map(format) ?? "null" })
    }

    static func flag(_ key: String, _ path: WritableKeyPath<AgentConfiguration, Bool> & Sendable) -> Setting {
        Setting(
            key: key,
            set: { config, value throws(ConfigurationError) in
                switch value.trimmingWhitespace().lowercased() {
                case "true", "yes", "on", "1": config[keyPath: path] = true
                case "false", "no", "off", "0": config[keyPath: path] = false
                default: throw ConfigurationError(.invalidValue, key: key, "'\(value)' is not true or false")
                }
            }, get: { String($0[keyPath: path]) })
    }

    static func parseNumber(_ value: String, key: String) throws(ConfigurationError) -> Double {
        guard let v = Double(value.trimmingWhitespace()), v.isFinite else {
            throw ConfigurationError(.invalidValue, key: key, "'\(value)' is not a finite number")
        }
        return v
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// Every scalar setting outside the stream and sink lists.
    static let settings: [Setting] = [
        text("device.id", \.device.id),
        text("device.fleet", \.device.fleet),
        text("broker.url", \.broker.url),
        text("broker.username", \.broker.username),
        text("broker.passwordFile", \.broker.passwordFile),
        text("broker.caFile", \.broker.caFile),
        text("broker.certFile", \.broker.certFile),
        text("broker.keyFile", \.broker.keyFile),
        integer("broker.keepAliveSeconds", \.broker.keepAliveSeconds),
        number("broker.reconnectMaxSeconds", \.broker.reconnectMaxSeconds),
        text("model.path", \.model.path),
        Setting(
            key: "model.trustedKeys",
            set: { config, value in
                config.model.trustedKeys = value.split(separator: ",").map { $0.trimmingWhitespace() }
                    .filter { !$0.isEmpty }
            }, get: { $0.model.trustedKeys.joined(separator: ",") }),
        flag("model.requireSignature", \.model.requireSignature),
        Setting(
            key: "policy.measure",
            set: { config, value throws(ConfigurationError) in
                guard let measure = ConfidenceMeasure(rawValue: value.trimmingWhitespace()) else {
                    throw ConfigurationError(
                        .invalidValue, key: "policy.measure",
                        "'\(value)' is not one of \(ConfidenceMeasure.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                config.policy.measure = measure
            }, get: { $0.policy.measure.rawValue }),
        number("policy.threshold", \.policy.threshold),
        optionalNumber("policy.budget", \.policy.budget),
        number("policy.maxEscalationsPerSecond", \.policy.maxEscalationsPerSecond),
        optionalNumber("policy.burst", \.policy.burst),
        number("policy.gain", \.policy.gain),
        number("policy.auditShare", \.policy.auditShare),
        flag("policy.escalateNovel", \.policy.escalateNovel),
        integer("policy.topK", \.policy.topK),
        integer("verdictDeadlineMs", \.verdictDeadlineMs),
        number("statusIntervalSeconds", \.statusIntervalSeconds),
        text("outbox.directory", \.outbox.directory),
        integer("outbox.maxBytes", \.outbox.maxBytes),
        text("metrics.listen", \.metricsListen),
        integer("log.maxMessages", \.log.maxMessages),
        number("log.intervalSeconds", \.log.intervalSeconds),
    ]

    /// Sets the scalar setting `key` (e.g. `policy.threshold`) from text, as a flag or variable would.
    ///
    /// - Throws: ``ConfigurationError`` naming the key if it is unknown or the value does not parse.
    public mutating func set(_ key: String, to value: String) throws(ConfigurationError) {
        guard let setting = Self.settings.first(where: { $0.key == key }) else {
            throw ConfigurationError(.unknownKey, key: key, "not a setting")
        }
        try setting.set(&self, value)
    }

    /// The current value of the scalar setting `key` as text, or nil if there is no such key.
    public func value(of key: String) -> String? {
        Self.settings.first(where: { $0.key == key })?.get(self)
    }

    /// Applies `TANDEM_…` variables from `environment` (see ``environmentName(forKey:)``).
    ///
    /// - Throws: ``ConfigurationError`` naming the variable if a value does not parse.
    public mutating func applyEnvironment(_ environment: [String: String]) throws(ConfigurationError) {
        for setting in Self.settings {
            guard let value = environment[setting.environmentName] else { continue }
            do throws(ConfigurationError) {
                try setting.set(&self, value)
            } catch {
                throw ConfigurationError(
                    issues: error.issues.map { .init(code: $0.code, key: setting.environmentName, message: $0.message) }
                )
            }
        }
    }

    // MARK: YAML

    /// Loads a configuration: defaults, then the YAML file at `path` (if given), then `environment`.
    ///
    /// An empty `device.id` becomes the host name. Does not validate; call ``validate()``.
    /// - Throws: ``ConfigurationError`` naming the file and key.
    public static func load(path: String?, environment: [String: String] = [:]) throws(ConfigurationError)
        -> AgentConfiguration
    {
        var config = AgentConfiguration()
        if let path {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigurationError(.unreadable, key: "", "cannot read: \(describe(error))", file: path)
            }
            do throws(ConfigurationError) {
                try config.apply(yaml: text)
            } catch {
                throw ConfigurationError(issues: error.issues, file: path)
            }
        }
        try config.applyEnvironment(environment)
        if config.device.id.isEmpty {
            config.device.id = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        }
        return config
    }

    /// Applies YAML text over this configuration; keys not in it keep their values.
    ///
    /// The text is read by ``YAMLReader``, which takes the part of YAML a configuration needs.
    /// - Throws: ``ConfigurationError`` listing every unknown key and unparsable value, or one `.syntax` problem
    ///   naming the line if the text is not YAML the reader accepts.
    public mutating func apply(yaml: String) throws(ConfigurationError) {
        let root: YAMLNode?
        do throws(YAMLError) {
            root = try YAMLReader.read(yaml)
        } catch {
            throw ConfigurationError(.syntax, key: "", "not valid YAML: \(error)")
        }
        guard let root else { return }
        guard let mapping = root.mapping else {
            throw ConfigurationError(.syntax, key: "", "the top level must be a mapping of keys")
        }
        var issues = [ConfigurationError.Issue]()
        func attempt(_ body: () throws(ConfigurationError) -> Void) {
            do { try body() } catch { issues += error.issues }
        }
        for (key, value) in mapping {
            switch key {
            case "streams":
                attempt { () throws(ConfigurationError) in streams = try Self.readStreams(value) }
            case "sinks":
                attempt { () throws(ConfigurationError) in sinks = try Self.readSinks(value) }
            default:
                if let section = value.mapping, Self.settings.contains(where: { $0.key.hasPrefix(key + ".") }) {
                    for (childKey, childValue) in section {
                        let path = "\(key).\(childKey)"
                        attempt { () throws(ConfigurationError) in try setScalar(path, childValue) }
                    }
                } else {
                    attempt { () throws(ConfigurationError) in try setScalar(key, value) }
                }
            }
        }
        if !issues.isEmpty { throw ConfigurationError(issues: issues) }
    }

    private mutating func setScalar(_ key: String, _ node: YAMLNode) throws(ConfigurationError) {
        guard Self.settings.contains(where: { $0.key == key }) else {
            throw ConfigurationError(.unknownKey, key: key, "unknown key")
        }
        if key == "model.trustedKeys", let list = node.sequence {
            var paths = [String]()
            for (i, item) in list.enumerated() {
                guard let text = item.scalar else {
                    throw ConfigurationError(.syntax, key: "model.trustedKeys[\(i)]", "must be a path")
                }
                paths.append(text)
            }
            model.trustedKeys = paths
            return
        }
        guard let scalar = node.scalar else {
            throw ConfigurationError(.syntax, key: key, "must be a single value, not a list or mapping")
        }
        try set(key, to: scalar)
    }

    private static func readStreams(_ node: YAMLNode) throws(ConfigurationError) -> [Stream] {
        guard let list = node.sequence else {
            throw ConfigurationError(.syntax, key: "streams", "must be a list of streams")
        }
        var streams = [Stream]()
        var issues = [ConfigurationError.Issue]()
        for (i, item) in list.enumerated() {
            let prefix = "streams[\(i)]"
            guard let mapping = item.mapping else {
                issues.append(.init(code: .syntax, key: prefix, message: "must be a mapping (name, channels, source)"))
                continue
            }
            var stream = Stream()
            for (key, value) in mapping {
                do throws(ConfigurationError) {
                    switch key {
                    case "name": stream.name = try scalar(value, "\(prefix).name")
                    case "channels": stream.channels = try integer(value, "\(prefix).channels")
                    case "gapFactor":
                        stream.gapFactor = try parseNumber(
                            try scalar(value, "\(prefix).gapFactor"), key: "\(prefix).gapFactor")
                    case "source":
                        guard let source = value.mapping else {
                            throw ConfigurationError(.syntax, key: "\(prefix).source", "must be a mapping (kind, …)")
                        }
                        for (sourceKey, sourceValue) in source {
                            let path = "\(prefix).source.\(sourceKey)"
                            do throws(ConfigurationError) {
                                switch sourceKey {
                                case "kind":
                                    let text = try scalar(sourceValue, path)
                                    guard let kind = SourceKind(rawValue: text) else {
                                        throw ConfigurationError(
                                            .invalidValue, key: path,
                                            "'\(text)' is not one of \(SourceKind.allCases.map(\.rawValue).joined(separator: ", "))"
                                        )
                                    }
                                    stream.source.kind = kind
                                case "path": stream.source.path = try scalar(sourceValue, path)
                                case "startAtEnd": stream.source.startAtEnd = try boolean(sourceValue, path)
                                case "pollIntervalMs": stream.source.pollIntervalMs = try integer(sourceValue, path)
                                case "host": stream.source.host = try scalar(sourceValue, path)
                                case "port": stream.source.port = try integer(sourceValue, path)
                                case "allowFrom":
                                    guard let list = sourceValue.sequence else {
                                        throw ConfigurationError(
                                            .syntax, key: path, "must be a list of IPv4 addresses or blocks")
                                    }
                                    var entries: [String] = []
                                    for (i, item) in list.enumerated() {
                                        entries.append(try scalar(item, "\(path)[\(i)]"))
                                    }
                                    stream.source.allowFrom = entries
                                case "topic": stream.source.topic = try scalar(sourceValue, path)
                                case "url": stream.source.url = try scalar(sourceValue, path)
                                case "maxLineBytes": stream.source.maxLineBytes = try integer(sourceValue, path)
                                default: throw ConfigurationError(.unknownKey, key: path, "unknown key")
                                }
                            } catch {
                                issues += error.issues
                            }
                        }
                    default: throw ConfigurationError(.unknownKey, key: "\(prefix).\(key)", "unknown key")
                    }
                } catch {
                    issues += error.issues
                }
            }
            streams.append(stream)
        }
        if !issues.isEmpty { throw ConfigurationError(issues: issues) }
        return streams
    }

    private static func readSinks(_ node: YAMLNode) throws(ConfigurationError) -> [Sink] {
        guard let list = node.sequence else {
            throw ConfigurationError(.syntax, key: "sinks", "must be a list of sinks")
        }
        var sinks = [Sink]()
        var issues = [ConfigurationError.Issue]()
        for (i, item) in list.enumerated() {
            let prefix = "sinks[\(i)]"
            guard let mapping = item.mapping else {
                issues.append(.init(code: .syntax, key: prefix, message: "must be a mapping (kind, …)"))
                continue
            }
            var sink = Sink()
            for (key, value) in mapping {
                let path = "\(prefix).\(key)"
                do throws(ConfigurationError) {
                    switch key {
                    case "kind":
                        let text = try scalar(value, path)
                        guard let kind = Sink.Kind(rawValue: text) else {
                            throw ConfigurationError(
                                .invalidValue, key: path,
                                "'\(text)' is not one of \(Sink.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
                        }
                        sink.kind = kind
                    case "path": sink.path = try scalar(value, path)
                    case "flushIntervalMs": sink.flushIntervalMs = try integer(value, path)
                    default: throw ConfigurationError(.unknownKey, key: path, "unknown key")
                    }
                } catch {
                    issues += error.issues
                }
            }
            sinks.append(sink)
        }
        if !issues.isEmpty { throw ConfigurationError(issues: issues) }
        return sinks
    }

    private static func scalar(_ node: YAMLNode, _ key: String) throws(ConfigurationError) -> String {
        guard let scalar = node.scalar else { throw ConfigurationError(.syntax, key: key, "must be a single value") }
        return scalar
    }

    private static func integer(_ node: YAMLNode, _ key: String) throws(ConfigurationError) -> Int {
        let text = try scalar(node, key)
        guard let value = Int(text) else {
            throw ConfigurationError(.invalidValue, key: key, "'\(text)' is not an integer")
        }
        return value
    }

    private static func boolean(_ node: YAMLNode, _ key: String) throws(ConfigurationError) -> Bool {
        let text = try scalar(node, key).lowercased()
        switch text {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw ConfigurationError(.invalidValue, key: key, "'\(text)' is not true or false")
        }
    }
}
