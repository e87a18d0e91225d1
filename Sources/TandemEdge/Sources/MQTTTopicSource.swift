import Synchronization
import TandemMQTT

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Sample lines from a topic on an MQTT broker (gateways often run one on the box): each message's payload
/// holds one or more lines, split as any other source's bytes are.
///
/// Connects in the background and keeps retrying, so the broker may start after the agent. A message is
/// one batch; at most 8 batches wait for the pipeline, then messages queue in the subscription's buffer
/// (10,000 messages; beyond that the oldest are dropped and counted in ``droppedMessages``).
public final class MQTTTopicSource: LineSource {
    /// `mqtt URL topic`, for messages.
    public let description: String
    let client: MQTTClient
    let topic: String
    let maximumLineBytes: Int
    let channel = SourceChannel()
    private let dropped = Atomic<Int>(0)
    private let subscribed = Atomic<Bool>(false)
    private let reader = Mutex<Task<Void, Never>?>(nil)

    /// Subscribes to `topic` on the broker at `url` (`mqtt://host[:port]`; a source has no credentials or TLS
    /// settings).
    ///
    /// - Throws: ``SourceError`` (`invalidParameter`) for a URL ``MQTTBrokerConfiguration`` refuses.
    public init(url: String, topic: String, clientID: String, maximumLineBytes: Int) throws(SourceError) {
        let configuration: MQTTClientConfiguration
        do throws(MQTTBrokerConfigurationError) {
            configuration = try MQTTBrokerConfiguration(url: url).clientConfiguration(clientID: clientID)
        } catch {
            throw SourceError(.invalidParameter, "mqtt source: \(error.message)")
        }
        do {
            client = try MQTTClient(configuration: configuration)
        } catch {
            throw SourceError(.invalidParameter, "mqtt source \(url): \(error)")
        }
        self.topic = topic
        self.maximumLineBytes = maximumLineBytes
        description = "mqtt \(url) \(topic)"
    }

    /// Whether the broker has acknowledged the subscription (messages published before are not seen).
    public var isSubscribed: Bool { subscribed.load(ordering: .relaxed) }

    /// Messages lost because the pipeline fell more than 10,000 messages behind.
    public var droppedMessages: Int { dropped.load(ordering: .relaxed) }

    /// The batches, one per message, until ``stop()``.
    public func batches() -> LineBatches {
        let task = Task { [self] in
            client.start()
            var splitter = LineSplitter(maximumLineBytes: maximumLineBytes)
            var lineNumber = 1
            outer: for await state in client.connectionStates() {
                if channel.isStopping { break }
                guard state.isConnected else { continue }
                let subscription: MQTTSubscription
                do {
                    subscription = try await client.subscribe(to: topic, qos: .atLeastOnce, bufferCapacity: 10_000)
                } catch {
                    continue  // not connected after all, or refused: try again on the next connection
                }
                subscribed.store(true, ordering: .relaxed)
                for await message in subscription {
                    var batch = LineBatch()
                    batch.firstLineNumber = lineNumber
                    message.payload.withUnsafeBytes { splitter.feed($0, into: &batch) }
                    splitter.finish(into: &batch)  // a message ends its last line
                    lineNumber += batch.lines.count + batch.overlongLines
                    // Wait for a free slot without blocking a cooperative thread.
                    while channel.slots.wait(timeout: .now()) == .timedOut {
                        if channel.isStopping { break outer }
                        try? await Task.sleep(for: .milliseconds(1))
                    }
                    channel.slots.signal()
                    channel.deliver(batch)
                    if channel.isStopping { break outer }
                }
                dropped.store(subscription.droppedMessageCount, ordering: .relaxed)
                if channel.isStopping { break }
            }
            await client.disconnect()
            channel.finish()
        }
        reader.withLock { $0 = task }
        return LineBatches(channel: channel)
    }

    /// Stops reading: what was received is delivered, then the batches end.
    public func stop() {
        channel.stop()
        Task { [client] in await client.disconnect() }
    }
}
