import ArgumentParser
import Foundation
import TandemCore
import TandemFleet

/// `tandem publish MODEL --key KEY --fleet F`: registers, signs and publishes a model version.
struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Register, sign and publish a model version for a fleet.",
        discussion: """
            Checks the artifact as a device would (checksums, input spec, golden-input self-test), signs it with \
            --key, stores it as {data-dir}/models/{version}.tandem with its lineage record {version}.json, and \
            publishes it retained (QoS 1, waiting for the broker's acknowledgement) on \
            tandem/v1/{fleet}/models/{version}. A model whose input (channels, window, hop, sample rate) or class \
            names differ from the production model's is refused unless --force is given.

            Publishing does not assign the model to any device: `tandem rollout start VERSION` does that in \
            stages. For the first model of a fleet use --production --all-devices. A direct assignment (--device, \
            --all-devices) is signed with --key and the fleet's next sequence (kept in \
            {data-dir}/assignments-{fleet}.json); devices refuse one that names an older version than they run \
            unless --rollback is given. Every step is recorded in {data-dir}/audit.jsonl.
            """)

    @OptionGroup var cloud: CloudOptions

    @Argument(help: ArgumentHelp("The .tandem artifact; its manifest's version names it.", valueName: "model"))
    var model: String

    @OptionGroup var signing: SigningOptions

    @Option(help: ArgumentHelp("Where the model came from: initial, retrain, manual, ….", valueName: "source"))
    var source = "manual"

    @Option(
        help: ArgumentHelp("The version it derives from (default: the manifest's parentVersion).", valueName: "version")
    )
    var parent: String?

    @Option(
        help: ArgumentHelp(
            "A metric to record, name=value (repeatable; overrides the manifest's).", valueName: "name=value"))
    var metric: [String] = []

    @Flag(help: "Register even if the input spec or classes differ from the production model's.") var force = false

    @Flag(help: "Make it the production version: the baseline the next rollout compares with and returns to.")
    var production = false

    @Option(help: ArgumentHelp("Assign it at once to this device, no canary (repeatable).", valueName: "device"))
    var device: [String] = []

    @Flag(help: "Assign it at once to every device whose status is on the broker, no canary.") var allDevices = false

    @Flag(help: "The direct assignment deliberately returns devices to an older version (devices refuse it otherwise).")
    var rollback = false

    func run() async throws {
        var metrics: [String: Double] = [:]
        for entry in metric {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let value = Double(parts[1]), value.isFinite else {
                throw ValidationError("--metric: '\(entry)' is not name=number")
            }
            metrics[parts[0]] = value
        }
        // The broker settings and files are checked before anything is registered or signed.
        let clientConfiguration = try cloud.clientConfiguration()
        let registry = try cloud.registry()
        // Made first: it refuses a key the fleet revoked before anything is registered with it.
        let signer = try signing.signer(cloud)
        let record = try registry.register(
            artifactAt: URL(fileURLWithPath: model), signingKey: signer.key,
            lineage: ModelLineage(source: source, parentVersion: parent, metrics: metrics), force: force)
        let audit = cloud.auditLog()
        try audit.append(
            AuditRecord(
                actor: cloud.actorName, action: "register", version: record.version,
                reason: "source \(source), parent \(record.parentVersion ?? "none"), key \(record.keyID)"
                    + (force ? ", forced" : "")))
        Console.log("registered \(record.version) (\(record.size) bytes, sha256 \(record.sha256), key \(record.keyID))")

        let client = try await cloud.connect(clientConfiguration)
        var devices = device
        if allDevices {
            let monitor = try await FleetMonitor(client: client, fleet: cloud.fleet)
            await monitor.settle()
            devices = Array(Set(devices).union(monitor.statuses.keys)).sorted()
            monitor.stop()
        }
        let distributor = ModelDistributor(client: client, fleet: cloud.fleet, signer: signer)
        do {
            try await distributor.publish(
                version: record.version, from: registry, audit: audit, actor: cloud.actorName, assigningTo: devices,
                production: production, rollback: rollback)
        } catch {
            await client.disconnect()
            throw error
        }
        await client.disconnect()
        Console.log(
            "published \(record.version) on \(distributor.artifactTopic(version: record.version))"
                + (devices.isEmpty ? "" : "; assigned to \(devices.count) devices")
                + (production ? "; production" : ""))
    }
}
