import TandemMQTT
import TandemProtocol

extension EscalationServer {
    /// Takes one message as the escalation subscription would, then answers what it queued at once on the caller's
    /// thread rather than the batching thread's: the worker's whole handling of one message (topic and payload
    /// checks, storing, shape checks, standardization, the model, the verdict) without a broker or a wait.
    ///
    /// The fuzz target drives the worker through it; a stopped client makes each publish fail, which the worker
    /// logs and counts as it would a lost connection.
    ///
    /// - Returns: The verdicts the worker published or tried to publish, in order.
    @discardableResult
    package func handleNow(_ message: MQTTMessage) -> [Verdict] {
        receive(message)
        var verdicts = [Verdict]()
        while true {
            let batch = queue.take(maximum: configuration.maximumBatch, maximumWait: 0, idle: 0)
            if batch.isEmpty { return verdicts }
            verdicts += process(batch)
        }
    }

    /// Closes the worker's MQTT client (never started, for ``handleNow(_:)``): publishing then fails at once rather
    /// than queueing in the library for a connection that will not come.
    package func closeClient() async {
        await client.disconnect()
    }
}
