#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The scheduling priority of the thread a retraining round runs on.
enum TrainerThread {
    /// Lowers the calling thread's priority to the nice value `nice` (0–19). On Linux a thread has a nice value of
    /// its own, and `setpriority(PRIO_PROCESS, 0, …)` sets the calling thread's, so the worker's other threads — the
    /// batching thread answering escalations, the MQTT network threads — keep theirs. Elsewhere it would lower the
    /// whole process, so it does nothing there.
    ///
    /// - Returns: Whether the priority was lowered.
    @discardableResult
    static func lowerPriority(to nice: Int32) -> Bool {
        #if os(Linux)
            // Never raises it: a worker started at a higher nice value keeps that.
            let value = max(currentNice ?? 0, max(0, min(nice, 19)))
            return setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, value) == 0
        #else
            return false
        #endif
    }

    /// The calling thread's nice value (Linux), or nil.
    static var currentNice: Int32? {
        #if os(Linux)
            errno = 0
            let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            return errno == 0 ? value : nil
        #else
            return nil
        #endif
    }
}
