#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The cloud's answer to one escalation, sent as JSON on the device's verdicts topic.
///
/// `{"v":1,"escalationId":"…UUID…","label":2,"probabilities":[…],"modelVersion":"…"}`.
public struct Verdict: Sendable, Equatable, Codable {
    /// The JSON format version this build writes and reads.
    public static let formatVersion = 1

    /// Format version (`v` in JSON).
    public var formatVersion: Int
    /// The escalation this answers.
    public var escalationId: UUID
    /// The cloud model's class index.
    public var label: Int
    /// The cloud model's class probabilities.
    public var probabilities: [Float]
    /// The version of the cloud model that answered.
    public var modelVersion: String

    /// Creates a verdict.
    public init(escalationId: UUID, label: Int, probabilities: [Float], modelVersion: String) {
        formatVersion = Self.formatVersion
        self.escalationId = escalationId
        self.label = label
        self.probabilities = probabilities
        self.modelVersion = modelVersion
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "v", escalationId, label, probabilities, modelVersion
    }

    /// The JSON bytes.
    ///
    /// Written directly, keys sorted as `JSONEncoder` with `.sortedKeys` writes them (a worker sends one verdict per
    /// escalation, and the encoder's reflection cost more than the rest of the message): numbers in Swift's
    /// shortest round-trip form, the model version escaped as JSON requires. A probability that is not finite (no
    /// model produces one) is written as 0, so the output is always JSON.
    public func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(96 + modelVersion.utf8.count + 14 * probabilities.count)
        func append(_ text: String) { out.append(contentsOf: text.utf8) }
        append("{\"escalationId\":\"\(escalationId.text)\",\"label\":\(label),\"modelVersion\":\"")
        for c in modelVersion.unicodeScalars {
            switch c {
            case "\"": append("\\\"")
            case "\\": append("\\\\")
            case "\n": append("\\n")
            case "\r": append("\\r")
            case "\t": append("\\t")
            case _ where c.value < 0x20:
                append("\\u00")
                out.append(Self.hexDigit(UInt8(c.value >> 4)))
                out.append(Self.hexDigit(UInt8(c.value & 0xF)))
            default: append(String(c))
            }
        }
        append("\",\"probabilities\":[")
        for (i, p) in probabilities.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            append(p.isFinite ? p.description : "0")
        }
        append("],\"v\":\(formatVersion)}")
        return out
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }

    /// Decodes and checks a verdict.
    ///
    /// - Throws: ``PayloadError``: `malformed` if it is not the JSON above, `unsupportedVersion` for another
    ///   `v`, `malformed` if the label is not an index into finite probabilities.
    public init(decoding bytes: [UInt8]) throws(PayloadError) {
        let decoded: Verdict
        do {
            decoded = try JSONDecoder().decode(Verdict.self, from: Data(bytes))
        } catch {
            throw PayloadError(.malformed, "verdict is not valid JSON for a verdict: \(error)")
        }
        guard decoded.formatVersion == Self.formatVersion else {
            throw PayloadError(
                .unsupportedVersion, "verdict version \(decoded.formatVersion), this build reads \(Self.formatVersion)")
        }
        guard decoded.probabilities.indices.contains(decoded.label), decoded.probabilities.allSatisfy(\.isFinite) else {
            throw PayloadError(
                .malformed,
                "verdict label \(decoded.label) is not an index into its \(decoded.probabilities.count) finite probabilities"
            )
        }
        self = decoded
    }
}
