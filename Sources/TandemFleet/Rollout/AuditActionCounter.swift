import Foundation
import Synchronization

/// How many records of each action an ``AuditLog`` holds, read incrementally: each call reads only the lines
/// appended since the previous one, so a scrape every few seconds costs what the log grew by, not its size.
///
/// A log that got shorter (rotated or replaced) is counted again from its start. A line still being written
/// (no newline yet) waits for the next call; a complete line that is not a record is counted as corrupt.
public final class AuditActionCounter: Sendable {
    /// The log's file.
    public let url: URL
    private let state = Mutex(State())

    private struct State {
        var offset: UInt64 = 0
        var counts: [String: Int] = [:]
        var corrupt = 0
    }

    /// A counter of the log at `url` (a missing file counts as empty).
    public init(url: URL) {
        self.url = url
    }

    /// The records per action and the corrupt lines, up to the last complete line now in the file.
    public func counts() -> (actions: [String: Int], corruptLines: Int) {
        state.withLock { state in
            guard let handle = try? FileHandle(forReadingFrom: url) else {
                state = State()
                return ([:], 0)
            }
            defer { try? handle.close() }
            guard let size = try? handle.seekToEnd() else { return (state.counts, state.corrupt) }
            if size < state.offset { state = State() }
            guard size > state.offset, (try? handle.seek(toOffset: state.offset)) != nil,
                let data = try? handle.read(upToCount: Int(size - state.offset)),
                let lastNewline = data.lastIndex(of: 0x0A)
            else { return (state.counts, state.corrupt) }
            let decoder = JSONDecoder()
            for line in data[..<lastNewline].split(separator: 0x0A, omittingEmptySubsequences: true) {
                if let record = try? decoder.decode(AuditRecord.self, from: Data(line)) {
                    state.counts[record.action, default: 0] += 1
                } else {
                    state.corrupt += 1
                }
            }
            state.offset += UInt64(lastNewline - data.startIndex + 1)
            return (state.counts, state.corrupt)
        }
    }
}
