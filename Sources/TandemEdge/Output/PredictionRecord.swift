import TandemProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// One output record: the prediction for one window, or a correction of an earlier one.
///
/// As a JSON line (keys in this order, `escalationId` and `reason` only when escalated):
/// `{"type":"prediction","stream":"main","start":12.5,"end":14.48,"label":"bearing","labelIndex":2,`
/// `"probability":0.91,"confidence":0.91,"source":"edge","provisional":false,"escalated":false,`
/// `"modelVersion":"edge-7","latencyMs":0.42}`.
public struct PredictionRecord: Sendable, Equatable {
    /// Whether a record is a window's prediction or a later correction of it.
    public enum Kind: String, Sendable, Equatable {
        /// The prediction for a window.
        case prediction
        /// The cloud's verdict arrived after the deadline and differs from the provisional prediction.
        case correction
    }

    /// Which model produced the label.
    public enum Origin: String, Sendable, Equatable {
        /// The edge model.
        case edge
        /// The cloud model (a verdict).
        case cloud
    }

    /// Prediction or correction.
    public var kind: Kind
    /// The stream.
    public var stream: String
    /// Timestamp of the window's first sample.
    public var windowStart: Double
    /// Timestamp of the window's last sample.
    public var windowEnd: Double
    /// The class name.
    public var label: String
    /// The class index.
    public var labelIndex: Int
    /// The class's probability.
    public var probability: Float
    /// The confidence measure's value for the window.
    public var confidence: Double
    /// Which model produced the label.
    public var origin: Origin
    /// True when the window was escalated and the cloud has not (yet) answered in time.
    public var provisional: Bool
    /// Whether the window was escalated.
    public var escalated: Bool
    /// The escalation id, when escalated.
    public var escalationId: UUID?
    /// Why the window was escalated, when it was.
    public var reason: EscalationReason?
    /// The version of the model that produced the label.
    public var modelVersion: String
    /// Milliseconds from the window's completion to this record.
    public var latencyMilliseconds: Double

    /// Creates a record.
    public init(
        kind: Kind = .prediction, stream: String, windowStart: Double, windowEnd: Double, label: String,
        labelIndex: Int,
        probability: Float, confidence: Double, origin: Origin = .edge, provisional: Bool = false,
        escalated: Bool = false,
        escalationId: UUID? = nil, reason: EscalationReason? = nil, modelVersion: String,
        latencyMilliseconds: Double
    ) {
        self.kind = kind
        self.stream = stream
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.label = label
        self.labelIndex = labelIndex
        self.probability = probability
        self.confidence = confidence
        self.origin = origin
        self.provisional = provisional
        self.escalated = escalated
        self.escalationId = escalationId
        self.reason = reason
        self.modelVersion = modelVersion
        self.latencyMilliseconds = latencyMilliseconds
    }

    /// Appends the record as one JSON line (with its newline) to `out`.
    public func appendJSONLine(to out: inout [UInt8]) {
        func key(_ name: StaticString) {
            if out.last != UInt8(ascii: "{") { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        func string(_ text: String) {
            out.append(UInt8(ascii: "\""))
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
                case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [
                        0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)],
                    ])
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        func number(_ value: Double) {
            // JSON has no NaN or infinity.
            out.append(contentsOf: (value.isFinite ? "\(value)" : "null").utf8)
        }
        func boolean(_ value: Bool) { out.append(contentsOf: (value ? "true" : "false").utf8) }
        out.append(UInt8(ascii: "{"))
        key("type"); string(kind.rawValue)
        key("stream"); string(stream)
        key("start"); number(windowStart)
        key("end"); number(windowEnd)
        key("label"); string(label)
        key("labelIndex"); out.append(contentsOf: String(labelIndex).utf8)
        key("probability"); number(Double(probability))
        key("confidence"); number(confidence)
        key("source"); string(origin.rawValue)
        key("provisional"); boolean(provisional)
        key("escalated"); boolean(escalated)
        if let escalationId { key("escalationId"); string(escalationId.uuidString.lowercased()) }
        if let reason, escalationId != nil { key("reason"); string(reason.name) }
        key("modelVersion"); string(modelVersion)
        key("latencyMs"); number((latencyMilliseconds * 1000).rounded() / 1000)
        out.append(UInt8(ascii: "}"))
        out.append(UInt8(ascii: "\n"))
    }

    /// The record as one JSON line, without the newline.
    public var jsonLine: String {
        var bytes = [UInt8]()
        appendJSONLine(to: &bytes)
        return String(decoding: bytes.dropLast(), as: UTF8.self)
    }
}
