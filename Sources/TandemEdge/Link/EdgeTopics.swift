/// The MQTT topics of one device (contract v1, docs/PROTOCOL.md).
public struct EdgeTopics: Sendable, Equatable {
    /// The fleet (second topic level).
    public let fleet: String
    /// The device (third level).
    public let device: String

    /// Topics of `device` in `fleet`.
    public init(fleet: String, device: String) {
        self.fleet = fleet
        self.device = device
    }

    private var base: String { "tandem/v1/\(fleet)/\(device)" }
    /// Edge → cloud: escalated windows (QoS 1, response topic + correlation data).
    public var escalations: String { base + "/escalations" }
    /// Cloud → edge: verdicts.
    public var verdicts: String { base + "/verdicts" }
    /// Edge → all: retained status; the last will says offline.
    public var status: String { base + "/status" }
    /// Edge → consumers: prediction records.
    public var predictions: String { base + "/predictions" }
    /// Cloud → edge: the retained model assignment.
    public var modelAssignment: String { base + "/model" }
    /// Cloud → edge: the retained artifact of `version` (small models travel on the broker).
    public func artifact(version: String) -> String { "tandem/v1/\(fleet)/models/\(version)" }
}
