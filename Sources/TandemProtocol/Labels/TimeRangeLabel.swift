#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An operator's ground truth for a stretch of time on one device's stream (docs/PROTOCOL.md "Label"):
/// `{"device": "press-12", "stream": "vibration", "start": 1765190400, "end": 1765192500, "class": "bearing-fault"}`,
/// optionally with `"fleet"`.
///
/// It labels every stored escalation of that device and stream (of that fleet, if given) whose window starts within
/// `start…end` (seconds since 1970, inclusive, on the device's clock as its escalations report it). `class` (or
/// `label`) is a class name of the full model. Maintenance logs say "bearing fault on press-12 from 10:40 to
/// 11:15"; this is that sentence as a message.
public struct TimeRangeLabel: Sendable, Equatable {
    /// The fleet, or nil for the device id in every fleet.
    public var fleet: String?
    /// The device id.
    public var device: String
    /// The stream name.
    public var stream: String
    /// The first window start labelled, seconds since 1970.
    public var start: Double
    /// The last window start labelled, seconds since 1970.
    public var end: Double
    /// The class name.
    public var label: String

    /// The longest range one label covers, in seconds (31 days): a longer one is far more likely a typo than a
    /// month of one fault.
    public static let maximumRangeSeconds: Double = 31 * 24 * 3600

    /// Creates a label, checking every field.
    ///
    /// - Throws: ``LabelError`` `badRange` naming the field: a device or fleet that is not 1–64 letters, digits,
    ///   `-`, `_` or `.` (the device also not `models` or `keys`), a stream that is empty, over 255 bytes or holds
    ///   control characters, a start or end that is not a finite
    ///   time, an end before the start, or a range longer than ``maximumRangeSeconds``; `badLabel` for an empty class.
    public init(
        fleet: String? = nil, device: String, stream: String, start: Double, end: Double, label: String
    ) throws(LabelError) {
        try Self.checkName(device, what: "device")
        if ProtocolTopics.reservedLevels.contains(device) {
            throw LabelError(.badRange, "device '\(device)' is a reserved topic level, not a device")
        }
        if let fleet { try Self.checkName(fleet, what: "fleet") }
        // Stream names come from the agent's configuration; the escalation carries up to 255 bytes of one.
        guard !stream.isEmpty, stream.utf8.count <= 255, !stream.unicodeScalars.contains(where: { $0.value < 0x20 })
        else {
            throw LabelError(.badRange, "stream is empty, longer than 255 bytes or holds control characters")
        }
        // 1e11 s is past the year 5000: a clock, not an overflow.
        for (name, value) in [("start", start), ("end", end)] where !(value.isFinite && abs(value) <= 1e11) {
            throw LabelError(.badRange, "\(name) is not a time (seconds since 1970)")
        }
        guard start <= end else {
            throw LabelError(.badRange, "end (\(end)) is before start (\(start))")
        }
        guard end - start <= Self.maximumRangeSeconds else {
            throw LabelError(
                .badRange,
                "the range is \(Int(end - start)) s long, more than \(Int(Self.maximumRangeSeconds)) s (31 days)")
        }
        guard !label.isEmpty else { throw LabelError(.badLabel, "class is empty (a class name)") }
        self.fleet = fleet
        self.device = device
        self.stream = stream
        self.start = start
        self.end = end
        self.label = label
    }

    /// Whether `bytes` is a JSON object with a `device` key: the time-range form of `POST /v1/labels` rather
    /// than the escalation-id form.
    public static func isRangeForm(_ bytes: [UInt8]) -> Bool {
        struct Probe: Decodable { var device: Scalar? }
        guard let probe = try? JSONDecoder().decode(Probe.self, from: Data(bytes)) else { return false }
        return probe.device != nil
    }

    /// Reads a time-range label (a single JSON object).
    ///
    /// - Throws: ``LabelError``: `tooLarge` above ``GroundTruthLabel/maximumBytes``, `malformed` for anything but
    ///   a JSON object, `badRange` or `badLabel` naming the missing or wrong field.
    public init(decoding bytes: [UInt8]) throws(LabelError) {
        guard bytes.count <= GroundTruthLabel.maximumBytes else {
            throw LabelError(.tooLarge, "a label of \(bytes.count) bytes, more than \(GroundTruthLabel.maximumBytes)")
        }
        let fields: Fields
        do {
            fields = try JSONDecoder().decode(Fields.self, from: Data(bytes))
        } catch {
            throw LabelError(
                .malformed,
                "expected a JSON object {\"device\", \"stream\", \"start\", \"end\", \"class\"} (\(bytes.count) bytes)")
        }
        func string(_ value: Scalar?, _ name: String) throws(LabelError) -> String {
            guard case .string(let text) = value else {
                throw LabelError(.badRange, "\(name) is missing or not a string")
            }
            return text
        }
        func number(_ value: Scalar?, _ name: String) throws(LabelError) -> Double {
            guard case .number(let number) = value else {
                throw LabelError(.badRange, "\(name) is missing or not a number (seconds since 1970)")
            }
            return number
        }
        let fleet: String? =
            switch fields.fleet {
            case nil: nil
            case .string(let text): text
            default: throw LabelError(.badRange, "fleet is not a string")
            }
        guard case .string(let label) = fields.class ?? fields.label else {
            throw LabelError(.badLabel, "class is missing or not a string (a class name)")
        }
        try self.init(
            fleet: fleet, device: try string(fields.device, "device"), stream: try string(fields.stream, "stream"),
            start: try number(fields.start, "start"), end: try number(fields.end, "end"), label: label)
    }

    /// The JSON form (keys sorted; the class under `class`).
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let fields = Fields(
            fleet: fleet.map(Scalar.string), device: .string(device), stream: .string(stream), start: .number(start),
            end: .number(end), class: .string(label), label: nil)
        // Strings and finite numbers always encode.
        return (try? Array(encoder.encode(fields))) ?? []
    }

    private static func checkName(_ name: String, what: String) throws(LabelError) {
        let allowed = name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D
                || b == 0x5F || b == 0x2E
        }
        guard !name.isEmpty, name.utf8.count <= 64, allowed, name != ".", name != ".." else {
            throw LabelError(
                .badRange, "\(what) '\(name.prefix(64))' is not 1–64 letters, digits, '-', '_' or '.'")
        }
    }

    /// A JSON value read only as far as the label needs: a string, a number or anything else.
    private enum Scalar: Codable {
        case string(String)
        case number(Double)
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .string(text)
            } else if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else {
                self = .other
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let text): try container.encode(text)
            case .number(let number): try container.encode(number)
            case .other: try container.encodeNil()
            }
        }
    }

    private struct Fields: Codable {
        var fleet: Scalar?
        var device: Scalar?
        var stream: Scalar?
        var start: Scalar?
        var end: Scalar?
        var `class`: Scalar?
        var label: Scalar?
    }
}
