/// The MQTT topics of one device (contract v1, docs/PROTOCOL.md).
///
/// Every topic a device uses sits below `tandem/v1/{fleet}/{device}`, except the fleet's retained artifacts on
/// `tandem/v1/{fleet}/models/{version}` and its key revocation list on `tandem/v1/{fleet}/keys/revocations`; the broker's ACL (``permissions``) ties each of them to the device's
/// credentials, which is why the cloud takes a device's identity from the topic and never from a payload.
public struct DeviceTopics: Sendable, Equatable {
    /// The fleet (second topic level).
    public let fleet: String
    /// The device (third level).
    public let device: String

    /// Topics of `device` in `fleet`.
    public init(fleet: String, device: String) {
        self.fleet = fleet
        self.device = device
    }

    /// The device's broker user and the one client id it connects with: `{fleet}/{device}`. Neither name may
    /// hold a `/`, so no two devices share it and no device's client id can be a cloud worker's.
    public var brokerUser: String { "\(fleet)/\(device)" }

    /// The topic of `kind` below this device's level.
    public func topic(_ kind: DeviceTopicKind) -> String {
        "\(ProtocolTopics.prefix)/\(fleet)/\(device)/\(kind.rawValue)"
    }

    /// Edge → cloud: escalated windows (QoS 1, response topic + correlation data).
    public var escalations: String { topic(.escalations) }
    /// Cloud → edge: verdicts.
    public var verdicts: String { topic(.verdicts) }
    /// Edge → all: retained status; the last will says offline.
    public var status: String { topic(.status) }
    /// Edge → consumers: prediction records.
    public var predictions: String { topic(.predictions) }
    /// Operator → cloud: ground-truth labels for this device's escalations.
    public var labels: String { topic(.labels) }
    /// Cloud → edge: the retained model assignment.
    public var modelAssignment: String { topic(.model) }
    /// Cloud → edge: the retained, signed agent policy.
    public var policy: String { topic(.policy) }
    /// Cloud → edge: the retained artifact of `version` (small models travel on the broker).
    public func artifact(version: String) -> String { ProtocolTopics.artifact(fleet: fleet, version: version) }

    /// Cloud → edge: the fleet's retained, signed key revocation list.
    public var revocations: String { ProtocolTopics.revocations(fleet: fleet) }

    /// What this device's broker credentials may do: write below its own level, read its verdicts and
    /// assignment and policy, the fleet's artifacts and key revocation list, and nothing else.
    public var permissions: [TopicPermission] {
        [
            TopicPermission(.write, escalations),
            TopicPermission(.write, status),
            TopicPermission(.write, predictions),
            TopicPermission(.write, labels),
            TopicPermission(.read, verdicts),
            TopicPermission(.read, modelAssignment),
            TopicPermission(.read, policy),
            TopicPermission(.read, ProtocolTopics.artifacts(fleet: fleet)),
            TopicPermission(.read, revocations),
        ]
    }
}

/// The last topic level of a device's topics.
public enum DeviceTopicKind: String, Sendable, CaseIterable {
    /// Edge → cloud escalations.
    case escalations
    /// Cloud → edge verdicts.
    case verdicts
    /// The device's retained status.
    case status
    /// Prediction records.
    case predictions
    /// Ground-truth labels.
    case labels
    /// The retained model assignment.
    case model
    /// The retained agent policy.
    case policy
}

/// What a broker user may do on a topic or filter (provisioning turns it into the broker's rules).
public struct TopicPermission: Sendable, Equatable, CustomStringConvertible {
    /// Read, write or both, as mosquitto's ACL file spells them.
    public enum Access: String, Sendable {
        /// Subscribe and receive.
        case read
        /// Publish.
        case write
        /// Both.
        case readwrite
    }

    /// What is allowed.
    public var access: Access
    /// The topic or filter.
    public var topic: String

    /// Creates a permission.
    public init(_ access: Access, _ topic: String) {
        self.access = access
        self.topic = topic
    }

    /// `topic read tandem/v1/…`, as a mosquitto ACL file would spell it.
    public var description: String { "topic \(access.rawValue) \(topic)" }
}
