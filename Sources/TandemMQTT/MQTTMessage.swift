/// The delivery guarantee of a publish or a subscription.
public enum MQTTQoS: Int32, Sendable, Hashable, CaseIterable {
    /// Fire and forget.
    case atMostOnce = 0
    /// Delivered at least once; the sender keeps it until PUBACK.
    case atLeastOnce = 1
    /// Delivered exactly once, through the PUBREC/PUBREL/PUBCOMP handshake.
    case exactlyOnce = 2
}

/// One name/value pair of MQTT v5 user properties.
public struct MQTTUserProperty: Sendable, Hashable {
    /// The property's name.
    public var name: String
    /// The property's value.
    public var value: String

    /// Creates a user property.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The MQTT v5 properties Tandem reads and writes on a PUBLISH.
///
/// Under MQTT 3.1.1 these are not sent; the broker never sees them.
public struct MQTTPublishProperties: Sendable, Hashable {
    /// Name/value pairs, order kept, duplicates allowed.
    public var userProperties: [MQTTUserProperty]
    /// Where the receiver should send its answer (request/response).
    public var responseTopic: String?
    /// Opaque bytes that tie a response to its request.
    public var correlationData: [UInt8]?
    /// Seconds after which the broker discards the message if it is still undelivered.
    public var messageExpirySeconds: UInt32?
    /// The payload's MIME type.
    public var contentType: String?

    /// Creates a property set; every field is optional.
    public init(
        userProperties: [MQTTUserProperty] = [],
        responseTopic: String? = nil,
        correlationData: [UInt8]? = nil,
        messageExpirySeconds: UInt32? = nil,
        contentType: String? = nil
    ) {
        self.userProperties = userProperties
        self.responseTopic = responseTopic
        self.correlationData = correlationData
        self.messageExpirySeconds = messageExpirySeconds
        self.contentType = contentType
    }

    /// True when no property is set.
    public var isEmpty: Bool {
        userProperties.isEmpty && responseTopic == nil && correlationData == nil && messageExpirySeconds == nil
            && contentType == nil
    }

    /// The value of the first user property named `name`.
    public func userProperty(_ name: String) -> String? {
        userProperties.first { $0.name == name }?.value
    }
}

/// A message to publish, or one that arrived on a subscription.
public struct MQTTMessage: Sendable, Hashable {
    /// The topic name (no wildcards).
    public var topic: String
    /// The payload bytes.
    public var payload: [UInt8]
    /// The QoS it was (or is to be) published with.
    public var qos: MQTTQoS
    /// Whether the broker keeps it as the topic's retained message.
    public var retain: Bool
    /// MQTT v5 properties.
    public var properties: MQTTPublishProperties

    /// Creates a message.
    public init(
        topic: String,
        payload: [UInt8],
        qos: MQTTQoS = .atLeastOnce,
        retain: Bool = false,
        properties: MQTTPublishProperties = MQTTPublishProperties()
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
    }

    /// Creates a message whose payload is the UTF-8 bytes of `string`.
    public init(
        topic: String,
        string: String,
        qos: MQTTQoS = .atLeastOnce,
        retain: Bool = false,
        properties: MQTTPublishProperties = MQTTPublishProperties()
    ) {
        self.init(topic: topic, payload: Array(string.utf8), qos: qos, retain: retain, properties: properties)
    }

    /// The payload decoded as UTF-8 (invalid sequences replaced).
    public var payloadString: String {
        String(decoding: payload, as: UTF8.self)
    }
}

/// The broker's answer to a publish.
public struct MQTTPublishResult: Sendable, Hashable {
    /// The packet identifier libmosquitto used.
    public var messageID: Int32
    /// The reason code from PUBACK/PUBCOMP (0 for QoS 0 once written to the socket).
    public var reasonCode: Int32

    /// Whether the broker accepted the message (reason code below 128).
    public var isAccepted: Bool { reasonCode < 128 }
}
