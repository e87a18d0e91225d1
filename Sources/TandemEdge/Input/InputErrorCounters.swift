import Synchronization

/// Rejected-input counters, one per reason per stream, shared by the stream tasks and the status reporter.
///
/// Counting takes a lock briefly and never allocates; ``snapshot()`` copies the counts for a status message.
public final class InputErrorCounters: Sendable {
    /// The stream names, in the order their counters are kept.
    public let streams: [String]
    private let counts: Mutex<[Int]>
    private static let width = InputRejection.allCases.count

    /// Creates zeroed counters for `streams`.
    public init(streams: [String]) {
        self.streams = streams
        counts = Mutex([Int](repeating: 0, count: streams.count * Self.width))
    }

    /// Counts one rejection of `reason` on the stream at `streamIndex` (ignored if out of range).
    public func record(_ reason: InputRejection, stream streamIndex: Int, count: Int = 1) {
        guard streamIndex >= 0, streamIndex < streams.count else { return }
        counts.withLock { $0[streamIndex * Self.width + reason.index] += count }
    }

    /// The count of `reason` on the stream at `streamIndex`.
    public func count(_ reason: InputRejection, stream streamIndex: Int) -> Int {
        guard streamIndex >= 0, streamIndex < streams.count else { return 0 }
        return counts.withLock { $0[streamIndex * Self.width + reason.index] }
    }

    /// A copy of every non-zero counter: stream name → reason → count.
    public func snapshot() -> Snapshot {
        let copy = counts.withLock { $0 }
        var result = [String: [InputRejection: Int]]()
        for (s, name) in streams.enumerated() {
            for reason in InputRejection.allCases {
                let n = copy[s * Self.width + reason.index]
                if n > 0 { result[name, default: [:]][reason] = n }
            }
        }
        return Snapshot(byStream: result)
    }

    /// Counters copied at one moment, for a status message.
    public struct Snapshot: Sendable, Equatable {
        /// Stream name → reason → count; only non-zero counts appear.
        public var byStream: [String: [InputRejection: Int]]

        /// The total per reason over all streams.
        public var byReason: [InputRejection: Int] {
            var total = [InputRejection: Int]()
            for counts in byStream.values { for (reason, n) in counts { total[reason, default: 0] += n } }
            return total
        }

        /// The total over all streams and reasons.
        public var total: Int { byStream.values.reduce(0) { $0 + $1.values.reduce(0, +) } }
    }
}
