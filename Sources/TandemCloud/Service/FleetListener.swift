import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TandemFleet
import TandemMQTT
import TandemProtocol

/// A worker's view of the fleet and its intake of labels over MQTT, as a `Service`.
///
/// Two MQTT clients beside the escalation server's:
/// * `tandem-cloud-{worker}-labels`, a persistent session in the shared group, subscribed to
///   `$share/{group}/tandem/v1/+/+/labels` at QoS 1: each label goes to one worker and is stored on the network
///   thread before it is acknowledged (the session keeps labels sent while every worker is away).
/// * `tandem-cloud-{worker}-fleet`, a clean session following `tandem/v1/+/+/status` (every fleet) with a
///   ``FleetMonitor``; after a reconnection it subscribes again, so the retained statuses come again.
public final class FleetListener: Service, Sendable {
    /// The labels received over MQTT go here.
    public let labels: LabelIntake
    let configuration: EscalationServer.Configuration
    let labelClient: MQTTClient
    let fleetClient: MQTTClient
    let logger: Logger
    private let monitor = Mutex<FleetMonitor?>(nil)

    /// The label filter every worker shares.
    public var labelFilter: String { ProtocolTopics.shared(.labels, group: configuration.group) }

    /// Creates the clients (connecting happens in ``run()``), with the broker settings of the escalation server.
    ///
    /// - Parameter logger: Where its lines go, with the `worker` metadata set.
    public init(configuration: EscalationServer.Configuration, labels: LabelIntake, logger: Logger) throws {
        self.configuration = configuration
        self.labels = labels
        self.logger = logger
        labelClient = try MQTTClient(
            configuration: configuration.clientConfiguration(suffix: "-labels", persistent: true))
        fleetClient = try MQTTClient(
            configuration: configuration.clientConfiguration(suffix: "-fleet", persistent: false))
    }

    /// Every device seen so far (empty until the fleet subscription is made).
    public var devices: [FleetMonitor.Device] { monitor.withLock { $0 }?.devices ?? [] }

    /// Whether both clients are connected to the broker now.
    public var isConnected: Bool { labelClient.connectionState.isConnected && fleetClient.connectionState.isConnected }

    /// Connects (retrying while the broker is away), subscribes and listens until a graceful shutdown or
    /// cancellation; then disconnects both clients.
    public func run() async throws {
        // Labels the session kept while this worker was away arrive before the subscription is renewed.
        labelClient.receiveSessionMessages { [labels] message in
            guard DeviceTopicAddress(topic: message.topic)?.kind == .labels else { return }
            labels.receive(payload: message.payload, topic: message.topic)
        }
        labelClient.start()
        fleetClient.start()
        async let labelSubscription = subscribe(labelClient, what: labelFilter) { [labels] client, filter in
            try await client.subscribe(to: filter, qos: .atLeastOnce) { message in
                labels.receive(payload: message.payload, topic: message.topic)
            }
        }
        async let fleet = subscribe(fleetClient, what: ProtocolTopics.allDevices(.status)) { client, _ in
            try await FleetMonitor(client: client, fleet: "+")
        }
        let (subscription, monitor) = await (labelSubscription, fleet)
        self.monitor.withLock { $0 = monitor }
        if subscription != nil && monitor != nil {
            logger.info("listening for labels on \(labelFilter) and statuses")
        }
        // Returns at once if the shutdown came while subscribing; throws only on cancellation.
        try? await gracefulShutdown()
        subscription?.cancel()
        monitor?.stop()
        await labelClient.disconnect()
        await fleetClient.disconnect()
    }

    /// Waits for `client` to connect and makes its subscription, retrying while connected and again at each
    /// reconnection; nil after a graceful shutdown or cancellation first, or if the client closed.
    private func subscribe<Result: Sendable>(
        _ client: MQTTClient, what filter: String,
        _ make: @Sendable (MQTTClient, String) async throws -> Result
    ) async -> Result? {
        var failures = 0
        for await state in client.connectionStates().cancelOnGracefulShutdown() {
            if case .closed(let error) = state {
                logger.error("MQTT client for \(filter) closed: \(escaping: String(describing: error))")
                return nil
            }
            while client.connectionState.isConnected && !Task.isShuttingDownGracefully && !Task.isCancelled {
                do {
                    return try await make(client, filter)
                } catch {
                    failures += 1
                    if failures <= 3 {
                        logger.warning("subscribing to \(filter) failed, retrying: \(escaping: error)")
                    }
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(100)) }
                }
            }
        }
        return nil
    }
}
