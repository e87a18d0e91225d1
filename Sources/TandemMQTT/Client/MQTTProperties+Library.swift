import CMosquitto

#if canImport(Glibc)
    import Glibc
#endif

/// MQTT v5 property identifiers Tandem uses, as libmosquitto's `int` arguments.
enum PropertyIdentifier {
    static let payloadFormat = Int32(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR.rawValue)
    static let messageExpiry = Int32(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL.rawValue)
    static let contentType = Int32(MQTT_PROP_CONTENT_TYPE.rawValue)
    static let responseTopic = Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue)
    static let correlationData = Int32(MQTT_PROP_CORRELATION_DATA.rawValue)
    static let sessionExpiry = Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue)
    static let willDelay = Int32(MQTT_PROP_WILL_DELAY_INTERVAL.rawValue)
    static let userProperty = Int32(MQTT_PROP_USER_PROPERTY.rawValue)
}

/// A libmosquitto property list built from Swift values; the caller frees it with `free()` unless the
/// library took ownership.
struct LibraryPropertyList {
    var pointer: OpaquePointer?

    /// An empty list.
    init() {
        pointer = nil
    }

    /// Builds the list for a PUBLISH (or a will).
    init(publish properties: MQTTPublishProperties, willDelaySeconds: UInt32 = 0) throws {
        pointer = nil
        if let expiry = properties.messageExpirySeconds {
            try check(
                mosquitto_property_add_int32(&pointer, PropertyIdentifier.messageExpiry, expiry), "message expiry")
        }
        if let contentType = properties.contentType {
            try check(
                mosquitto_property_add_string(&pointer, PropertyIdentifier.contentType, contentType), "content type")
        }
        if let responseTopic = properties.responseTopic {
            try check(
                mosquitto_property_add_string(&pointer, PropertyIdentifier.responseTopic, responseTopic),
                "response topic \(responseTopic)"
            )
        }
        if let correlation = properties.correlationData {
            guard correlation.count <= Int(UInt16.max) else {
                free()
                throw MQTTError(.invalidArgument, "correlation data of \(correlation.count) bytes exceeds 65535")
            }
            let rc = correlation.withUnsafeBytes {
                mosquitto_property_add_binary(
                    &pointer, PropertyIdentifier.correlationData, $0.baseAddress, UInt16(correlation.count))
            }
            try check(rc, "correlation data")
        }
        for property in properties.userProperties {
            try check(
                mosquitto_property_add_string_pair(
                    &pointer, PropertyIdentifier.userProperty, property.name, property.value),
                "user property \(property.name)"
            )
        }
        if willDelaySeconds > 0 {
            try check(
                mosquitto_property_add_int32(&pointer, PropertyIdentifier.willDelay, willDelaySeconds), "will delay")
        }
    }

    /// Builds the list for a CONNECT.
    init(sessionExpirySeconds: UInt32) throws {
        pointer = nil
        if sessionExpirySeconds > 0 {
            try check(
                mosquitto_property_add_int32(&pointer, PropertyIdentifier.sessionExpiry, sessionExpirySeconds),
                "session expiry"
            )
        }
    }

    private mutating func check(_ rc: Int32, _ what: String) throws {
        if let error = MQTTError.library(rc, "adding MQTT property \(what)") {
            free()
            throw error
        }
    }

    /// Frees the list.
    mutating func free() {
        mosquitto_property_free_all(&pointer)
    }

    /// Reads the PUBLISH properties Tandem understands from a list libmosquitto owns.
    static func publishProperties(from list: OpaquePointer?) -> MQTTPublishProperties {
        var result = MQTTPublishProperties()
        var current = list
        while let property = current {
            let identifier = mosquitto_property_identifier(property)
            switch identifier {
            case PropertyIdentifier.userProperty:
                var name: UnsafeMutablePointer<CChar>?
                var value: UnsafeMutablePointer<CChar>?
                if mosquitto_property_read_string_pair(property, identifier, &name, &value, false) != nil,
                    let name, let value
                {
                    result.userProperties.append(MQTTUserProperty(String(cString: name), String(cString: value)))
                }
                Glibc.free(name)
                Glibc.free(value)
            case PropertyIdentifier.responseTopic, PropertyIdentifier.contentType:
                var value: UnsafeMutablePointer<CChar>?
                if mosquitto_property_read_string(property, identifier, &value, false) != nil, let value {
                    let string = String(cString: value)
                    if identifier == PropertyIdentifier.responseTopic {
                        result.responseTopic = string
                    } else {
                        result.contentType = string
                    }
                }
                Glibc.free(value)
            case PropertyIdentifier.correlationData:
                var value: UnsafeMutableRawPointer?
                var length: UInt16 = 0
                if mosquitto_property_read_binary(property, identifier, &value, &length, false) != nil {
                    if let value {
                        result.correlationData = Array(
                            UnsafeRawBufferPointer(start: value, count: Int(length)))
                    } else {
                        result.correlationData = []
                    }
                }
                Glibc.free(value)
            case PropertyIdentifier.messageExpiry:
                var value: UInt32 = 0
                if mosquitto_property_read_int32(property, identifier, &value, false) != nil {
                    result.messageExpirySeconds = value
                }
            default:
                break
            }
            current = mosquitto_property_next(property)
        }
        return result
    }
}
