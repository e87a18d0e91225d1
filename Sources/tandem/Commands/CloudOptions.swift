import ArgumentParser
import Foundation
import TandemFleet
import TandemMQTT

/// The options `tandem publish` and `tandem rollout` share: where the registry lives and how to reach the fleet.
struct CloudOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The cloud's data directory: models/, production.json, rollout-{fleet}.json and audit.jsonl.",
            valueName: "path"))
    var dataDir = "/var/lib/tandem-cloud"

    @Option(help: ArgumentHelp("The fleet (second topic level of tandem/v1/{fleet}/…).", valueName: "name"))
    var fleet: String

    @Option(
        help: ArgumentHelp(
            "The broker, mqtt://host[:port] (default port 1883) or mqtts://host[:port] for TLS (8883).",
            valueName: "url"))
    var brokerURL = "mqtt://localhost:1883"

    @Option(help: ArgumentHelp("Broker user name.", valueName: "name")) var username: String?

    @Option(help: ArgumentHelp("File whose first line is the broker password (needs --username).", valueName: "path"))
    var passwordFile: String?

    @Option(
        name: .customLong("broker-ca-file"),
        help: ArgumentHelp(
            "CA certificate (PEM) that signs the broker's, for mqtts:// (required there); 'system': the system's "
                + "trust store.", valueName: "path"))
    var brokerCAFile: String?

    @Option(
        name: .customLong("broker-cert-file"),
        help: ArgumentHelp("Client certificate (PEM) for a broker that requires one (mqtts://).", valueName: "path"))
    var brokerCertFile: String?

    @Option(
        name: .customLong("broker-key-file"),
        help: ArgumentHelp("The client certificate's private key (PEM).", valueName: "path"))
    var brokerKeyFile: String?

    @Option(help: ArgumentHelp("Who acts, for the audit log (default: $USER, else 'operator').", valueName: "name"))
    var actor: String?

    func validate() throws {
        // Before any command runs, so a broker URL it cannot use is refused before anything is registered or
        // signed.
        _ = try broker()
        guard !fleet.isEmpty, !fleet.contains(where: { "/+#".contains($0) }) else {
            throw ValidationError("--fleet: '\(fleet)' must be non-empty without '/', '+' or '#'")
        }
    }

    /// The broker flags checked together (no file is read).
    ///
    /// - Throws: `ValidationError` naming the flag at fault.
    func broker() throws -> MQTTBrokerConfiguration {
        do throws(MQTTBrokerConfigurationError) {
            return try MQTTBrokerConfiguration(
                url: brokerURL, username: username, passwordFile: passwordFile,
                certificateAuthorities: brokerCAFile.map(MQTTBrokerConfiguration.CertificateAuthorities.init),
                certificateFile: brokerCertFile, keyFile: brokerKeyFile)
        } catch {
            throw Self.validationError(error)
        }
    }

    /// The settings of a client with a throwaway id: the password file is read, the TLS files checked.
    ///
    /// - Throws: `ValidationError` naming the flag and the file at fault.
    func clientConfiguration() throws -> MQTTClientConfiguration {
        let broker = try broker()
        do throws(MQTTBrokerConfigurationError) {
            return try broker.clientConfiguration(clientID: "tandem-cli-\(UUID().uuidString.prefix(8))")
        } catch {
            throw Self.validationError(error)
        }
    }

    /// `error` as a usage error naming the flag of its setting.
    static func validationError(_ error: MQTTBrokerConfigurationError) -> ValidationError {
        let flag =
            switch error.setting {
            case .url: "--broker-url"
            case .username: "--username"
            case .passwordFile: "--password-file"
            case .caFile: "--broker-ca-file"
            case .certificateFile: "--broker-cert-file"
            case .keyFile: "--broker-key-file"
            }
        let hint =
            error.code == .missingSetting && error.setting == .caFile
            ? "; --broker-ca-file system asks for the system's trust store" : ""
        return ValidationError("\(flag): \(error.message)\(hint)")
    }

    var actorName: String { actor ?? ProcessInfo.processInfo.environment["USER"] ?? "operator" }

    func registry() throws -> ModelRegistry { try ModelRegistry(directory: URL(fileURLWithPath: dataDir)) }

    func auditLog() -> AuditLog { AuditLog(url: URL(fileURLWithPath: dataDir).appendingPathComponent("audit.jsonl")) }

    /// A connected client made from `configuration` (default: ``clientConfiguration()``).
    func connect(_ configuration: MQTTClientConfiguration? = nil) async throws -> MQTTClient {
        let client = try MQTTClient(configuration: configuration ?? clientConfiguration())
        try await client.connect()
        return client
    }
}
