#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The retained message on `tandem/v1/{fleet}/{device}/model` that tells a device which model to run.
///
/// `{"v":1,"version":"edge-3","sha256":"…64 hex…","size":14680,"topic":"tandem/v1/plant/models/edge-3"}`;
/// `topic` may be left out (then `tandem/v1/{fleet}/models/{version}`).
public struct ModelAssignment: Sendable, Equatable, Codable {
    /// Format version (`v`), 1.
    public var formatVersion: Int
    /// The model version to run.
    public var version: String
    /// SHA-256 of the artifact file, lower-case hex.
    public var sha256: String
    /// The artifact's size in bytes.
    public var size: Int
    /// Where the retained artifact is published; nil: the fleet's `models/{version}` topic.
    public var topic: String?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "v", version, sha256, size, topic
    }

    /// Creates an assignment.
    public init(version: String, sha256: String, size: Int, topic: String? = nil) {
        formatVersion = 1
        self.version = version
        self.sha256 = sha256
        self.size = size
        self.topic = topic
    }

    /// The largest artifact a device accepts.
    public static let maximumSize = 64 * 1024 * 1024

    /// Reads an assignment message.
    ///
    /// - Throws: ``PayloadError`` (`malformed`, `unsupportedVersion`) saying what is wrong.
    public init(decoding bytes: [UInt8]) throws(PayloadError) {
        let decoded: ModelAssignment
        do {
            decoded = try JSONDecoder().decode(ModelAssignment.self, from: Data(bytes))
        } catch {
            throw PayloadError(
                .malformed, "model assignment is not {v, version, sha256, size[, topic]} JSON", offset: 0)
        }
        guard decoded.formatVersion == 1 else {
            throw PayloadError(
                .unsupportedVersion, "model assignment version \(decoded.formatVersion), this agent reads 1", offset: 0)
        }
        let hex = decoded.sha256.allSatisfy { $0.isHexDigit && !$0.isUppercase }
        guard !decoded.version.isEmpty, !decoded.version.contains(where: { "/+#".contains($0) }),
            decoded.sha256.count == 64, hex, (1...Self.maximumSize).contains(decoded.size)
        else {
            throw PayloadError(
                .malformed,
                "model assignment needs a topic-safe version, 64 lower-case hex sha256 and a size within 1…\(Self.maximumSize)",
                offset: 0)
        }
        self = decoded
    }

    /// The JSON bytes.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? Array(encoder.encode(self))) ?? []
    }
}
