/// The topic tree of contract v1 as the cloud sees it: the filters its workers subscribe to, the fleet-wide
/// topics, and the reading of a device topic back into fleet, device and kind (docs/PROTOCOL.md).
public enum ProtocolTopics {
    /// The first two levels of every Tandem topic.
    public static let prefix = "tandem/v1"
    /// The shared-subscription group cloud workers join unless configured otherwise.
    public static let defaultCloudGroup = "tandem-cloud"
    /// Every Tandem topic, for the cloud's own broker user.
    public static let everything = "\(prefix)/#"

    /// Fleet-level topic levels that are never a device id: `models` holds the artifacts, `keys` the revocation
    /// list.
    public static let reservedLevels: Set<String> = ["models", "keys"]

    /// The fleet's retained, signed key revocation list.
    public static func revocations(fleet: String) -> String { "\(prefix)/\(fleet)/keys/revocations" }

    /// The retained artifact of `version` in `fleet`.
    public static func artifact(fleet: String, version: String) -> String { "\(prefix)/\(fleet)/models/\(version)" }

    /// Every retained artifact of `fleet`.
    public static func artifacts(fleet: String) -> String { "\(prefix)/\(fleet)/models/+" }

    /// `kind` of every device of every fleet: `tandem/v1/+/+/kind`.
    public static func allDevices(_ kind: DeviceTopicKind) -> String { "\(prefix)/+/+/\(kind.rawValue)" }

    /// `kind` of every device of `fleet`: `tandem/v1/{fleet}/+/kind`.
    public static func fleetDevices(_ kind: DeviceTopicKind, fleet: String) -> String {
        "\(prefix)/\(fleet)/+/\(kind.rawValue)"
    }

    /// `kind` of every device, shared among the workers of `group`: each message goes to one of them.
    public static func shared(_ kind: DeviceTopicKind, group: String) -> String {
        "$share/\(group)/" + allDevices(kind)
    }
}

/// A device topic read back into its parts: where the cloud takes a device's fleet and id from.
public struct DeviceTopicAddress: Sendable, Equatable {
    /// The device's topics.
    public var topics: DeviceTopics
    /// The last level.
    public var kind: DeviceTopicKind

    /// The fleet.
    public var fleet: String { topics.fleet }
    /// The device.
    public var device: String { topics.device }

    /// Reads `tandem/v1/{fleet}/{device}/{kind}`; nil for any other shape, an empty or wildcard level, or a
    /// reserved fleet level (`models`, `keys`: artifacts and keys, not a device).
    public init?(topic: String) {
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        guard levels.count == 5, levels[0] == "tandem", levels[1] == "v1",
            let kind = DeviceTopicKind(rawValue: String(levels[4])),
            !ProtocolTopics.reservedLevels.contains(String(levels[3]))
        else { return nil }
        for level in levels[2...3] where level.isEmpty || level == "+" || level == "#" { return nil }
        topics = DeviceTopics(fleet: String(levels[2]), device: String(levels[3]))
        self.kind = kind
    }
}
