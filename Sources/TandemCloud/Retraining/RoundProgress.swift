import Foundation
import Synchronization

/// What this worker's trainer is doing now, for `GET /v1/training`: the running round's reasons, the step it is
/// in, and its progress lines so far. Nil between rounds.
public final class RoundProgress: Sendable {
    /// A running round.
    public struct Snapshot: Sendable, Codable, Equatable {
        /// Seconds since 1970 when it started.
        public var startedAt: Double
        /// Why it runs.
        public var reasons: [String]
        /// The step in progress: data, fine-tune, compress, gate, register or rollout.
        public var step: String
        /// Its progress lines so far (the last 20), as logged without the `trainer: ` prefix.
        public var lines: [String]
    }

    private let state = Mutex<Snapshot?>(nil)
    /// Lines kept per round.
    static let keptLines = 20
    /// The step that follows each logged one.
    static let nextStep = [
        "data": "fine-tune", "fine-tune": "compress", "compress": "gate", "gate": "register", "register": "rollout",
    ]

    /// Nothing running.
    public init() {}

    /// The running round, if any.
    public var current: Snapshot? { state.withLock { $0 } }

    /// A round started.
    public func start(at time: Double, reasons: [String]) {
        state.withLock { $0 = Snapshot(startedAt: time, reasons: reasons, step: "data", lines: []) }
    }

    /// Takes in one line the trainer logs; lines of a running round (`trainer: round: …`, `trainer: register: …`,
    /// `trainer: rollout: …`) are kept and move the step on.
    public func note(_ line: String) {
        guard line.hasPrefix("trainer: ") else { return }
        let text = String(line.dropFirst("trainer: ".count))
        state.withLock { snapshot in
            guard var current = snapshot else { return }
            var words = text.split(separator: ":", maxSplits: 2).map { $0.trimmingCharacters(in: .whitespaces) }
            if words.first == "round" { words.removeFirst() }
            guard let logged = words.first else { return }
            if let next = Self.nextStep[logged] {
                current.step = next
            } else if logged == "rollout" {
                current.step = "rollout"
            }
            current.lines.append(text)
            if current.lines.count > Self.keptLines { current.lines.removeFirst(current.lines.count - Self.keptLines) }
            snapshot = current
        }
    }

    /// The round ended.
    public func finish() {
        state.withLock { $0 = nil }
    }
}
