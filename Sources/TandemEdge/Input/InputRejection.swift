/// Why an input line or sample was rejected.
///
/// The names follow the batch reader's vocabulary (`CSVStream.Reason`) where the meaning is the same
/// (`nonFinite`, `outOfOrder`); `nonNumeric` and `wrongChannelCount` are its `notANumber` and
/// `wrongFieldCount` for live streams, which have no header to count fields against.
public enum InputRejection: String, Sendable, Codable, CaseIterable, Comparable {
    /// A timestamp or channel field is not a number.
    case nonNumeric
    /// The line has more or fewer channel values than the stream is configured for.
    case wrongChannelCount
    /// A timestamp or channel value is NaN, infinite, or overflows `Float`.
    case nonFinite
    /// The timestamp is earlier than the stream's previous accepted sample.
    case outOfOrder
    /// The timestamp equals the stream's previous accepted sample.
    case duplicateTimestamp
    /// The line is longer than the source's line limit (its bytes are discarded up to the next newline).
    case lineTooLong
    /// The line holds control bytes (NUL, ESC, …) that no text sample contains.
    case binaryGarbage
    /// The line starts with `{` but is not a JSON sample object.
    case malformedJSON
    /// A JSON sample names a stream other than the one its source feeds.
    case unknownStream
    /// A UDP datagram came from a sender the source's allow-list (`source.allowFrom`) does not name.
    case senderNotAllowed

    /// Orders reasons by declaration, for stable reports.
    public static func < (lhs: InputRejection, rhs: InputRejection) -> Bool { lhs.index < rhs.index }

    /// The reason's position in ``allCases``, for counter arrays.
    public var index: Int {
        switch self {
        case .nonNumeric: 0
        case .wrongChannelCount: 1
        case .nonFinite: 2
        case .outOfOrder: 3
        case .duplicateTimestamp: 4
        case .lineTooLong: 5
        case .binaryGarbage: 6
        case .malformedJSON: 7
        case .unknownStream: 8
        case .senderNotAllowed: 9
        }
    }
}
