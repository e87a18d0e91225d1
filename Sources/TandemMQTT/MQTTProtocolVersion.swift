import CMosquitto

/// The MQTT protocol version a client speaks.
public enum MQTTProtocolVersion: Sendable, Hashable {
    /// MQTT 5.0: reason codes on every acknowledgement, properties, session expiry. The default.
    case v5
    /// MQTT 3.1.1, for brokers that lack v5. Properties are not sent and ACL denials are silent.
    case v311

    var libraryValue: Int32 {
        switch self {
        case .v5: MQTT_PROTOCOL_V5
        case .v311: MQTT_PROTOCOL_V311
        }
    }
}

/// The version of the linked libmosquitto, as `(major, minor, revision)`.
public func libmosquittoVersion() -> (major: Int, minor: Int, revision: Int) {
    var major: Int32 = 0
    var minor: Int32 = 0
    var revision: Int32 = 0
    mosquitto_lib_version(&major, &minor, &revision)
    return (Int(major), Int(minor), Int(revision))
}
