import CMosquitto

/// An error raised by TandemMQTT, with a code to branch on and a message that says what and where.
public struct MQTTError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a closed set callers can switch over.
    public enum Code: String, Sendable, Hashable {
        /// The broker refused the username or password (CONNACK 134, or 4 in MQTT 3.1.1).
        case badCredentials
        /// The broker refused the client, a publish or a subscription by its access rules (reason code 135, or 5).
        case notAuthorized
        /// The TLS handshake failed: unknown CA, hostname mismatch, bad client certificate.
        case tlsFailure
        /// The broker could not be reached (TCP refused, DNS, timeout).
        case unreachable
        /// The broker refused the connection for another reason, named in the message.
        case connectionRefused
        /// The connection was lost or the client is not connected.
        case notConnected
        /// The client was shut down before the operation completed.
        case shutDown
        /// The broker answered an operation with a failure reason code (128 or above).
        case rejected
        /// An argument was invalid (topic, QoS, payload size, property).
        case invalidArgument
        /// A journal file could not be read or written.
        case journalIO
        /// The outbox is full and its overflow policy refuses new messages.
        case outboxFull
        /// Any other libmosquitto failure.
        case library
    }

    /// The kind of failure.
    public var code: Code
    /// A human-readable account naming the broker, topic or file involved.
    public var message: String
    /// The MQTT reason code the broker sent, when there was one.
    public var reasonCode: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, reasonCode: Int? = nil) {
        self.code = code
        self.message = message
        self.reasonCode = reasonCode
    }

    public var description: String {
        if let reasonCode {
            return "\(code.rawValue): \(message) (reason code \(reasonCode))"
        }
        return "\(code.rawValue): \(message)"
    }

    /// Maps a libmosquitto return value to an error, or `nil` for success.
    static func library(_ rc: Int32, _ context: @autoclosure () -> String) -> MQTTError? {
        guard rc != MOSQ_ERR_SUCCESS.rawValue else { return nil }
        let text = String(cString: mosquitto_strerror(rc))
        let code: Code
        switch mosq_err_t(rawValue: rc) {
        case MOSQ_ERR_TLS, MOSQ_ERR_TLS_HANDSHAKE, MOSQ_ERR_OCSP: code = .tlsFailure
        case MOSQ_ERR_NO_CONN, MOSQ_ERR_CONN_LOST, MOSQ_ERR_KEEPALIVE: code = .notConnected
        case MOSQ_ERR_ERRNO, MOSQ_ERR_EAI, MOSQ_ERR_LOOKUP, MOSQ_ERR_TIMEOUT: code = .unreachable
        case MOSQ_ERR_INVAL, MOSQ_ERR_PAYLOAD_SIZE, MOSQ_ERR_MALFORMED_UTF8, MOSQ_ERR_QOS_NOT_SUPPORTED,
            MOSQ_ERR_OVERSIZE_PACKET, MOSQ_ERR_DUPLICATE_PROPERTY, MOSQ_ERR_NOT_SUPPORTED:
            code = .invalidArgument
        case MOSQ_ERR_AUTH: code = .badCredentials
        case MOSQ_ERR_ACL_DENIED: code = .notAuthorized
        case MOSQ_ERR_CONN_REFUSED: code = .connectionRefused
        default: code = .library
        }
        return MQTTError(code, "\(context()): \(text)")
    }

    /// Maps a CONNACK refusal to an error that says which refusal it was.
    static func connack(_ reason: Int32, version: MQTTProtocolVersion, broker: String) -> MQTTError {
        let text: String
        if version == .v5 {
            text = String(cString: mosquitto_reason_string(reason))
        } else {
            text = String(cString: mosquitto_connack_string(reason))
        }
        let code: Code
        var hint = ""
        switch (version, reason) {
        case (.v5, 134), (.v311, 4): code = .badCredentials
        case (.v5, 135), (.v311, 5):
            // mosquitto answers a wrong password with "not authorized", so say both possibilities.
            code = .notAuthorized
            hint = " (wrong username or password, or this client is not allowed to connect)"
        default: code = .connectionRefused
        }
        return MQTTError(code, "broker \(broker) refused the connection: \(text)\(hint)", reasonCode: Int(reason))
    }
}
