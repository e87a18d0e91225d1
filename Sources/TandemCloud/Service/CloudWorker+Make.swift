import Foundation
import Logging
import TandemCore
import TandemFleet
import TandemMQTT
import TandemTraining

extension CloudWorker {
    /// Builds a worker from its configuration: reads and verifies the models, opens the sample store and the
    /// registry, and makes the escalation server, the listeners, the HTTP API and (with ``Configuration/trainer``)
    /// the retraining loop. Nothing connects or listens before ``run(handlingSignals:)``.
    ///
    /// - Parameters:
    ///   - configuration: The settings.
    ///   - logger: Where the worker's lines go; each gets the `worker` metadata (the worker id), and lines about
    ///     one escalation, device or round add `escalation`, `device` or `round`.
    /// - Throws: ``CloudWorkerError`` for a setting out of range or a full model that is not float32;
    ///   `ModelLoadError` for a model that is unreadable, untrusted or fails its self-test; the store's,
    ///   registry's or training files' errors; ``MQTTBrokerConfigurationError`` if the broker's password or
    ///   TLS files cannot be read.
    public static func make(configuration: Configuration, logger: Logger) throws -> CloudWorker {
        guard configuration.maximumBatch >= 1, configuration.maximumWaitSeconds >= 0 else {
            throw CloudWorkerError(
                .invalidSetting,
                "the most windows per batch must be at least 1 (it is \(configuration.maximumBatch)) and the "
                    + "longest wait not negative (it is \(configuration.maximumWaitSeconds) s)")
        }
        if let grace = configuration.shutdownGracePeriodSeconds, !(grace > 0 && grace <= 86_400) {
            throw CloudWorkerError(
                .invalidSetting, "the shutdown grace period must be within (0, 86400] seconds (it is \(grace) s)")
        }
        for (name, limit) in [("escalations", configuration.escalationLimit), ("labels", configuration.labelLimit)] {
            if let limit, !limit.isValid {
                throw CloudWorkerError(
                    .invalidSetting,
                    "a device's \(name) limit needs a positive rate and a burst of at least 1 (it is \(limit))")
            }
        }
        guard (1...1000).contains(configuration.answerAttempts) else {
            throw CloudWorkerError(
                .invalidSetting, "the answer attempts must be within 1…1000 (it is \(configuration.answerAttempts))")
        }
        if let http = configuration.http {
            guard http.idleTimeoutSeconds > 0 && http.idleTimeoutSeconds <= 86_400, http.maximumConnections >= 1 else {
                throw CloudWorkerError(
                    .invalidSetting,
                    "the HTTP idle timeout must be within (0, 86400] seconds and the connection limit at least 1 (they "
                        + "are \(http.idleTimeoutSeconds) s and \(http.maximumConnections))")
            }
        }
        var logger = logger
        logger[metadataKey: "worker"] = .escaping(configuration.workerID)
        guard (1...64).contains(configuration.modelThreads) else {
            throw CloudWorkerError(
                .invalidSetting, "the model threads must be within 1…64 (it is \(configuration.modelThreads))")
        }
        // Before any thread runs a float kernel: OpenBLAS does not guard a change of its thread count. A batch split
        // across threads runs one OpenBLAS thread per part; a trainer sets its own count.
        let blasThreads =
            configuration.trainer.map { $0.blasThreads } ?? (configuration.modelThreads > 1 ? 1 : nil)
        if let threads = blasThreads {
            if Kernels.setFloatThreads(threads) {
                let why =
                    configuration.trainer == nil
                    ? "one per part of a batch split across \(configuration.modelThreads) threads"
                    : "as this worker trains (serving included)"
                logger.info("float kernels: \(threads) OpenBLAS thread(s), \(why)")
            } else {
                logger.warning("float kernels: cannot set OpenBLAS's thread count: \(Kernels.floatKernelsDescription)")
            }
        }
        let full = try VerifiedModel.load(
            path: configuration.modelPath, trustedKeyPaths: configuration.trustedKeyPaths)
        try Self.checkPrecision(
            full, expected: configuration.precision, path: configuration.modelPath,
            trains: configuration.trainer != nil)
        let model = full.engine
        var edgeInputs = [String: InputSpec]()
        for path in configuration.edgeModelPaths {
            let edge = try VerifiedModel.load(path: path, trustedKeyPaths: configuration.trustedKeyPaths)
            edgeInputs[edge.manifest.version] = edge.manifest.input
        }

        let dataDirectory = configuration.dataDirectory
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let storeURL = configuration.storeURL
        let sqlite = storeURL.isEmpty ? try SampleStore(path: dataDirectory + "/tandem.sqlite") : nil
        let store: any EscalationStore = try sqlite ?? openEscalationStore(storeURL)
        // On PostgreSQL the trainer gets a connection of its own, so its long reads (every stored example)
        // never hold up the escalations' inserts, which share the worker's connection.
        let trainingStore: (any TrainingStore)? =
            configuration.trainer == nil ? nil : try sqlite ?? openEscalationStore(storeURL)
        logger.info(
            "sample store: \(sqlite.map { "SQLite \($0.path)" } ?? "PostgreSQL \(PostgresSampleStore.redacted(storeURL))")"
        )
        let registry = try ModelRegistry(directory: URL(fileURLWithPath: dataDirectory))
        // The full models the trainer fine-tuned and promoted; every worker of this data directory follows its
        // production version.
        let fullModels = try ModelRegistry(directory: ModelRegistry.fullModelsDirectory(in: dataDirectory))

        var serverConfiguration = EscalationServer.Configuration(broker: configuration.broker)
        serverConfiguration.workerID = configuration.workerID
        serverConfiguration.maximumBatch = configuration.maximumBatch
        serverConfiguration.maximumWait = configuration.maximumWaitSeconds
        serverConfiguration.deviceLimit = configuration.escalationLimit
        serverConfiguration.answerAttempts = configuration.answerAttempts
        serverConfiguration.fullModelCheckSeconds = configuration.fullModelCheckSeconds
        serverConfiguration.modelThreads = configuration.modelThreads
        serverConfiguration.journalDirectory = URL(fileURLWithPath: dataDirectory).appendingPathComponent("journal")
            .appendingPathComponent(journalName(configuration.workerID))
        let metrics = CloudMetrics()
        let manifest = full.manifest
        let server = try EscalationServer(
            configuration: serverConfiguration, model: model, manifest: manifest, edgeInputs: edgeInputs,
            registry: registry, fullModels: fullModels, trustedKeyPaths: configuration.trustedKeyPaths, store: store,
            metrics: metrics, logger: logger)
        let labels = LabelIntake(
            classNames: manifest.classNames, store: store, metrics: metrics, deviceLimit: configuration.labelLimit,
            logger: logger)
        let listener = try FleetListener(configuration: serverConfiguration, labels: labels, logger: logger)

        let progress = RoundProgress()
        let trainer = try configuration.trainer.map { settings in
            try makeTrainer(
                settings, full: full.artifact, server: serverConfiguration,
                store: trainingStore ?? (store as? any TrainingStore), registry: registry, catalog: server.edgeInputs,
                progress: progress, logger: logger)
        }
        var api: CloudHTTPAPI?
        if let http = configuration.http {
            let rounds = trainingStore ?? (store as? any TrainingStore)
            let trains = trainer != nil
            let workerID = configuration.workerID
            var controller: (@Sendable () -> RolloutController?)?
            if let trainer { controller = { trainer.rolloutController } }
            api = CloudHTTPAPI(
                configuration: http, registry: registry, store: store, labels: labels, metrics: metrics,
                devices: { listener.devices },
                health: {
                    [
                        "worker": workerID, "model": server.serving.current.manifest.version,
                        "broker": server.client.connectionState.isConnected && listener.isConnected
                            ? "connected" : "disconnected",
                    ]
                },
                training: { try CloudHTTPAPI.TrainingView(trainer: trains, progress: progress, store: rounds) },
                rolloutController: controller, logger: logger)
        }
        return CloudWorker(
            server: server, listener: listener, api: api, trainer: trainer, metrics: metrics,
            statisticsInterval: configuration.statisticsIntervalSeconds,
            shutdownGracePeriod: configuration.shutdownGracePeriodSeconds.map { .milliseconds(Int($0 * 1000)) },
            logger: logger)
    }

    /// The name of a worker's journal directory: its id, or — when it holds characters outside `A–Z a–z 0–9 . _ -`
    /// or is `.`, `..` or empty — those as `_` followed by a hash of the whole id, so two ids never share a journal.
    static func journalName(_ workerID: String) -> String {
        let name = String(
            workerID.unicodeScalars.map { c -> Character in
                c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || ".-_".unicodeScalars.contains(c))
                    ? Character(c) : "_"
            })
        guard name != workerID || name.isEmpty || name == "." || name == ".." else { return name }
        // FNV-1a, 64 bits.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in workerID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return name + "-" + String(hash, radix: 16)
    }

    /// Checks that the full model has the numerics the worker was told to serve. An int8 full model must come from
    /// `tandem compress --int8-only`: its manifest records its top-1 agreement with the float model it was quantized
    /// from, the accuracy of both, and the gate it passed (``FullModelQuantization``); one whose record is missing or
    /// below its gate is refused. A worker that trains needs the float model, which its rounds fine-tune.
    ///
    /// - Throws: ``CloudWorkerError`` (`unusableModel`) saying what the model is and what was expected.
    static func checkPrecision(_ full: VerifiedModel, expected: BatchClassifier.Precision, path: String, trains: Bool)
        throws
    {
        switch (full.engine, expected) {
        case (.float, .float):
            return
        case (.int8, .float):
            throw CloudWorkerError(
                .unusableModel, "\(path) is an int8 model; serve it with --precision int8 (models.precision: int8)")
        case (.float, .int8):
            throw CloudWorkerError(
                .unusableModel,
                "\(path) is a float32 model, --precision int8 needs its int8 form: tandem compress --int8-only "
                    + "--teacher \(path) --data DATA --out FULL-INT8.tandem")
        case (.int8, .int8):
            guard !trains else {
                throw CloudWorkerError(
                    .unusableModel,
                    "a worker that trains fine-tunes the float full model; serve the int8 model from workers without "
                        + "--trainer")
            }
            let metrics = full.manifest.metrics
            guard let agreement = metrics["int8_agreement_with_float"],
                let minimum = metrics["int8_gate_minimum_agreement"], let int8 = metrics["test_accuracy"],
                let float = metrics["float_test_accuracy"], let drop = metrics["int8_gate_maximum_accuracy_drop"]
            else {
                throw CloudWorkerError(
                    .unusableModel,
                    "\(path) does not record its agreement with the float model it was quantized from; make it with "
                        + "tandem compress --int8-only")
            }
            guard agreement >= minimum, float - int8 <= drop,
                minimum >= FullModelQuantization.Gate.standard.minimumAgreement,
                drop <= FullModelQuantization.Gate.standard.maximumAccuracyDrop
            else {
                throw CloudWorkerError(
                    .unusableModel,
                    "\(path) agrees with its float model on \(agreement * 100) % of the test windows (gate \(minimum * 100) "
                        + "%) and scores \((float - int8) * 100) pp below it (gate \(drop * 100) pp); a full model in int8 "
                        + "must agree on at least \(FullModelQuantization.Gate.standard.minimumAgreement * 100) % and lose "
                        + "at most \(FullModelQuantization.Gate.standard.maximumAccuracyDrop * 100) pp")
            }
        }
    }

    /// The retraining loop: loads the training data, the edge spec and the signing key, and makes its MQTT
    /// client (`tandem-cloud-{worker}-trainer`).
    private static func makeTrainer(
        _ settings: Trainer, full: ModelArtifact, server: EscalationServer.Configuration,
        store: (any TrainingStore)?, registry: ModelRegistry, catalog: EdgeInputCatalog, progress: RoundProgress,
        logger: Logger
    ) throws -> RetrainingService {
        guard let store else {
            throw CloudWorkerError(.invalidSetting, "the trainer needs a sample store that keeps training rounds")
        }
        let input = full.manifest.input
        let data = try DataSource.load(path: settings.trainingDataPath, window: input.window, hop: input.hop)
        let spec = try ModelSpecFile.load(contentsOf: URL(fileURLWithPath: settings.edgeSpecPath))
        let key = try SigningKeyFile.readPrivateKey(from: URL(fileURLWithPath: settings.signingKeyPath))
        var configuration = settings.service
        configuration.holder = server.workerID
        let client = try MQTTClient(configuration: server.clientConfiguration(suffix: "-trainer", persistent: false))
        logger.info("trainer: \(data.description); edge spec \(spec.name)")
        return try RetrainingService(
            configuration: configuration, full: full, data: data, edgeSpec: spec, signingKey: key, store: store,
            registry: registry, client: client, catalog: catalog, progress: progress, logger: logger)
    }
}

/// A worker that cannot be made from its configuration.
public struct CloudWorkerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of problem.
    public enum Code: String, Sendable {
        /// A number out of its range.
        case invalidSetting
        /// The full model is not one the escalation server can run.
        case unusableModel
    }

    /// The kind of problem.
    public var code: Code
    /// What is wrong, naming the setting or file.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
