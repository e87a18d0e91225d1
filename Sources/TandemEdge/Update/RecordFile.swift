import TandemCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The JSON records an agent keeps next to its model (``AssignmentRecord``, ``PolicyRecord``): read whole, replaced
/// atomically (``AtomicFile``: temporary file, fsync, rename, directory fsync), so after a crash a record is the old
/// one or the new one.
enum RecordFile {
    /// The record at `path`, or nil if there is no file.
    ///
    /// - Throws: ``ModelLoadError`` (`unreadable`) if the file exists but cannot be read or decoded; the message
    ///   names the file and ends with `advice`.
    static func read<Record: Decodable>(_ type: Record.Type, from path: String, what: String, advice: String)
        throws(ModelLoadError) -> Record?
    {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(Record.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw ModelLoadError(.unreadable, "\(path): the \(what) record is unreadable (\(error)); \(advice)")
        }
    }

    /// Replaces the record at `path` atomically: sorted keys and a final newline.
    ///
    /// - Throws: ``ModelLoadError`` (`unreadable`) naming the failed step.
    static func write(_ record: some Encodable, to path: String, what: String) throws(ModelLoadError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            try AtomicFile.write(Array(try encoder.encode(record)) + [0x0A], to: URL(fileURLWithPath: path))
        } catch {
            throw ModelLoadError(.unreadable, "cannot record the \(what) in \(path): \(error)")
        }
    }
}
