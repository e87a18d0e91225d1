import Synchronization
import TandemProtocol

/// Where escalated windows go: the seam for the MQTT link.
///
/// The agent builds an ``EscalationPayload`` for every window the policy escalates and hands it here.
/// The MQTT implementation (with TandemMQTT) journals it in the durable outbox, publishes it with QoS 1
/// and a correlation id, and delivers verdicts through ``verdicts()``; the agent then holds each
/// escalated window's record in a ``VerdictTracker`` until its verdict or the deadline. A transport
/// without verdicts (``OfflineEscalations``) makes the agent emit escalated windows `provisional` at once.
public protocol EscalationTransport: Sendable {
    /// Accepts one escalation for delivery.
    func submit(_ payload: EscalationPayload, encoded: [UInt8])
    /// The verdicts as they arrive, or nil if this transport never delivers any. Called once per run.
    func verdicts() -> AsyncStream<Verdict>?
}

extension EscalationTransport {
    /// No verdicts.
    public func verdicts() -> AsyncStream<Verdict>? { nil }
}

/// Counts escalations instead of sending them (no broker configured or available yet).
public final class OfflineEscalations: EscalationTransport {
    private let state = Mutex<(count: Int, bytes: Int)>((0, 0))

    /// Creates a counter.
    public init() {}

    /// Counts the escalation and its encoded size.
    public func submit(_ payload: EscalationPayload, encoded: [UInt8]) {
        state.withLock {
            $0.count += 1
            $0.bytes += encoded.count
        }
    }

    /// Escalations submitted so far.
    public var count: Int { state.withLock { $0.count } }
    /// Their encoded bytes in total.
    public var bytes: Int { state.withLock { $0.bytes } }
}
