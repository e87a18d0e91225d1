import ArgumentParser
import Foundation
import TandemCommandLine
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

    @OptionGroup var brokerOptions: BrokerOptions

    @Option(help: ArgumentHelp("Who acts, for the audit log (default: $USER, else 'operator').", valueName: "name"))
    var actor: String?

    func validate() throws {
        guard !fleet.isEmpty, !fleet.contains(where: { "/+#".contains($0) }) else {
            throw ValidationError("--fleet: '\(fleet)' must be non-empty without '/', '+' or '#'")
        }
    }

    /// The broker flags checked together (no file is read); ``BrokerOptions`` refused bad ones before the command
    /// ran, so an unusable broker URL never gets as far as registering or signing.
    ///
    /// - Throws: `ValidationError` naming the flag at fault.
    func broker() throws -> MQTTBrokerConfiguration { try brokerOptions.configuration() }

    /// The settings of a client with a throwaway id: the password file is read, the TLS files checked.
    ///
    /// - Throws: `ValidationError` naming the flag and the file at fault.
    func clientConfiguration() throws -> MQTTClientConfiguration {
        try brokerOptions.clientConfiguration(clientID: "tandem-cli-\(UUID().uuidString.prefix(8))")
    }

    var actorName: String { actor ?? ProcessInfo.processInfo.environment["USER"] ?? "operator" }

    func registry() throws -> ModelRegistry { try ModelRegistry(directory: URL(fileURLWithPath: dataDir)) }

    func auditLog() -> AuditLog {
        AuditLog(url: URL(fileURLWithPath: dataDir).appendingPathComponent(AuditLog.fileName))
    }

    /// A connected client made from `configuration` (default: ``clientConfiguration()``).
    func connect(_ configuration: MQTTClientConfiguration? = nil) async throws -> MQTTClient {
        let client = try MQTTClient(configuration: configuration ?? clientConfiguration())
        try await client.connect()
        return client
    }

    /// Connects, follows the fleet's statuses until they settle, runs `body` with the client and the monitor, then
    /// stops following and disconnects, whether `body` returns or throws.
    func withFleet<T: Sendable>(_ body: (MQTTClient, FleetMonitor) async throws -> T) async throws -> T {
        let client = try await connect()
        let monitor: FleetMonitor
        do {
            monitor = try await FleetMonitor(client: client, fleet: fleet)
        } catch {
            await client.disconnect()
            throw error
        }
        let result: Result<T, any Error>
        do {
            await monitor.settle()
            result = .success(try await body(client, monitor))
        } catch {
            result = .failure(error)
        }
        monitor.stop()
        await client.disconnect()
        return try result.get()
    }
}
