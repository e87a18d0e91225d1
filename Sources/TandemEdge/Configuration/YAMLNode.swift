/// One value of a YAML document as a configuration file uses it: text, a list or a mapping.
///
/// Scalars stay text whatever they look like (`30`, `true`, `null`, `""` are all `.scalar`); callers parse
/// numbers and flags themselves, so `"30"` and `30` read the same. An empty value (`key:` with nothing after it)
/// is `.scalar("")`. Mappings keep the document's key order. ``YAMLReader`` builds the tree.
enum YAMLNode: Sendable, Equatable, CustomStringConvertible {
    /// A plain or quoted value, with quotes removed and escapes resolved.
    case scalar(String)
    /// A block list (`- item` lines) or a flow list (`[a, b]`).
    case sequence([YAMLNode])
    /// A block mapping (`key: value` lines) or a flow mapping (`{a: 1}`), in document order; keys are unique.
    case mapping([(key: String, value: YAMLNode)])

    /// The text, if this is a scalar.
    var scalar: String? {
        if case .scalar(let text) = self { return text }
        return nil
    }

    /// The items, if this is a list.
    var sequence: [YAMLNode]? {
        if case .sequence(let items) = self { return items }
        return nil
    }

    /// The entries in document order, if this is a mapping.
    var mapping: [(key: String, value: YAMLNode)]? {
        if case .mapping(let entries) = self { return entries }
        return nil
    }

    /// The value of `key`, if this is a mapping that has it.
    subscript(key: String) -> YAMLNode? {
        mapping?.first(where: { $0.key == key })?.value
    }

    /// The item at `index`, if this is a list that long.
    subscript(index: Int) -> YAMLNode? {
        guard let items = sequence, items.indices.contains(index) else { return nil }
        return items[index]
    }

    static func == (lhs: YAMLNode, rhs: YAMLNode) -> Bool {
        switch (lhs, rhs) {
        case (.scalar(let a), .scalar(let b)):
            return a == b
        case (.sequence(let a), .sequence(let b)):
            return a == b
        case (.mapping(let a), .mapping(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default:
            return false
        }
    }

    /// The node in flow style with every scalar double-quoted, e.g. `{"a": ["1", ""]}`, for test failures and logs.
    var description: String {
        switch self {
        case .scalar(let text):
            var quoted = "\""
            for character in text {
                switch character {
                case "\"": quoted += "\\\""
                case "\\": quoted += "\\\\"
                case "\n": quoted += "\\n"
                case "\t": quoted += "\\t"
                default: quoted.append(character)
                }
            }
            return quoted + "\""
        case .sequence(let items):
            return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .mapping(let entries):
            let pairs = entries.map { YAMLNode.scalar($0.key).description + ": " + $0.value.description }
            return "{" + pairs.joined(separator: ", ") + "}"
        }
    }
}
