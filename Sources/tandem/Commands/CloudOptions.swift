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

    @Option(help: ArgumentHelp("The broker, mqtt://host[:port].", valueName: "url"))
    var brokerURL = "mqtt://localhost:1883"

    @Option(help: ArgumentHelp("Broker user name.", valueName: "name")) var username: String?

    @Option(help: ArgumentHelp("File whose first line is the broker password.", valueName: "path"))
    var passwordFile: String?

    @Option(help: ArgumentHelp("Who acts, for the audit log (default: $USER, else 'operator').", valueName: "name"))
    var actor: String?

    func validate() throws {
        guard !fleet.isEmpty, !fleet.contains(where: { "/+#".contains($0) }) else {
            throw ValidationError("--fleet: '\(fleet)' must be non-empty without '/', '+' or '#'")
        }
    }

    var actorName: String { actor ?? ProcessInfo.processInfo.environment["USER"] ?? "operator" }

    func registry() throws -> ModelRegistry { try ModelRegistry(directory: URL(fileURLWithPath: dataDir)) }

    func auditLog() -> AuditLog { AuditLog(url: URL(fileURLWithPath: dataDir).appendingPathComponent("audit.jsonl")) }

    /// A connected client with a throwaway id.
    func connect() async throws -> MQTTClient {
        guard let url = URLComponents(string: brokerURL), url.scheme == "mqtt", let host = url.host, !host.isEmpty
        else {
            throw ValidationError("--broker-url: '\(brokerURL)' is not mqtt://host[:port]")
        }
        var password: String?
        if let passwordFile {
            password = try String(contentsOfFile: passwordFile, encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init)
        }
        let client = try MQTTClient(
            configuration: MQTTClientConfiguration(
                host: host, port: url.port ?? 1883, clientID: "tandem-cli-\(UUID().uuidString.prefix(8))",
                username: username, password: password))
        try await client.connect()
        return client
    }
}
