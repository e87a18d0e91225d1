import TandemMQTT
import TandemTraining

extension CloudWorker {
    /// Everything a worker is made from: what `tandem-cloud serve`'s flags, configuration file and environment
    /// say, once read. ``CloudWorker/make(configuration:logger:)`` reads the files it names.
    public struct Configuration: Sendable {
        /// The broker, its credentials and TLS files; every MQTT client of the worker (escalations, labels,
        /// statuses, the trainer's) is made from it.
        public var broker: MQTTBrokerConfiguration
        /// The full model (.tandem), of ``precision``.
        public var modelPath: String
        /// The numerics the full model must have. int8: a model from `tandem compress --int8-only` whose manifest
        /// records its agreement with the float model and the gate it passed. Default float.
        public var precision = BatchClassifier.Precision.float
        /// Threads each batch is split across. Default: the CPUs, at most 8.
        public var modelThreads = BatchClassifier.defaultThreads
        /// Edge model artifacts whose windows this worker may receive (their standardization is undone).
        public var edgeModelPaths: [String] = []
        /// Public key files; when any are given, every model must be signed by one.
        public var trustedKeyPaths: [String] = []
        /// The directory of the SQLite sample store (tandem.sqlite), the model registry and the audit log.
        public var dataDirectory = "/var/lib/tandem-cloud"
        /// The sample store on PostgreSQL (`postgres://…`); empty: SQLite in ``dataDirectory``.
        public var storeURL = ""
        /// This worker's id, unique among workers (its MQTT sessions are named after it).
        public var workerID = "1"
        /// The most windows per model call.
        public var maximumBatch = 64
        /// The longest wait for a batch to fill, in seconds. Default 0: a batch is what arrived meanwhile.
        public var maximumWaitSeconds = 0.0
        /// Seconds between statistics lines (0: only the last one).
        public var statisticsIntervalSeconds = 30.0
        /// Each device's escalations (by the fleet and device of their topic); more are refused. nil: no limit.
        /// Default 20 a second, burst 6,000 (``EscalationServer/Configuration/deviceLimit``).
        public var escalationLimit: RateLimit? = RateLimit(perSecond: 20, burst: 6000)
        /// Each device's labels over MQTT; more are refused. nil: no limit. Default 20 a second, burst 6,000.
        public var labelLimit: RateLimit? = RateLimit(perSecond: 20, burst: 6000)
        /// Tries to answer a stored escalation before it is given up (terminal). Default 5.
        public var answerAttempts = 5
        /// Seconds between looks at the full-model registry for a newer full version to answer with. Default 2.
        public var fullModelCheckSeconds = 2.0
        /// The HTTP API's settings, or nil for none.
        public var http: CloudHTTPAPI.Configuration? = CloudHTTPAPI.Configuration()
        /// The retraining loop's settings, or nil when this worker does not train.
        public var trainer: Trainer?
        /// How long a graceful shutdown may take before the parts still running are cancelled, in seconds; nil:
        /// no limit. Default 30.
        public var shutdownGracePeriodSeconds: Double? = 30

        /// The defaults, with the broker and the full model.
        public init(broker: MQTTBrokerConfiguration, modelPath: String) {
            self.broker = broker
            self.modelPath = modelPath
        }
    }

    /// The retraining loop of a worker that trains (`tandem-cloud serve --trainer`).
    public struct Trainer: Sendable {
        /// The original training data (a directory from `tandem simulate`, UCR/UEA files, a .csv or .ts).
        public var trainingDataPath: String
        /// The edge model's spec (YAML: layers, distillation settings).
        public var edgeSpecPath: String
        /// The Ed25519 private key new models are signed with.
        public var signingKeyPath: String
        /// The loop's settings; its lease holder is the worker id, whatever this says.
        public var service = RetrainingService.Configuration()
        /// OpenBLAS threads for every float kernel of the worker (serving included), set when it is made, so the
        /// batching thread and the trainer each keep a core rather than contend for all of them; nil leaves
        /// OpenBLAS's own count. Default 1.
        public var blasThreads: Int? = 1

        /// The default loop over the given files.
        public init(trainingDataPath: String, edgeSpecPath: String, signingKeyPath: String) {
            self.trainingDataPath = trainingDataPath
            self.edgeSpecPath = edgeSpecPath
            self.signingKeyPath = signingKeyPath
        }
    }
}
