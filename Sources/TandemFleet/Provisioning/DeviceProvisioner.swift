import Foundation
import TandemProtocol

/// Everything a new edge box needs to join a fleet: its broker user (a client and a role in the broker's
/// dynamic-security file, ``BrokerSecurityFile``) and its `agent.yaml`.
///
/// The broker user of a device is `{fleet}/{device}` and so is the one client id it may connect with
/// (``DeviceTopics/brokerUser``): `/` appears in neither name, so two devices never share a user or a client id,
/// and no device's client id can be a cloud worker's (`tandem-cloud-…`, no `/`). The agent.yaml is the
/// documented reference configuration (edge-config/agent.yaml) with the device's own keys filled in, so every
/// other key keeps its comment and default.
public struct DeviceProvisioner: Sendable {
    /// The broker's dynamic-security file (mosquitto `plugin_opt_config_file`).
    public var securityFile: String

    /// Creates a provisioner for the broker whose dynamic-security file is at `securityFile`.
    public init(securityFile: String) {
        self.securityFile = securityFile
    }

    /// What the device's agent.yaml gets besides its name.
    public struct AgentSettings: Sendable {
        /// The broker URL the device connects to (`mqtt://host:port` or `mqtts://host:port`).
        public var brokerURL: String
        /// Where the password file will be on the device.
        public var devicePasswordPath: String
        /// Public key files (on the device) whose signatures the agent trusts.
        public var trustedKeys: [String]
        /// CA certificate for mqtts, on the device; empty: the system's trust store.
        public var caFile: String
        /// Client certificate and key on the device, for brokers that require one; empty: none.
        public var certFile = ""
        /// The client certificate's key on the device.
        public var keyFile = ""

        /// Creates settings; the paths are the Debian package's layout.
        public init(
            brokerURL: String, devicePasswordPath: String = "/etc/tandem/broker.password",
            trustedKeys: [String] = [], caFile: String = ""
        ) {
            self.brokerURL = brokerURL
            self.devicePasswordPath = devicePasswordPath
            self.trustedKeys = trustedKeys
            self.caFile = caFile
        }
    }

    /// A provisioned device.
    public struct Device: Sendable {
        /// The broker user name.
        public var user: String
        /// The new password (in clear: it goes to the device, the broker keeps only its hash).
        public var password: String
        /// The device's agent.yaml text.
        public var agentConfiguration: String
    }

    /// Checks that `name` can be a topic level and a user name part: 1–64 characters of letters, digits,
    /// `-`, `_` and `.`.
    public static func validateName(_ name: String, what: String) throws(ProvisioningError) {
        let allowed = name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D
                || b == 0x5F || b == 0x2E
        }
        // `models` and `keys` are fleet levels (`tandem/v1/{fleet}/models/{version}`, `…/keys/revocations`), not
        // devices.
        guard !name.isEmpty, name.utf8.count <= 64, allowed, name != ".", name != "..",
            !ProtocolTopics.reservedLevels.contains(name)
        else {
            throw ProvisioningError(
                .invalidName,
                "\(what) \"\(name)\": use 1–64 letters, digits, '-', '_' or '.' (it becomes a topic level; "
                    + "'models' and 'keys' are reserved)")
        }
    }

    /// Creates (or, run again, replaces) `device`'s broker client and role and returns its password and
    /// agent.yaml, filled in from `template` (the text of edge-config/agent.yaml).
    public func provisionDevice(
        _ device: String, fleet: String, settings: AgentSettings, template: String
    ) throws(ProvisioningError) -> Device {
        try Self.validateName(device, what: "device")
        try Self.validateName(fleet, what: "fleet")
        let topics = DeviceTopics(fleet: fleet, device: device)
        let user = topics.brokerUser
        let password = BrokerSecurityFile.randomPassword()
        var values = [
            "device.id": Self.quoted(device), "device.fleet": Self.quoted(fleet),
            "broker.url": Self.quoted(settings.brokerURL), "broker.username": Self.quoted(user),
            "broker.passwordFile": Self.quoted(settings.devicePasswordPath),
            "broker.caFile": Self.quoted(settings.caFile),
            "model.trustedKeys": "[" + settings.trustedKeys.map(Self.quoted).joined(separator: ", ") + "]",
        ]
        if !settings.certFile.isEmpty || !settings.keyFile.isEmpty {
            values["broker.certFile"] = Self.quoted(settings.certFile)
            values["broker.keyFile"] = Self.quoted(settings.keyFile)
        }
        let configuration = try Self.agentConfiguration(template: template, values: values)
        var security = try BrokerSecurityFile(contentsOf: securityFile)
        security.setClient(
            user: user, password: password, clientID: topics.brokerUser, role: Self.deviceRole(topics),
            rules: topics.permissions.flatMap(BrokerSecurityFile.Rule.granting))
        try security.write(to: securityFile)
        return Device(user: user, password: password, agentConfiguration: configuration)
    }

    /// Creates (or replaces) a cloud worker's broker user; returns its password. Its role reads and writes every
    /// Tandem topic and may join any shared-subscription group on them; its client id is not bound, so any number
    /// of workers and CLI commands use it at once (no device can take a worker's client id: each is bound to its
    /// own).
    public func provisionCloud(user: String) throws(ProvisioningError) -> String {
        try Self.validateName(user, what: "cloud user")
        let password = BrokerSecurityFile.randomPassword()
        var security = try BrokerSecurityFile(contentsOf: securityFile)
        let rules =
            BrokerSecurityFile.Rule.granting(TopicPermission(.readwrite, ProtocolTopics.everything))
            + [BrokerSecurityFile.Rule(.subscribePattern, "$share/+/\(ProtocolTopics.everything)")]
        security.setClient(user: user, password: password, clientID: nil, role: "tandem-cloud:\(user)", rules: rules)
        try security.write(to: securityFile)
        return password
    }

    /// The role provisioning gives `topics`' device.
    static func deviceRole(_ topics: DeviceTopics) -> String { "tandem-device:\(topics.brokerUser)" }

    /// `template` with the value of each `section.key` in `values` replaced, comments and layout kept.
    /// Only two-level keys of top-level mappings are set; a key the template lacks is an error.
    static func agentConfiguration(template: String, values: [String: String]) throws(ProvisioningError) -> String {
        var lines = template.components(separatedBy: "\n")
        var section = ""
        var found = Set<String>()
        for (i, line) in lines.enumerated() {
            if let first = line.first, first != " ", first != "#", let colon = line.firstIndex(of: ":") {
                section = String(line[..<colon])
                continue
            }
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let colon = line.firstIndex(of: ":") else { continue }
            let key = "\(section).\(line[line.index(line.startIndex, offsetBy: 2)..<colon])"
            guard let value = values[key], !found.contains(key) else { continue }
            lines[i] = "  \(key.split(separator: ".", maxSplits: 1)[1]): \(value)"
            found.insert(key)
        }
        let missing = Set(values.keys).subtracting(found).sorted()
        guard missing.isEmpty else {
            throw ProvisioningError(.template, "the agent.yaml template has no \(missing.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }

    /// A YAML double-quoted scalar.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for character in text.unicodeScalars {
            switch character {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out.unicodeScalars.append(character)
            }
        }
        return out + "\""
    }
}

extension DeviceProvisioner {
    /// Writes a provisioned file (agent.yaml, password) atomically with `mode`.
    public static func write(_ text: String, to path: String, mode: mode_t) throws(ProvisioningError) {
        try writeAtomically(text, to: path, mode: mode)
    }
}
