#if canImport(Glibc)
    import Glibc
#endif

/// A value that is only reachable while holding a pthread mutex.
///
/// TandemMQTT uses this instead of `Synchronization.Mutex` because on Linux that lock is built on raw futex
/// calls ThreadSanitizer cannot see, so `swift test --sanitize=thread` reports every access it guards as a
/// race. pthread mutexes are intercepted by the sanitizer, so real races stay visible.
final class LockedState<Value>: @unchecked Sendable {
    // `value` is read and written only inside `withLock`, under `mutex`.
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
