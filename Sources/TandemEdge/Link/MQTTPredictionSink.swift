import Synchronization
import TandemMQTT

/// Publishes each record as one JSON message on the device's `…/predictions` topic (QoS 0: a live feed;
/// records made while the broker is away are counted as dropped, never queued without bound).
public final class MQTTPredictionSink: PredictionSink {
    let client: MQTTClient
    let topic: String
    /// How often the agent calls ``flush()`` (nothing is buffered here).
    public let flushIntervalSeconds: Double
    private let dropped = Atomic<Int>(0)

    /// Publishes to `topic` through `client`.
    public init(client: MQTTClient, topic: String, flushIntervalSeconds: Double = 1) {
        self.client = client
        self.topic = topic
        self.flushIntervalSeconds = flushIntervalSeconds
    }

    /// Publishes one record.
    public func write(_ record: PredictionRecord) {
        var bytes = [UInt8]()
        record.appendJSONLine(to: &bytes)
        if bytes.last == 0x0A { bytes.removeLast() }
        do {
            try client.publish(MQTTMessage(topic: topic, payload: bytes, qos: .atMostOnce, retain: false))
        } catch {
            dropped.add(1, ordering: .relaxed)
        }
    }

    /// Nothing to write out: each record is published as it comes.
    public func flush() throws(SinkError) {}

    /// Records not published because the client was not connected.
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }
}
