import TandemProtocol

/// The entries of mosquitto's ACL file that provisioning owns: one block per user, between a
/// `# tandem begin <user>` and a `# tandem end <user>` line, so provisioning again replaces the block
/// and anything an operator wrote outside the blocks stays.
public enum BrokerACL {
    /// The topic levels a device may use, from docs/PROTOCOL.md: it writes only below its own level
    /// (escalations, status, predictions, labels) and reads only its verdicts, its model assignment and
    /// the fleet's model artifacts.
    public static func deviceBlock(user: String, fleet: String, device: String) -> String {
        block(user: user, lines: DeviceTopics(fleet: fleet, device: device).permissions.map(\.description))
    }

    /// A cloud worker reads and writes every fleet's topics (escalations through its shared subscription,
    /// verdicts, assignments, artifacts, status, labels).
    public static func cloudBlock(user: String) -> String {
        block(user: user, lines: [TopicPermission(.readwrite, ProtocolTopics.everything).description])
    }

    static func block(user: String, lines: [String]) -> String {
        (["# tandem begin \(user)", "user \(user)"] + lines + ["# tandem end \(user)"]).joined(separator: "\n")
    }

    /// Puts `block` (from ``deviceBlock(user:fleet:device:)`` or ``cloudBlock(user:)``) for `user` into the
    /// ACL file at `path` (created if missing, mode 0640), replacing that user's previous block.
    public static func setBlock(_ block: String, user: String, in path: String) throws(ProvisioningError) {
        let lines = try readLines(path)
        var kept: [String] = []
        var inside = false
        for line in lines {
            if line == "# tandem begin \(user)" {
                inside = true
            } else if inside && line == "# tandem end \(user)" {
                inside = false
            } else if !inside {
                kept.append(line)
            }
        }
        // A block that precedes ours ends with the next `user` line; ours starts with its own.
        while kept.last == "" { kept.removeLast() }
        if !kept.isEmpty { kept.append("") }
        kept.append(block)
        try writeAtomically(kept.joined(separator: "\n") + "\n", to: path, mode: 0o640)
    }
}
