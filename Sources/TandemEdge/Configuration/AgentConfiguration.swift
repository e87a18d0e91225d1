/// Everything `tandem-edge` is told: from `agent.yaml`, then `TANDEM_…` environment variables, then flags.
///
/// Every value has a default (see edge-config/agent.yaml, which lists and explains each key).
/// ``validate()`` checks the whole configuration and names every bad key.
public struct AgentConfiguration: Sendable, Equatable {
    /// Who this agent is.
    public struct Device: Sendable, Equatable {
        /// The defaults.
        public init() {}

        /// Device id, unique in the fleet; topics and escalations carry it. Empty: the host name.
        public var id = ""
        /// Fleet name, the second level of every topic.
        public var fleet = "default"
    }

    /// How to reach the MQTT broker (used once TandemMQTT is wired in).
    public struct Broker: Sendable, Equatable {
        /// The defaults.
        public init() {}

        /// `mqtt://host:port` or `mqtts://host:port`.
        public var url = "mqtt://localhost:1883"
        /// User name; empty: none.
        public var username = ""
        /// File holding the password (first line); empty: none.
        public var passwordFile = ""
        /// CA certificate file for TLS; empty: the system's.
        public var caFile = ""
        /// Client certificate for mutual TLS; empty: none.
        public var certFile = ""
        /// Client key for mutual TLS; empty: none.
        public var keyFile = ""
        /// Keep-alive interval in seconds.
        public var keepAliveSeconds = 30
        /// The longest wait between reconnection attempts (the wait doubles from 0.1 s, with jitter).
        public var reconnectMaxSeconds = 10.0
    }

    /// The model the agent runs.
    public struct Model: Sendable, Equatable {
        /// The defaults.
        public init() {}

        /// The `.tandem` artifact.
        public var path = "/var/lib/tandem/model.tandem"
        /// Public key files whose signatures are accepted; empty: signatures are not checked.
        public var trustedKeys: [String] = []
        /// Whether an unsigned model is refused (always true when trusted keys are configured).
        public var requireSignature = false
    }

    /// Where a stream's lines come from.
    public enum SourceKind: String, Sendable, Equatable, CaseIterable {
        /// Standard input (at most one stream).
        case stdin
        /// A file followed like `tail -F`.
        case file
        /// UDP datagrams on a port.
        case udp
        /// A topic on an MQTT broker (often one a gateway runs on the box).
        case mqtt
    }

    /// A stream's source.
    public struct Source: Sendable, Equatable {
        /// The defaults.
        public init() {}

        /// The kind of source.
        public var kind = SourceKind.stdin
        /// `file`: the followed path.
        public var path = ""
        /// `file`: start at the end of an existing file (like `tail -F`) instead of its start.
        public var startAtEnd = true
        /// `file`: poll interval in milliseconds.
        public var pollIntervalMs = 250
        /// `udp`: the IPv4 address to bind; loopback unless the datagrams come from another host (then name the
        /// interface's address, or `0.0.0.0` for all, on a network you trust: senders are not authenticated).
        public var host = "127.0.0.1"
        /// `udp`: the port to bind.
        public var port = 0
        /// `udp`: the sender addresses or blocks (`10.0.0.7`, `192.168.1.0/24`) whose datagrams are taken; empty:
        /// any sender that can reach `host`. Others are dropped and counted as `senderNotAllowed`.
        public var allowFrom: [String] = []
        /// `mqtt`: the topic to subscribe to.
        public var topic = ""
        /// `mqtt`: the broker holding the topic.
        public var url = "mqtt://localhost:1883"
        /// Lines longer than this many bytes are rejected as `lineTooLong`.
        public var maxLineBytes = 4096
    }

    /// One named sensor stream.
    public struct Stream: Sendable, Equatable {
        /// Stream name, unique in the agent; records and escalations carry it.
        public var name = ""
        /// Channels per sample; must equal the model's.
        public var channels = 0
        /// Where its lines come from.
        public var source = Source()
        /// A time step longer than this many expected steps is a gap that restarts windowing.
        public var gapFactor = 1.5

        /// Creates a stream.
        public init(name: String = "", channels: Int = 0, source: Source = Source(), gapFactor: Double = 1.5) {
            self.name = name
            self.channels = channels
            self.source = source
            self.gapFactor = gapFactor
        }
    }

    /// Which windows are escalated.
    public struct Policy: Sendable, Equatable {
        /// The defaults.
        public init() {}

        /// The confidence measure.
        public var measure = ConfidenceMeasure.maxProbability
        /// Fixed threshold (and the starting threshold in budget mode when the model has no calibration table).
        public var threshold = 0.5
        /// Target share of windows to escalate; nil: fixed-threshold mode.
        public var budget: Double?
        /// Token-bucket rate: escalations per second at most; 0 disables escalation.
        public var maxEscalationsPerSecond = 5.0
        /// Token-bucket burst; nil: one second's worth.
        public var burst: Double?
        /// Budget controller gain (threshold change per window per unit of rate error).
        public var gain = 0.002
        /// Share of confident, familiar windows escalated for an audit (reason `audit`): an unbiased sample of
        /// what the edge answers alone, for the cloud's accuracy estimate. Default 1 %.
        public var auditShare = 0.01
        /// Whether windows the model calls novel are escalated even when confident (reason `novel`; needs an
        /// int8 model with novelty statistics). Default false: it costs up to the statistics' false-alarm rate
        /// (4 %) more escalations and catches some unseen conditions, not all (docs/EDGE.md).
        public var escalateNovel = false
        /// Classes (with probabilities) an escalation carries.
        public var topK = 3
    }

    /// One output for prediction records.
    public struct Sink: Sendable, Equatable {
        /// The kind of sink.
        public enum Kind: String, Sendable, Equatable, CaseIterable {
            /// JSON lines on standard output.
            case stdout
            /// JSON lines appended to a file.
            case file
            /// `…/predictions` on the broker (QoS 0).
            case mqtt
        }

        /// The kind of sink.
        public var kind = Kind.stdout
        /// `file`: the path.
        public var path = ""
        /// Buffered records are written at least this often (milliseconds).
        public var flushIntervalMs = 1000

        /// Creates a sink.
        public init(kind: Kind = .stdout, path: String = "", flushIntervalMs: Int = 1000) {
            self.kind = kind
            self.path = path
            self.flushIntervalMs = flushIntervalMs
        }
    }

    /// The disk journal escalations wait in until the broker acknowledges them.
    public struct Outbox: Sendable, Equatable {
        /// The defaults.
        public init() {}

        /// Its directory.
        public var directory = "/var/lib/tandem/outbox"
        /// The most bytes it may hold.
        public var maxBytes = 64 * 1024 * 1024
    }

    /// Rate limits for messages about bad input.
    public struct Log: Sendable, Equatable {
        /// The defaults.
        public init() {}

        /// Messages per interval, after which they are counted and summarized.
        public var maxMessages = 10
        /// The interval in seconds.
        public var intervalSeconds = 10.0
    }

    /// Who the agent is.
    public var device = Device()
    /// The broker.
    public var broker = Broker()
    /// The model.
    public var model = Model()
    /// The streams; at least one.
    public var streams: [Stream] = []
    /// The escalation policy.
    public var policy = Policy()
    /// How long the edge waits for the cloud's verdict before emitting its own as provisional.
    public var verdictDeadlineMs = 500
    /// Where prediction records go.
    public var sinks: [Sink] = [Sink()]
    /// Seconds between status messages.
    public var statusIntervalSeconds = 30.0
    /// The escalation outbox.
    public var outbox = Outbox()
    /// `host:port` of the Prometheus text endpoint; empty: off.
    public var metricsListen = ""
    /// Rate limits for bad-input messages.
    public var log = Log()

    /// The default configuration (no streams: one must be configured).
    public init() {}
}
