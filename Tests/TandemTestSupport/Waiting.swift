/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
public func waitUntil(_ limit: Duration = .seconds(15), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// How long a test waits for a process or in-process worker it started to come up (load its model, connect,
/// subscribe). A readiness wait, not a timing check: generous, because on a 2-core machine the suites that run
/// beside it (training, fuzz-corpus replays, ONNX Runtime children) can hold both cores for seconds.
public let startLimit: Duration = .seconds(90)
