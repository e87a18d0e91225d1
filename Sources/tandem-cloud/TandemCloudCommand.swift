import ArgumentParser
import Foundation
import Logging
import TandemCloud
import TandemCommandLine
import TandemCore

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
        // Every logger, the libraries' included, writes to standard error.
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        await main(arguments)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one escalation worker until SIGTERM/SIGINT.",
        discussion: """
            Joins the shared subscription $share/tandem-cloud/tandem/v1/+/+/escalations, stores every escalation \
            once in the SQLite sample store in --data-dir (tandem.sqlite), answers in dynamic batches (what \
            arrived while the previous batch ran, up to --max-batch windows) with the full model — float32, or \
            int8 with --precision int8 and a model from `tandem compress --int8-only` — each batch split across \
            --model-threads threads, and publishes each verdict on the escalation's response topic with its correlation data. Start several workers \
            (distinct --worker-id) on one or more hosts: the broker spreads the escalations, the store keeps one \
            row per escalation id, and escalations a killed worker left unanswered are answered by another.

            With --trainer the worker also runs the retraining loop (docs/CLOUD.md): every --retrain-interval \
            seconds (30) it checks whether a round is due (--retrain-hard-examples 1000 new escalations other \
            than audits or --retrain-labels 100 new labels since the last round, or drift: a device of --fleet \
            whose escalation \
            rate over the last --retrain-drift-window seconds, from its status messages, left its baseline on \
            its model, or --retrain-every seconds since the last round with any new data; after a round drift \
            started is promoted, one follow-up at --retrain-follow-up-labels new labels); one worker at a \
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
    @OptionGroup(title: "Broker") var brokerOptions: BrokerOptions
    @Option(help: "The full model (.tandem): float32, or int8 with --precision int8.") var model: String
    @Option(
        help: ArgumentHelp(
            "The numerics --model must have: float, or int8 (a model from `tandem compress --int8-only`, which "
                + "records its agreement with the float model; one without that record is refused).",
            valueName: "float|int8"))
    var precision = "float"
    @Option(help: "Threads each batch is split across (default: the CPUs, at most 8; OpenBLAS then runs one each).")
    var modelThreads: Int?
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
    @Option(help: "Longest wait for a batch to fill, in milliseconds (0: take what has arrived).") var maxWaitMs = 0.0
    @Option(help: "Seconds between statistics lines on standard error (0: none).") var statsInterval = 30.0
    @Option(help: "Seconds a graceful shutdown may take before the parts still running are cancelled.")
    var shutdownGracePeriod = 30.0
    @Option(help: "Tries to answer a stored escalation before it is given up (terminal, never claimed again).")
    var answerAttempts = 5
    @Option(help: "Seconds between looks for a newer full model the trainer promoted (swapped in between batches).")
    var fullModelCheckInterval = 2.0
    @Option(help: "Each device's escalations per second (by its topic); more are refused. 0: no limit.")
    var deviceEscalationsPerSecond = 20.0
    @Option(help: "How many escalations a device may send at once after a quiet time (its outbox's backlog).")
    var deviceEscalationBurst = 6000.0
    @Option(help: "Each device's labels per second over MQTT (by its topic); more are refused. 0: no limit.")
    var deviceLabelsPerSecond = 20.0
    @Option(help: "How many labels a device may send at once after a quiet time.")
    var deviceLabelBurst = 6000.0
    @Option(help: "HTTP API address host:port (port 0: any free port); \"\" disables it.") var http = "127.0.0.1:8080"
    @Option(
        help: ArgumentHelp(
            "File whose first line is the bearer token of mutating HTTP routes (without it they are refused); "
                + "it must be mode 0600 or stricter."))
    var apiTokenFile: String?
    @Option(help: "Seconds an HTTP connection may stay idle before the server closes it.") var httpIdleTimeout = 30.0
    @Option(help: "HTTP connections served at once; more wait until one closes.") var httpMaxConnections = 64
    @OptionGroup(title: "Retraining") var trainer: TrainerOptions
    @Option(
        help: ArgumentHelp(
            "For supervisors and benchmarks: the process id of the parent that starts this worker. The worker exits "
                + "at once if that process is already gone, and gets SIGTERM (a graceful shutdown) when it dies, "
                + "even by SIGKILL (Linux parent-death signal).", valueName: "pid", visibility: .hidden))
    var exitWithParent: Int32?

    func validate() throws {
        guard maxBatch >= 1, maxWaitMs >= 0 else { throw ValidationError("--max-batch ≥ 1 and --max-wait-ms ≥ 0") }
        guard shutdownGracePeriod > 0, shutdownGracePeriod <= 86_400 else {
            throw ValidationError("--shutdown-grace-period must be within (0, 86400] seconds")
        }
        guard (1...1000).contains(answerAttempts) else { throw ValidationError("--answer-attempts must be 1…1000") }
        guard fullModelCheckInterval > 0, fullModelCheckInterval <= 86_400 else {
            throw ValidationError("--full-model-check-interval must be within (0, 86400] seconds")
        }
        guard httpIdleTimeout > 0, httpIdleTimeout <= 86_400, httpMaxConnections >= 1 else {
            throw ValidationError("--http-idle-timeout must be within (0, 86400] seconds, --http-max-connections ≥ 1")
        }
        _ = try brokerOptions.configuration()
    }

    func run() async throws {
        let logger = Logger(label: "tandem-cloud")
        if let exitWithParent { try ParentDeath.follow(exitWithParent) }
        // Loads OpenBLAS and chooses its core now, before the worker starts threads.
        logger.info("float kernels: \(Kernels.floatKernelsDescription)")
        let worker = try CloudWorker.make(configuration: try workerConfiguration(), logger: logger)
        try await worker.run()
    }
}
