import CMosquitto

/// The level of a line libmosquitto logged.
public enum MQTTLogLevel: Sendable, Hashable, Comparable {
    /// Packet-by-packet traces: "sending PUBLISH", "received PUBACK".
    case debug
    /// Routine events.
    case info
    /// Events worth a look.
    case notice
    /// Something went wrong but the client carries on.
    case warning
    /// A failure.
    case error

    init(libraryLevel: Int32) {
        switch libraryLevel {
        case MOSQ_LOG_ERR: self = .error
        case MOSQ_LOG_WARNING: self = .warning
        case MOSQ_LOG_NOTICE: self = .notice
        case MOSQ_LOG_INFO: self = .info
        default: self = .debug
        }
    }
}
