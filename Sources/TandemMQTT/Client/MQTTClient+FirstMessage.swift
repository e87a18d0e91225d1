extension MQTTClient {
    /// The first non-empty message on `topic` — a retained one arrives at once — or nil if none arrives within
    /// `timeout`; the subscription is cancelled either way.
    ///
    /// - Throws: ``MQTTError`` if the broker refuses the subscription.
    public func firstMessage(on topic: String, timeout: Duration) async throws -> [UInt8]? {
        let subscription = try await subscribe(to: topic, qos: .atLeastOnce, bufferCapacity: 1)
        let timer = Task {
            try? await Task.sleep(for: timeout)
            subscription.cancel()
        }
        defer {
            timer.cancel()
            subscription.cancel()
        }
        for await message in subscription where !message.payload.isEmpty {
            return message.payload
        }
        return nil
    }
}
