/// Where a client's connection stands. Observe it with ``MQTTClient/connectionStates()``.
public enum MQTTConnectionState: Sendable, Hashable {
    /// Not started yet.
    case idle
    /// Opening the first connection.
    case connecting
    /// Connected; `sessionPresent` says whether the broker resumed a stored session.
    case connected(sessionPresent: Bool)
    /// Lost the connection (or was refused) and will try again after a backoff.
    case reconnecting(attempt: Int, lastError: MQTTError?)
    /// Shut down for good, by ``MQTTClient/disconnect()`` or because the first connection failed.
    case closed(MQTTError?)

    /// Whether the client is connected now.
    public var isConnected: Bool {
        if case .connected = self { return true }
        return false
    }
}
