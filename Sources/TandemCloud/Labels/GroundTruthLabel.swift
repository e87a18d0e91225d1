import Foundation

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

    /// Reads one label message (the MQTT form: a single object).
    ///
    /// - Throws: ``LabelError`` saying which field is wrong.
    public init(decoding bytes: [UInt8]) throws(LabelError) {
        let object = try Self.json(bytes)
        guard let fields = object as? [String: Any] else {
            throw LabelError(.malformed, "expected a JSON object {\"escalationId\": …, \"label\": …}")
        }
        try self.init(fields: fields, at: "")
    }

    /// Reads a label, or an array of labels (the `POST /v1/labels` form).
    ///
    /// - Throws: ``LabelError`` saying which field of which element is wrong; nothing is returned then.
    public static func decodingList(_ bytes: [UInt8]) throws(LabelError) -> [GroundTruthLabel] {
        let object = try json(bytes)
        if let fields = object as? [String: Any] { return [try GroundTruthLabel(fields: fields, at: "")] }
        guard let array = object as? [Any] else {
            throw LabelError(
                .malformed, "expected a JSON object {\"escalationId\": …, \"label\": …} or an array of them")
        }
        guard !array.isEmpty else { throw LabelError(.malformed, "the array holds no labels") }
        var labels: [GroundTruthLabel] = []
        for (index, element) in array.enumerated() {
            guard let fields = element as? [String: Any] else {
                throw LabelError(.malformed, "element \(index): expected an object")
            }
            labels.append(try GroundTruthLabel(fields: fields, at: "element \(index): "))
        }
        return labels
    }

    private init(fields: [String: Any], at place: String) throws(LabelError) {
        guard let text = fields["escalationId"] as? String else {
            throw LabelError(.badEscalationId, place + "escalationId is missing or not a string")
        }
        guard let id = UUID(uuidString: text) else {
            throw LabelError(.badEscalationId, place + "escalationId '\(text.prefix(64))' is not a UUID")
        }
        guard let label = fields["label"] as? String, !label.isEmpty else {
            throw LabelError(.badLabel, place + "label is missing or not a non-empty string (a class name)")
        }
        self.init(escalationId: id, label: label)
    }

    private static func json(_ bytes: [UInt8]) throws(LabelError) -> Any {
        do {
            return try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw LabelError(.malformed, "not JSON (\(bytes.count) bytes)")
        }
    }

    /// The JSON form (keys sorted).
    public func encoded() -> [UInt8] {
        let object: [String: Any] = ["escalationId": escalationId.uuidString, "label": label]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Array(data)
    }
}
