import Synchronization
import TandemMQTT
import TandemProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The agent's connection to the broker: escalations through the durable outbox, verdicts back, the
/// retained status with its last will, prediction records, and the model assignment.
///
/// The connection is made in the background and retried with backoff, so the agent runs (and journals
/// escalations) while the broker is away; everything journaled goes out, in order, once it is back.
public final class EdgeLink: EscalationTransport {
    /// The device's topics.
    public let topics: DeviceTopics
    /// The MQTT client.
    public let client: MQTTClient
    /// The escalation journal.
    public let outbox: DurableOutbox
    let log: @Sendable (String) -> Void
    private let counters = Mutex(Counters())
    private let verdictStream: (stream: AsyncStream<Verdict>, continuation: AsyncStream<Verdict>.Continuation)
    private let assignmentStream:
        (stream: AsyncStream<MQTTMessage>, continuation: AsyncStream<MQTTMessage>.Continuation)
    private let subscriber = Mutex<Task<Void, Never>?>(nil)
    /// The subscriptions whose messages a receiver hands over: kept, because a dropped subscription's stream ends
    /// it.
    private let forwarding = Mutex<[MQTTSubscription]>([])

    struct Counters {
        var refused = 0
        var badVerdicts = 0
    }

    /// Connects to the broker `configuration.broker` names and opens the outbox in `configuration.outbox`.
    ///
    /// - Throws: ``ConfigurationError`` for unusable broker settings or files (URL, password, CA, certificate,
    ///   key), `MQTTError` for TLS files libmosquitto refuses or an outbox directory that cannot be used.
    public init(configuration: AgentConfiguration, log: @escaping @Sendable (String) -> Void) throws {
        topics = DeviceTopics(fleet: configuration.device.fleet, device: configuration.device.id)
        self.log = log
        let offline = Self.offlineStatus(device: configuration.device.id)
        // The client id is the device's broker user, the one the broker's security file binds to it.
        var clientConfiguration = try Self.clientConfiguration(configuration.broker, clientID: topics.brokerUser)
        clientConfiguration.lastWill = .init(
            MQTTMessage(topic: topics.status, payload: Array(offline.utf8), qos: .atLeastOnce, retain: true))
        client = try MQTTClient(configuration: clientConfiguration)
        outbox = try DurableOutbox(
            configuration: .init(
                directory: configuration.outbox.directory,
                segmentBytes: min(4 * 1024 * 1024, max(4096, configuration.outbox.maxBytes / 4)),
                maximumBytes: configuration.outbox.maxBytes, sync: .interval(milliseconds: 100),
                // A few more than the client's window on the wire (100): enough to keep it full, while the
                // backlog stays in the journal rather than in the client's memory.
                overflow: .dropOldest, maximumInflight: 128),
            warn: { log("outbox: \($0)") })
        verdictStream = AsyncStream<Verdict>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        // Retained messages, one or two per connection; room for many reconnections' worth, so the revocation
        // list is never the message dropped.
        assignmentStream = AsyncStream<MQTTMessage>.makeStream(bufferingPolicy: .bufferingNewest(64))
    }

    /// The status message of a device that is gone (the last will, and the last word of a clean stop).
    static func offlineStatus(device: String) -> String {
        String(decoding: DeviceStatus.lastWill(device: device).encoded(), as: UTF8.self)
    }

    /// The MQTT client settings for `broker`: ``AgentConfiguration/Broker/brokerConfiguration()`` with the
    /// password file read, and the section's keepalive and reconnect timing.
    static func clientConfiguration(_ broker: AgentConfiguration.Broker, clientID: String)
        throws(ConfigurationError) -> MQTTClientConfiguration
    {
        let settings = try broker.brokerConfiguration()
        var configuration: MQTTClientConfiguration
        do throws(MQTTBrokerConfigurationError) {
            configuration = try settings.clientConfiguration(clientID: clientID)
        } catch {
            throw ConfigurationError(error, section: "broker")
        }
        configuration.keepAliveSeconds = broker.keepAliveSeconds
        configuration.reconnect = .init(maximumDelayMilliseconds: Int(broker.reconnectMaxSeconds * 1000))
        return configuration
    }

    /// Starts connecting (in the background, retried until it works) and sending what the outbox holds;
    /// subscribes to verdicts and the model assignment on every connection the broker did not keep a
    /// session for.
    public func start() {
        client.start()
        outbox.attach(to: client)
        let states = client.connectionStates()
        let task = Task { [weak self] in
            var subscribed = false
            for await state in states {
                guard let self else { return }
                if case .closed = state { break }
                guard state.isConnected, !subscribed else { continue }
                subscribed = await self.subscribeAll()
            }
        }
        subscriber.withLock { $0 = task }
    }

    /// Subscribes to the verdicts, the fleet's key revocation list, the model assignment and the agent policy; the
    /// client renews them after reconnects.
    ///
    /// The revocation list is subscribed before the assignment and both are handed over on the network thread
    /// into one stream, so a retained list arrives before the retained assignment it may revoke the key of.
    /// A broker whose ACL predates the list (a device provisioned before it) refuses that subscription; the
    /// agent then goes on with the revocations it recorded, and says so.
    private func subscribeAll() async -> Bool {
        do {
            let verdicts = try await client.subscribe(to: topics.verdicts, qos: .atLeastOnce)
            let forward: @Sendable (MQTTMessage) -> Void = { [weak self] message in
                self?.assignmentStream.continuation.yield(message)
            }
            do {
                let revocations = try await client.subscribe(
                    to: topics.revocations, qos: .atLeastOnce, receiver: forward)
                forwarding.withLock { $0.append(revocations) }
            } catch let error as MQTTError where error.code == .notAuthorized {
                log(
                    "link: the broker refuses \(topics.revocations) (provision the device again to grant it); "
                        + "key revocations are not followed: \(error)")
            }
            let assignments = try await client.subscribe(
                to: topics.modelAssignment, qos: .atLeastOnce, receiver: forward)
            forwarding.withLock { $0.append(assignments) }
            do {
                let policies = try await client.subscribe(to: topics.policy, qos: .atLeastOnce, receiver: forward)
                forwarding.withLock { $0.append(policies) }
            } catch let error as MQTTError where error.code == .notAuthorized {
                log(
                    "link: the broker refuses \(topics.policy) (provision the device again to grant it); remote "
                        + "agent policies are not followed: \(error)")
            }
            Task { [weak self] in
                for await message in verdicts { self?.receiveVerdict(message) }
            }
            log("link: connected to \(client.configuration.host):\(client.configuration.port), subscribed")
            return true
        } catch {
            log("link: subscribing failed, retrying on the next connection: \(error)")
            return false
        }
    }

    private func receiveVerdict(_ message: MQTTMessage) {
        do {
            verdictStream.continuation.yield(try Verdict(decoding: message.payload))
        } catch {
            let count = counters.withLock {
                $0.badVerdicts += 1
                return $0.badVerdicts
            }
            if count <= 10 || count.isMultiple(of: 1000) {
                log("link: verdict on \(message.topic) skipped (\(count) so far): \(error)")
            }
        }
    }

    /// Journals the escalation and sends it when the connection allows (QoS 1, response topic, correlation id).
    public func submit(_ payload: EscalationPayload, encoded: [UInt8]) {
        let id = payload.id.uuid
        let correlation = withUnsafeBytes(of: id) { Array($0) }
        let message = MQTTMessage(
            topic: topics.escalations, payload: encoded, qos: .atLeastOnce, retain: false,
            properties: MQTTPublishProperties(responseTopic: topics.verdicts, correlationData: correlation))
        do {
            try outbox.append(message)
        } catch {
            counters.withLock { $0.refused += 1 }
            log("link: escalation \(payload.id) not journaled: \(error)")
        }
    }

    /// Verdicts as they arrive.
    public func verdicts() -> AsyncStream<Verdict>? { verdictStream.stream }

    /// Key revocation lists and model assignments as they arrive, in the broker's order (retained ones first).
    public func assignments() -> AsyncStream<MQTTMessage> { assignmentStream.stream }

    /// Publishes the retained status (QoS 1); dropped if the broker is away — the next one replaces it.
    public func publishStatus(_ json: String) {
        publishStatus(json, onComplete: nil)
    }

    private func publishStatus(_ json: String, onComplete: (@Sendable (Result<MQTTPublishResult, MQTTError>) -> Void)?)
    {
        _ = try? client.publish(
            MQTTMessage(topic: topics.status, payload: Array(json.utf8), qos: .atLeastOnce, retain: true),
            onComplete: onComplete)
    }

    /// Escalations the outbox refused, and verdict messages that could not be read.
    public var errorCounts: (refusedEscalations: Int, badVerdicts: Int) {
        counters.withLock { ($0.refused, $0.badVerdicts) }
    }

    /// Waits (at most `timeout`) for the outbox to drain, publishes the final status retained, disconnects
    /// cleanly (the broker then drops the last will) and closes the outbox; what is still journaled stays on
    /// disk for the next start.
    public func close(finalStatus: String, timeout: Duration) async {
        if client.connectionState.isConnected {
            if !(await outbox.waitUntilDrained(timeout: timeout)) {
                log("link: \(outbox.statistics.pending) escalation(s) stay journaled for the next start")
            }
            // The final status replaces the retained one before the clean DISCONNECT (which drops the last
            // will): wait for its acknowledgement, two seconds at most.
            let box = AcknowledgementFlag()
            publishStatus(finalStatus) { _ in box.flag.store(true, ordering: .relaxed) }
            let deadline = ContinuousClock.now + .seconds(2)
            while !box.flag.load(ordering: .relaxed) && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
            }
        } else if outbox.statistics.pending > 0 {
            log(
                "link: broker unreachable; \(outbox.statistics.pending) escalation(s) stay journaled for the next start"
            )
        }
        subscriber.withLock { $0?.cancel() }
        outbox.close()
        await client.disconnect()
        verdictStream.continuation.finish()
        assignmentStream.continuation.finish()
    }
}

/// Set from the network thread when a publish is acknowledged.
private final class AcknowledgementFlag: Sendable {
    let flag = Atomic<Bool>(false)
}
