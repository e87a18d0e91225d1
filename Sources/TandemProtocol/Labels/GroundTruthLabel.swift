#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An operator's ground truth for one escalation (docs/PROTOCOL.md "Label"):
/// `{"escalationId": "8A1C…", "label": "bearing-fault"}`.
///
/// `label` is a class name of the full model; unknown keys are ignored, as in every Tandem JSON message.
public struct GroundTruthLabel: Sendable, Equatable {
    /// The escalation the label is for.
    public var escalationId: UUID
    /// The class name.
    public var label: String

    /// Creates a label.
    public init(escalationId: UUID, label: String) {
        self.escalationId = escalationId
        self.label = label
    }

    /// The largest label message read (the MQTT form), in bytes: a label is two short strings, about 90 bytes.
    public static let maximumBytes = 4096

    /// Reads one label message (the MQTT form: a single object).
    ///
    /// - Throws: ``LabelError`` saying which field is wrong, or `tooLarge` for more than ``maximumBytes``.
    public init(decoding bytes: [UInt8]) throws(LabelError) {
        guard bytes.count <= Self.maximumBytes else {
            throw LabelError(.tooLarge, "a label of \(bytes.count) bytes, more than \(Self.maximumBytes)")
        }
        guard case .object(let fields) = try Self.decode(Element.self, from: bytes) else {
            throw LabelError(.malformed, "expected a JSON object {\"escalationId\": …, \"label\": …}")
        }
        try self.init(fields: fields, at: "")
    }

    /// Reads a label, or an array of labels (the `POST /v1/labels` form).
    ///
    /// - Throws: ``LabelError`` saying which field of which element is wrong; nothing is returned then.
    public static func decodingList(_ bytes: [UInt8]) throws(LabelError) -> [GroundTruthLabel] {
        switch try decode(Element.self, from: bytes) {
        case .object(let fields):
            return [try GroundTruthLabel(fields: fields, at: "")]
        case .array(let elements):
            guard !elements.isEmpty else { throw LabelError(.malformed, "the array holds no labels") }
            var labels: [GroundTruthLabel] = []
            for (index, element) in elements.enumerated() {
                guard let fields = element.fields else {
                    throw LabelError(.malformed, "element \(index): expected an object")
                }
                labels.append(try GroundTruthLabel(fields: fields, at: "element \(index): "))
            }
            return labels
        case .other:
            throw LabelError(
                .malformed, "expected a JSON object {\"escalationId\": …, \"label\": …} or an array of them")
        }
    }

    private init(fields: Fields, at place: String) throws(LabelError) {
        guard case .string(let text) = fields.escalationId else {
            throw LabelError(.badEscalationId, place + "escalationId is missing or not a string")
        }
        guard let id = UUID(uuidString: text) else {
            throw LabelError(.badEscalationId, place + "escalationId '\(text.prefix(64))' is not a UUID")
        }
        guard case .string(let label) = fields.label, !label.isEmpty else {
            throw LabelError(.badLabel, place + "label is missing or not a non-empty string (a class name)")
        }
        self.init(escalationId: id, label: label)
    }

    private static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(LabelError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw LabelError(.malformed, "not JSON (\(bytes.count) bytes)")
        }
    }

    /// The JSON form (keys sorted).
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Two strings always encode.
        return
            (try? Array(encoder.encode(Fields(escalationId: .string(escalationId.uuidString), label: .string(label)))))
            ?? []
    }

    /// A JSON value read only as far as a label needs: a string or anything else.
    private enum Scalar: Codable {
        case string(String)
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            self = (try? container.decode(String.self)).map(Scalar.string) ?? .other
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            if case .string(let text) = self { try container.encode(text) } else { try container.encodeNil() }
        }
    }

    /// The fields of one label object.
    private struct Fields: Codable {
        var escalationId: Scalar?
        var label: Scalar?
    }

    /// The top-level value: a label object, an array, or anything else.
    private enum Element: Decodable {
        case object(Fields)
        case array([Item])
        case other

        init(from decoder: any Decoder) throws {
            if let item = try? Item(from: decoder), let fields = item.fields {
                self = .object(fields)
            } else if let items = try? [Item](from: decoder) {
                self = .array(items)
            } else {
                self = .other
            }
        }
    }

    /// An element of an array: a label object or anything else (arrays do not nest).
    private struct Item: Decodable {
        var fields: Fields?

        init(from decoder: any Decoder) throws {
            fields = (try? decoder.container(keyedBy: AnyKey.self)) != nil ? try? Fields(from: decoder) : nil
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
