import Synchronization

/// Runs one operation at a time, across its suspension points.
///
/// An actor lets other calls in while one awaits (a publish to hundreds of devices), so a read–decide–publish–save
/// sequence such as a rollout step could interleave with an operator's roll-back and save a stale state over it.
/// The controllers run every such sequence through one of these: the others wait, in arrival order.
final class ExclusiveAccess: Sendable {
    private let state = Mutex<(busy: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Runs `body` once no other body of this instance is running.
    func run<T, E: Error>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws(E) -> T)
        async throws(E) -> T
    {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s in
                if s.busy {
                    s.waiters.append(continuation)
                    return false
                }
                s.busy = true
                return true
            }
            if now { continuation.resume() }
        }
        defer {
            // The next waiter inherits the busy flag; without one it is cleared.
            let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
                if s.waiters.isEmpty {
                    s.busy = false
                    return nil
                }
                return s.waiters.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}
