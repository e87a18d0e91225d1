/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
public func waitUntil(_ limit: Duration = .seconds(15), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}
