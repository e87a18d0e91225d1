/// Everything an ``MQTTClient`` needs to reach and keep a broker connection.
public struct MQTTClientConfiguration: Sendable {
    /// TLS settings. Hostname verification is always on.
    public struct TLS: Sendable, Hashable {
        /// PEM file with the CA certificates that may sign the broker's certificate.
        public var caFile: String
        /// PEM client certificate, for brokers that require one.
        public var certificateFile: String?
        /// PEM private key for `certificateFile`.
        public var keyFile: String?

        /// Creates TLS settings.
        public init(caFile: String, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// The message the broker publishes for this client when it drops without a clean DISCONNECT.
    public struct LastWill: Sendable, Hashable {
        /// The will message.
        public var message: MQTTMessage
        /// Seconds the broker waits before publishing it (MQTT v5 only).
        public var delaySeconds: UInt32

        /// Creates a last will.
        public init(_ message: MQTTMessage, delaySeconds: UInt32 = 0) {
            self.message = message
            self.delaySeconds = delaySeconds
        }
    }

    /// Reconnect timing: exponential backoff with full jitter.
    ///
    /// The n-th wait is a uniform random duration in `[0, min(max, initial · 2ⁿ)]`, so a fleet that lost the
    /// same broker does not come back in lock-step.
    public struct Reconnect: Sendable, Hashable {
        /// The first backoff ceiling, in milliseconds.
        public var initialDelayMilliseconds: Int
        /// The largest backoff ceiling, in milliseconds.
        public var maximumDelayMilliseconds: Int

        /// Creates reconnect timing.
        public init(initialDelayMilliseconds: Int = 100, maximumDelayMilliseconds: Int = 30_000) {
            self.initialDelayMilliseconds = max(1, initialDelayMilliseconds)
            self.maximumDelayMilliseconds = max(self.initialDelayMilliseconds, maximumDelayMilliseconds)
        }

        /// The upper bound of the wait before reconnect attempt `attempt` (0-based).
        func ceilingMilliseconds(attempt: Int) -> Int {
            let shift = min(attempt, 30)
            let grown = initialDelayMilliseconds.multipliedReportingOverflow(by: 1 << shift)
            return grown.overflow ? maximumDelayMilliseconds : min(maximumDelayMilliseconds, grown.partialValue)
        }

        /// A jittered wait before reconnect attempt `attempt`.
        func delayMilliseconds<G: RandomNumberGenerator>(attempt: Int, using generator: inout G) -> Int {
            Int.random(in: 0...ceilingMilliseconds(attempt: attempt), using: &generator)
        }
    }

    /// Broker host name or address. With TLS it must match the broker certificate.
    public var host: String
    /// Broker port.
    public var port: Int
    /// The client identifier; must be unique per broker.
    public var clientID: String
    /// MQTT version; v5 unless the broker lacks it.
    public var protocolVersion: MQTTProtocolVersion
    /// Username, if the broker requires one.
    public var username: String?
    /// Password for `username`.
    public var password: String?
    /// TLS; `nil` for plain TCP.
    public var tls: TLS?
    /// Keepalive interval in seconds.
    public var keepAliveSeconds: Int
    /// Whether to start a new session (discarding one the broker kept).
    public var cleanStart: Bool
    /// How long the broker keeps the session after a disconnect, in seconds (MQTT v5; 0 = ends with the
    /// connection). With 3.1.1 a session is kept forever when `cleanStart` is false.
    public var sessionExpirySeconds: UInt32
    /// The last will, if any.
    public var lastWill: LastWill?
    /// Reconnect timing after the first successful connection.
    public var reconnect: Reconnect
    /// Largest number of unacknowledged QoS 1/2 publishes on the wire; the broker's receive maximum wins
    /// when it is smaller. More are queued inside the client.
    public var maximumInflightMessages: Int
    /// MQTT v5 receive maximum: the most incoming QoS 1/2 messages the broker may have unacknowledged (QoS 1)
    /// or unreleased (QoS 2) toward this client, 1...65535.
    ///
    /// The default, 65535, leaves the broker's own window (`max_inflight_messages`) as the only limit in
    /// practice. A smaller value is enforced strictly by libmosquitto: one message beyond it ends the
    /// connection with a protocol error, losing the QoS 2 messages in flight unless the session is kept.
    /// mosquitto 2.0.11 (Debian 12's) miscounts its in-flight messages when an acknowledgement arrives and
    /// then sends more than the client allowed (reported as eclipse-mosquitto/mosquitto#2301), so with a small
    /// value a QoS 2 burst drops the connection. What the application has not consumed yet is bounded by each
    /// subscription's buffer, not by this window.
    public var receiveMaximum: Int
    /// Whether to disable Nagle's algorithm (lower latency, more packets).
    public var tcpNoDelay: Bool
    /// Receives libmosquitto's own log lines (every packet sent and received at `.debug`); `nil` for none.
    ///
    /// - Important: It runs on whichever thread logged, often the network thread; it must not block.
    public var libraryLog: (@Sendable (MQTTLogLevel, String) -> Void)?

    /// Creates a configuration with Tandem's defaults: MQTT v5, plain TCP, keepalive 30 s, clean start.
    public init(
        host: String = "127.0.0.1",
        port: Int = 1883,
        clientID: String,
        protocolVersion: MQTTProtocolVersion = .v5,
        username: String? = nil,
        password: String? = nil,
        tls: TLS? = nil,
        keepAliveSeconds: Int = 30,
        cleanStart: Bool = true,
        sessionExpirySeconds: UInt32 = 0,
        lastWill: LastWill? = nil,
        reconnect: Reconnect = Reconnect(),
        maximumInflightMessages: Int = 100,
        receiveMaximum: Int = 65_535,
        tcpNoDelay: Bool = false,
        libraryLog: (@Sendable (MQTTLogLevel, String) -> Void)? = nil
    ) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.protocolVersion = protocolVersion
        self.username = username
        self.password = password
        self.tls = tls
        self.keepAliveSeconds = keepAliveSeconds
        self.cleanStart = cleanStart
        self.sessionExpirySeconds = sessionExpirySeconds
        self.lastWill = lastWill
        self.reconnect = reconnect
        self.maximumInflightMessages = maximumInflightMessages
        self.receiveMaximum = receiveMaximum
        self.tcpNoDelay = tcpNoDelay
        self.libraryLog = libraryLog
    }

    /// `host:port`, for messages.
    var brokerDescription: String { "\(host):\(port)" }
}
