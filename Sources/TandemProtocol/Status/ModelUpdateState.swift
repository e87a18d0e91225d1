/// Where a device's model update stands, as its status reports it.
///
/// On the wire it is one string — `idle`, `downloading V`, `verifying V`, `active V` or `rejected V: reason` —
/// so that operators can read it at a glance; ``init(_:)`` reads it back and the cloud never matches text.
public enum ModelUpdateState: Sendable, Equatable, Codable, CustomStringConvertible {
    /// No assignment seen yet.
    case idle
    /// Fetching the artifact of `version`.
    case downloading(String)
    /// Checking the artifact of `version`.
    case verifying(String)
    /// `version` serves.
    case active(String)
    /// `version` was refused; the previous model keeps serving.
    case rejected(String, reason: String)

    /// `idle`, `downloading edge-3`, …, `rejected edge-3: untrusted: …`.
    public var description: String {
        switch self {
        case .idle: "idle"
        case .downloading(let v): "downloading \(v)"
        case .verifying(let v): "verifying \(v)"
        case .active(let v): "active \(v)"
        case .rejected(let v, let reason): "rejected \(v): \(reason)"
        }
    }

    /// The longest rejection reason a status carries, in bytes: enough to say what failed and where, short enough
    /// that a status never outgrows what the cloud reads.
    public static let maximumReasonBytes = 512

    /// This state with a rejection reason cut to ``maximumReasonBytes`` (at a character boundary, marked `…`).
    public var truncated: ModelUpdateState {
        guard case .rejected(let version, let reason) = self, reason.utf8.count > Self.maximumReasonBytes else {
            return self
        }
        var cut = ""
        for character in reason {
            if cut.utf8.count + character.utf8.count > Self.maximumReasonBytes - 3 { break }
            cut.append(character)
        }
        return .rejected(version, reason: cut + "…")
    }

    /// The version the state is about; nil when idle.
    public var version: String? {
        switch self {
        case .idle: nil
        case .downloading(let v), .verifying(let v), .active(let v), .rejected(let v, _): v
        }
    }

    /// Reads the wire form; nil for text of another shape. A version never holds white space (the registry
    /// refuses such names), so in `rejected V: reason` the first space ends `V:`.
    public init?(_ text: String) {
        if text == "idle" {
            self = .idle
            return
        }
        guard let space = text.firstIndex(of: " ") else { return nil }
        let word = text[..<space]
        let rest = text[text.index(after: space)...]
        guard !rest.isEmpty else { return nil }
        switch word {
        case "downloading": self = .downloading(String(rest))
        case "verifying": self = .verifying(String(rest))
        case "active": self = .active(String(rest))
        case "rejected":
            let end = rest.firstIndex(of: " ") ?? rest.endIndex
            guard rest[..<end].hasSuffix(":"), end > rest.index(after: rest.startIndex) else { return nil }
            let reason = end == rest.endIndex ? "" : rest[rest.index(after: end)...]
            self = .rejected(String(rest[..<rest.index(before: end)]), reason: String(reason))
        default: return nil
        }
    }

    /// Decodes the wire string.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let state = ModelUpdateState(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a model update state"))
        }
        self = state
    }

    /// Encodes the wire string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
