extension EscalationServer {
    /// What a stopping server waits for: the batching thread to answer what was queued, and the broker to
    /// acknowledge every verdict published. Guarded by the server's `drain` lock; each transition returns the
    /// waiter to resume, if any, which the caller resumes after the lock is released.
    enum Drain: Sendable {
        /// Serving, or stopping with nobody waiting yet.
        case serving(unacknowledged: Int, batchesDone: Bool)
        /// ``EscalationServer/run()`` waits.
        case waiting(unacknowledged: Int, batchesDone: Bool, CheckedContinuation<Void, Never>)
        /// Drained, or the wait gave up; nobody waits any more.
        case over

        /// A verdict went to the client.
        mutating func published() {
            switch self {
            case .serving(let count, let done): self = .serving(unacknowledged: count + 1, batchesDone: done)
            case .waiting(let count, let done, let waiter):
                self = .waiting(unacknowledged: count + 1, batchesDone: done, waiter)
            case .over: break
            }
        }

        /// The broker acknowledged a verdict, or the client gave up on it.
        mutating func acknowledged() -> CheckedContinuation<Void, Never>? {
            switch self {
            case .serving(let count, let done):
                self = .serving(unacknowledged: max(0, count - 1), batchesDone: done)
                return nil
            case .waiting(let count, let done, let waiter):
                return settle(unacknowledged: max(0, count - 1), batchesDone: done, waiter)
            case .over:
                return nil
            }
        }

        /// The batching thread ended (the queue is closed and empty).
        mutating func batchesFinished() -> CheckedContinuation<Void, Never>? {
            switch self {
            case .serving(let count, _):
                self = .serving(unacknowledged: count, batchesDone: true)
                return nil
            case .waiting(let count, _, let waiter):
                return settle(unacknowledged: count, batchesDone: true, waiter)
            case .over:
                return nil
            }
        }

        /// Registers the one waiter.
        ///
        /// - Returns: true if it must be resumed at once (already drained, or given up).
        mutating func wait(_ waiter: CheckedContinuation<Void, Never>) -> Bool {
            switch self {
            case .serving(let count, let done):
                if count == 0 && done {
                    self = .over
                    return true
                }
                self = .waiting(unacknowledged: count, batchesDone: done, waiter)
                return false
            case .waiting, .over:
                return true
            }
        }

        /// The wait's time is up: the waiter, if any, goes on without the rest.
        mutating func giveUp() -> CheckedContinuation<Void, Never>? {
            defer { self = .over }
            if case .waiting(_, _, let waiter) = self { return waiter }
            return nil
        }

        private mutating func settle(
            unacknowledged count: Int, batchesDone done: Bool, _ waiter: CheckedContinuation<Void, Never>
        ) -> CheckedContinuation<Void, Never>? {
            if count == 0 && done {
                self = .over
                return waiter
            }
            self = .waiting(unacknowledged: count, batchesDone: done, waiter)
            return nil
        }
    }
}
