/// Topic filter matching, as the broker does it, used to route incoming messages to subscriptions.
enum MQTTTopicFilter {
    /// The part of a filter that topics are matched against: `$share/group/a/+` matches as `a/+`.
    static func matchingPart(of filter: String) -> Substring {
        guard filter.hasPrefix("$share/") else { return Substring(filter) }
        let rest = filter.dropFirst("$share/".count)
        guard let slash = rest.firstIndex(of: "/") else { return Substring(filter) }
        return rest[rest.index(after: slash)...]
    }

    /// Whether `topic` matches `filter` (`+` one level, `#` the rest; `$` topics never match a leading wildcard).
    static func matches(filter: Substring, topic: String) -> Bool {
        var filterLevels = filter.split(separator: "/", omittingEmptySubsequences: false)[...]
        var topicLevels = topic.split(separator: "/", omittingEmptySubsequences: false)[...]
        if topic.hasPrefix("$"), let first = filterLevels.first, first == "+" || first == "#" {
            return false
        }
        while let level = filterLevels.popFirst() {
            if level == "#" { return true }
            guard let topicLevel = topicLevels.popFirst() else { return false }
            if level != "+" && level != topicLevel { return false }
        }
        return topicLevels.isEmpty
    }
}
