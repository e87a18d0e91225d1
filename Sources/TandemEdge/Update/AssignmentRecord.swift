import TandemCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What a device has taken from its fleet, kept next to its model (`model.path` + `.assignment`) so that
/// neither a restart nor a replayed message takes it back.
///
/// It holds the newest accepted assignment's sequence (and a digest of its signed bytes, to tell its
/// redelivery from another message with the same number), the version an assignment put in service and its
/// release, and the newest revocation list's sequence with every key revoked so far. The file is JSON, replaced
/// atomically (``AtomicFile``: temporary file, fsync, rename, directory fsync), so after a crash it is the old
/// record or the new one. A record that cannot be read stops model updates (and the agent's start) rather than
/// being taken as empty: an empty record would accept every assignment ever signed again.
public struct AssignmentRecord: Sendable, Equatable, Codable {
    /// The sequence of the newest assignment accepted; 0 before the first.
    public var sequence: UInt64 = 0
    /// SHA-256 (hex) of that assignment's signed bytes.
    public var assignmentDigest = ""
    /// The version the last installed assignment put in service; nil before the first.
    public var servingVersion: String?
    /// That version's release; 0 before the first.
    public var servingRelease: UInt64 = 0
    /// The sequence of the newest revocation list accepted; 0 before the first.
    public var revocationSequence: UInt64 = 0
    /// Every key id revoked so far, sorted.
    public var revokedKeyIDs: [String] = []

    /// An empty record: nothing accepted yet.
    public init() {}

    /// The record file of the model at `modelPath`.
    public static func path(forModelAt modelPath: String) -> String { modelPath + ".assignment" }

    /// Reads the record at `path`; an empty record if there is no file.
    ///
    /// - Throws: ``ModelLoadError`` (`unreadable`) if the file exists but cannot be read or decoded.
    public static func read(from path: String) throws(ModelLoadError) -> AssignmentRecord {
        try RecordFile.read(
            AssignmentRecord.self, from: path, what: "assignment",
            advice: "remove it to start over, after which the device accepts any assignment its trusted keys signed")
            ?? AssignmentRecord()
    }

    /// Replaces the record at `path` atomically.
    ///
    /// - Throws: ``ModelLoadError`` (`unreadable`) naming the failed step.
    public func write(to path: String) throws(ModelLoadError) {
        try RecordFile.write(self, to: path, what: "assignment")
    }
}
