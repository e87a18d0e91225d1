import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One entry of the audit log: who did what to which version and devices, and why.
public struct AuditRecord: Codable, Sendable, Equatable {
    /// When, ISO 8601 in UTC.
    public var time: String
    /// Who: an operator name, or `rollout` for automatic decisions.
    public var actor: String
    /// What: `register`, `publish`, `assign`, `production`, `rollout-start`, `rollout-step`, `rollout-promote`,
    /// `rollout-rollback`.
    public var action: String
    /// The model version acted on.
    public var version: String
    /// The devices concerned (the cohort, the fleet), if any.
    public var devices: [String]
    /// Why, in words.
    public var reason: String

    /// Creates a record stamped now.
    public init(actor: String, action: String, version: String, devices: [String] = [], reason: String) {
        self.time = Date().ISO8601Format(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        self.actor = actor
        self.action = action
        self.version = version
        self.devices = devices
        self.reason = reason
    }
}

/// An append-only JSON-lines file of ``AuditRecord``s: every publish and rollout action writes one.
///
/// Each record is one `write(2)` of one line to a file opened with `O_APPEND`, followed by `fsync`, so
/// it is on disk when ``append(_:)`` returns and lines from several processes never interleave. A crash
/// can at worst leave a partial last line, which readers skip and count.
public final class AuditLog: Sendable {
    /// The log's file name in a data directory.
    public static let fileName = "audit.jsonl"
    /// The log file.
    public let url: URL
    // Serializes appends from this process; across processes O_APPEND keeps each line whole.
    private let lock = Mutex(())

    /// A log at `url` (created on the first append).
    public init(url: URL) {
        self.url = url
    }

    /// Appends `record` and syncs it to disk.
    ///
    /// - Throws: ``RegistryError`` (`io`) naming the file if opening, writing or syncing fails.
    public func append(_ record: AuditRecord) throws(RegistryError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(record) else {
            throw RegistryError(.io, "cannot encode an audit record", path: url.path)
        }
        let line = Array(data) + [0x0A]
        let path = url.path
        let failure: String? = lock.withLock { _ in
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return "cannot open: \(String(cString: strerror(errno)))" }
            defer { close(fd) }
            let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == line.count else { return "cannot append: \(String(cString: strerror(errno)))" }
            guard fsync(fd) == 0 else { return "cannot fsync: \(String(cString: strerror(errno)))" }
            return nil
        }
        if let failure { throw RegistryError(.io, failure, path: path) }
    }

    /// Every readable record in order, and how many lines were skipped as corrupt.
    ///
    /// A missing file is an empty log.
    public func read() -> (records: [AuditRecord], corruptLines: Int) {
        guard let data = try? Data(contentsOf: url) else { return ([], 0) }
        var records: [AuditRecord] = []
        var corrupt = 0
        let decoder = JSONDecoder()
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: true) {
            if let record = try? decoder.decode(AuditRecord.self, from: Data(line)) {
                records.append(record)
            } else {
                corrupt += 1
            }
        }
        return (records, corrupt)
    }
}
