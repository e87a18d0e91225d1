import Crypto
import Foundation
import TandemProtocol

/// The broker's users and access rules as mosquitto's dynamic-security plugin stores them
/// (`plugin_opt_config_file`, JSON): a *client* per broker user, with its password hash and, for devices, the one
/// client id it may connect with, and a *role* per client holding its topic rules.
///
/// Why not mosquitto's `password_file` + `acl_file`: the ACL file checks only what a client publishes and
/// receives, never what it subscribes to, and binds no client id to a user — so a device could join the cloud's
/// shared subscription (`$share/tandem-cloud/…/escalations`) and take a share of every device's escalations,
/// which the broker then drops on its read check, or connect with a cloud worker's client id and take over its
/// persistent session. The plugin checks subscriptions (denied unless a rule allows them), checks the client id
/// against the user, and denies publishing and receiving by default.
///
/// Provisioning owns the clients and roles it creates (devices' roles are named `tandem-device:{fleet}/{device}`,
/// the cloud's `tandem-cloud:{user}`); every other client, role and group in the file is kept as it is, so an
/// operator's admin user stays. The broker reads the file at start: restart it after provisioning (the plugin
/// rewrites the file itself when changed over its `$CONTROL` topic API, e.g. by `mosquitto_ctrl`).
public struct BrokerSecurityFile: Sendable {
    /// The file's JSON, kept whole so that entries provisioning does not own survive.
    var document: [String: JSONValue]

    /// PBKDF2 rounds, as mosquitto's own tools use by default.
    public static let iterations = 101
    /// Salt bytes, as mosquitto's own tools use.
    public static let saltBytes = 12

    /// An empty configuration: no clients, and publish, receive and subscribe denied unless a role allows them.
    public init() {
        document = [
            "clients": .array([]), "roles": .array([]), "groups": .array([]),
            "defaultACLAccess": .object([
                "publishClientSend": .bool(false), "publishClientReceive": .bool(false), "subscribe": .bool(false),
                "unsubscribe": .bool(true),
            ]),
        ]
    }

    /// Reads the file at `path`; a missing file is an empty configuration.
    ///
    /// - Throws: ``ProvisioningError`` (`io`) when the file cannot be read or is not the plugin's JSON.
    public init(contentsOf path: String) throws(ProvisioningError) {
        guard FileManager.default.fileExists(atPath: path) else {
            self.init()
            return
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ProvisioningError(.io, "\(path): cannot read: \(error.localizedDescription)")
        }
        guard let decoded = try? JSONDecoder().decode(JSONValue.self, from: data), case .object(let object) = decoded
        else {
            throw ProvisioningError(.io, "\(path): not a dynamic-security JSON object")
        }
        self.init()
        document.merge(object) { _, theirs in theirs }
    }

    /// Writes the configuration to `path` atomically, mode 0600 (it holds password hashes).
    public func write(to path: String) throws(ProvisioningError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(JSONValue.object(document)) else {
            throw ProvisioningError(.io, "\(path): cannot encode the configuration")
        }
        try writeAtomically(String(decoding: data, as: UTF8.self) + "\n", to: path, mode: 0o600)
    }

    /// Sets (or replaces) the client `user` with a fresh hash of `password`, bound to `clientID` when given
    /// (the broker then refuses that user under any other client id, and that client id to any other user with
    /// the same credentials), with one role holding `rules`.
    public mutating func setClient(
        user: String, password: String, clientID: String?, role: String, rules: [Rule], salt: [UInt8]? = nil
    ) {
        var generator = SystemRandomNumberGenerator()
        let salt = salt ?? (0..<Self.saltBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let hash = Self.pbkdf2SHA512(password: Array(password.utf8), salt: salt, iterations: Self.iterations)
        var client: [String: JSONValue] = [
            "username": .string(user), "password": .string(Data(hash).base64EncodedString()),
            "salt": .string(Data(salt).base64EncodedString()), "iterations": .number(Double(Self.iterations)),
            "roles": .array([.object(["rolename": .string(role)])]),
        ]
        if let clientID { client["clientid"] = .string(clientID) }
        let acls = rules.map { rule -> JSONValue in
            .object(["acltype": .string(rule.type.rawValue), "topic": .string(rule.topic), "allow": .bool(true)])
        }
        replace(in: "clients", key: "username", name: user, with: .object(client))
        replace(
            in: "roles", key: "rolename", name: role, with: .object(["rolename": .string(role), "acls": .array(acls)]))
    }

    /// The client named `user`, if the file has one: its client id binding and its role names.
    public func client(_ user: String) -> (clientID: String?, roles: [String])? {
        guard case .array(let clients) = document["clients"] else { return nil }
        for case .object(let client) in clients where client["username"] == .string(user) {
            var roles: [String] = []
            if case .array(let entries) = client["roles"] {
                for case .object(let entry) in entries {
                    if case .string(let name) = entry["rolename"] { roles.append(name) }
                }
            }
            if case .string(let id) = client["clientid"] { return (id, roles) }
            return (nil, roles)
        }
        return nil
    }

    /// The rules of the role `name`.
    public func rules(ofRole name: String) -> [Rule] {
        guard case .array(let roles) = document["roles"] else { return [] }
        for case .object(let role) in roles where role["rolename"] == .string(name) {
            guard case .array(let acls) = role["acls"] else { return [] }
            return acls.compactMap { acl in
                guard case .object(let acl) = acl, case .string(let type) = acl["acltype"],
                    case .string(let topic) = acl["topic"], let kind = Rule.Kind(rawValue: type)
                else { return nil }
                return Rule(kind, topic)
            }
        }
        return []
    }

    private mutating func replace(in list: String, key: String, name: String, with entry: JSONValue) {
        var entries: [JSONValue] = []
        if case .array(let existing) = document[list] { entries = existing }
        entries.removeAll { value in
            if case .object(let object) = value { return object[key] == .string(name) }
            return false
        }
        entries.append(entry)
        document[list] = .array(entries)
    }

    /// One rule of a role: what a client may do on a topic or filter.
    public struct Rule: Sendable, Equatable {
        /// The plugin's rule types that provisioning uses.
        public enum Kind: String, Sendable {
            /// Publishing to a topic.
            case publishClientSend
            /// Receiving a message on a topic (checked when the broker delivers it).
            case publishClientReceive
            /// Subscribing with a filter that the rule's filter covers.
            case subscribePattern
        }

        /// What is allowed.
        public var type: Kind
        /// The topic or filter.
        public var topic: String

        /// Creates a rule.
        public init(_ type: Kind, _ topic: String) {
            self.type = type
            self.topic = topic
        }

        /// The rules that grant `permission`: publishing for write, subscribing and receiving for read.
        public static func granting(_ permission: TopicPermission) -> [Rule] {
            let write = [Rule(.publishClientSend, permission.topic)]
            let read = [Rule(.subscribePattern, permission.topic), Rule(.publishClientReceive, permission.topic)]
            switch permission.access {
            case .write: return write
            case .read: return read
            case .readwrite: return write + read
            }
        }
    }

    /// PBKDF2 with HMAC-SHA512 (RFC 8018), one 64-byte block: the hash the plugin stores.
    static func pbkdf2SHA512(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var block = salt
        block += [0, 0, 0, 1]
        var u = Array(HMAC<SHA512>.authenticationCode(for: block, using: key))
        var result = u
        for _ in 1..<max(iterations, 1) {
            u = Array(HMAC<SHA512>.authenticationCode(for: u, using: key))
            for i in result.indices { result[i] ^= u[i] }
        }
        return result
    }

    /// A new random password: 32 bytes as 64 hex digits (no characters a config file must escape).
    public static func randomPassword() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}

/// A JSON value, for files whose every key must survive a read and a write.
enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value == value.rounded(), abs(value) < 9e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
