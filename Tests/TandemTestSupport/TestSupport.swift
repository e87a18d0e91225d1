import Foundation

/// A scratch directory under the system temporary directory, removed by `remove()`.
public struct ScratchDirectory: Sendable {
    /// The directory's URL.
    public let url: URL

    /// Creates a new empty directory with a unique name.
    public init(prefix: String = "tandem-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Deletes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}
