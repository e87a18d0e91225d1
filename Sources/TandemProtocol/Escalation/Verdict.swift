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
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain numbers, strings and a UUID cannot fail.
        return (try? Array(encoder.encode(self))) ?? []
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
