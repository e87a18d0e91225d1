import ArgumentParser
import Foundation
import TandemCloud
import TandemCore
import TandemFleet

@main
struct TandemCloudCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tandem-cloud",
        abstract: "The cloud half of Tandem: answers the fleet's escalations with the full model.",
        subcommands: [Serve.self], defaultSubcommand: Serve.self)

    /// Expands `--config` and the `TANDEM_CLOUD_…` variables into flags, then parses as usual.
    static func main() async {
        let arguments: [String]
        do {
            arguments = try CloudConfigFile.expand(
                Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("tandem-cloud: \(error)\n".utf8))
            Glibc.exit(64)
        }
        await main(arguments)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one escalation worker until SIGTERM/SIGINT.",
        discussion: """
            Joins the shared subscription $share/tandem-cloud/tandem/v1/+/+/escalations, stores every escalation \
            once in the SQLite sample store in --data-dir (tandem.sqlite), answers in dynamic batches (up to \
            --max-batch windows, the first waiting at most --max-wait-ms) with the full float model and publishes \
            each verdict on the escalation's response topic with its correlation data. Start several workers \
            (distinct --worker-id) on one or more hosts: the broker spreads the escalations, the store keeps one \
            row per escalation id, and escalations a killed worker left unanswered are answered by another.

            With --trainer the worker also runs the retraining loop (docs/CLOUD.md): every --retrain-interval \
            seconds (30) it checks whether a round is due (--retrain-hard-examples 1000 new escalations or \
            --retrain-labels 100 new labels since the last round, or drift: a device of --fleet whose escalation \
            rate over the last --retrain-drift-window seconds, from its status messages, left its baseline on \
            its model, or --retrain-every seconds since the last round with any new data); one worker at a \
            time takes the lease, \
            fine-tunes the full model, compresses a new edge model, gates it against the production edge model \
            in the registry (--data-dir), and if it passes signs it with --signing-key, publishes it and rolls it \
            out to --fleet (--canary-percent 10, --soak-seconds 600), promoting or rolling back by itself.
            """)

    @Option(
        help: ArgumentHelp(
            "A YAML file of settings (cloud-config/cloud.yaml lists every key); TANDEM_CLOUD_SECTION_KEY variables "
                + "override it and flags override both.", valueName: "file"))
    var config: String?
    @Option(help: "Broker: mqtt://host[:port].") var brokerURL = "mqtt://localhost:1883"
    @Option(help: "Broker user name.") var username: String?
    @Option(help: "File whose first line is the broker password.") var passwordFile: String?
    @Option(help: "The full model (.tandem, float32).") var model: String
    @Option(help: "Edge model artifacts whose windows this worker may receive (their standardization is undone).")
    var edgeModel: [String] = []
    @Option(help: "Public key files; when given, every model must be signed by one.") var trustedKey: [String] = []
    @Option(help: "Directory of the SQLite sample store (tandem.sqlite), the model registry and the audit log.")
    var dataDir = "/var/lib/tandem-cloud"
    @Option(
        help: ArgumentHelp(
            "The sample store on PostgreSQL, for workers on several hosts: "
                + "postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]. "
                + "Empty: SQLite in --data-dir.", valueName: "url"))
    var storeURL = ""
    @Option(help: "This worker's id, unique among workers (its MQTT session).") var workerID = "1"
    @Option(help: "Most windows per model call.") var maxBatch = 64
    @Option(help: "Longest wait for a batch to fill, in milliseconds.") var maxWaitMs = 2.0
    @Option(help: "Seconds between statistics lines on standard error (0: none).") var statsInterval = 30.0
    @Option(help: "HTTP API address host:port (port 0: any free port); \"\" disables it.") var http = "127.0.0.1:8080"
    @Option(help: "File whose first line is the bearer token of mutating HTTP routes (without it they are refused).")
    var apiTokenFile: String?
    @OptionGroup(title: "Retraining") var trainer: TrainerOptions

    func run() async throws {
        let log: @Sendable (String) -> Void = {
            FileHandle.standardError.write(Data(("tandem-cloud: " + $0 + "\n").utf8))
        }
        guard let url = URLComponents(string: brokerURL), let host = url.host, !host.isEmpty else {
            throw ValidationError("--broker-url: '\(brokerURL)' is not mqtt://host[:port]")
        }
        guard maxBatch >= 1, maxWaitMs >= 0 else { throw ValidationError("--max-batch ≥ 1 and --max-wait-ms ≥ 0") }
        let keys = try trustedKey.map { try SigningKeyFile.readPublicKey(from: URL(fileURLWithPath: $0)) }
        func read(_ path: String) throws -> ModelArtifact {
            try ModelArtifact.read(
                from: URL(fileURLWithPath: path), trustedKeys: keys.isEmpty ? nil : keys,
                requireSignature: !keys.isEmpty)
        }
        let artifact = try read(model)
        let full = try FloatModel(artifact: artifact)
        try artifact.verifyGoldenOutputs(try full.logits(for: artifact.goldenInputs))
        var edgeInputs = [String: InputSpec]()
        for path in edgeModel {
            let edge = try read(path)
            edgeInputs[edge.manifest.version] = edge.manifest.input
        }
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let sqlite = storeURL.isEmpty ? try SampleStore(path: dataDir + "/tandem.sqlite") : nil
        let store: any EscalationStore = try sqlite ?? openEscalationStore(storeURL)
        // On PostgreSQL the trainer gets a connection of its own, so its long reads (every stored example)
        // never hold up the escalations' inserts, which share the worker's connection.
        let trainingStore: (any TrainingStore)? = trainer.trainer ? try sqlite ?? openEscalationStore(storeURL) : nil
        log(
            "sample store: \(sqlite.map { "SQLite \($0.path)" } ?? "PostgreSQL \(PostgresSampleStore.redacted(storeURL))")"
        )
        let registry = try ModelRegistry(directory: URL(fileURLWithPath: dataDir))
        var configuration = EscalationServer.Configuration()
        configuration.host = host
        configuration.port = url.port ?? 1883
        configuration.username = username
        if let passwordFile {
            configuration.password = try String(contentsOfFile: passwordFile, encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init)
        }
        configuration.workerID = workerID
        configuration.maximumBatch = maxBatch
        configuration.maximumWait = maxWaitMs / 1000
        let progress = RoundProgress()
        let rounds = trainingStore ?? (store as? any TrainingStore)
        let trains = trainer.trainer
        let worker = try CloudWorker(
            configuration: configuration, model: full, manifest: artifact.manifest, edgeInputs: edgeInputs,
            store: store, dataDirectory: URL(fileURLWithPath: dataDir), registry: registry,
            http: try httpConfiguration(),
            training: { try CloudHTTPAPI.TrainingView(trainer: trains, progress: progress, store: rounds) },
            statisticsInterval: statsInterval, log: log)
        let service = try trainer.makeService(
            full: artifact, workerID: workerID,
            broker: (configuration.host, configuration.port, configuration.username, configuration.password),
            store: trainingStore, registry: registry, catalog: worker.server.edgeInputs, progress: progress, log: log)
        try await worker.run(additionalServices: service.map { [RetrainingLifecycle($0)] } ?? [])
    }
}
