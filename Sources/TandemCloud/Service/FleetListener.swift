import Foundation
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
    let log: @Sendable (String) -> Void
    private let monitor = Mutex<FleetMonitor?>(nil)
    private let stopping = Atomic<Bool>(false)

    /// The label filter every worker shares.
    public var labelFilter: String { ProtocolTopics.shared(.labels, group: configuration.group) }

    /// Creates the clients (connecting happens in ``run()``), with the broker settings of the escalation server.
    public init(
        configuration: EscalationServer.Configuration, labels: LabelIntake, log: @escaping @Sendable (String) -> Void
    ) throws {
        self.configuration = configuration
        self.labels = labels
        self.log = log
        func client(_ suffix: String, persistent: Bool) throws -> MQTTClient {
            try MQTTClient(
                configuration: MQTTClientConfiguration(
                    host: configuration.host, port: configuration.port,
                    clientID: "tandem-cloud-\(configuration.workerID)-\(suffix)", username: configuration.username,
                    password: configuration.password, cleanStart: !persistent,
                    sessionExpirySeconds: persistent ? 3600 : 0, reconnect: .init(maximumDelayMilliseconds: 5000)))
        }
        labelClient = try client("labels", persistent: true)
        fleetClient = try client("fleet", persistent: false)
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
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
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
                    log("worker \(configuration.workerID): listening for labels on \(labelFilter) and statuses")
                }
                while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(50))
                }
                subscription?.cancel()
                monitor?.stop()
            } onCancel: {
                self.stopping.store(true, ordering: .relaxed)
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
        }
        await labelClient.disconnect()
        await fleetClient.disconnect()
    }

    /// Waits for `client` to connect and makes its subscription, retrying; nil if stopped first.
    private func subscribe<Result: Sendable>(
        _ client: MQTTClient, what filter: String,
        _ make: @Sendable (MQTTClient, String) async throws -> Result
    ) async -> Result? {
        var failures = 0
        while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
            if client.connectionState.isConnected {
                do {
                    return try await make(client, filter)
                } catch {
                    failures += 1
                    if failures <= 3 {
                        log("worker \(configuration.workerID): subscribing to \(filter) failed, retrying: \(error)")
                    }
                }
            }
            if case .closed(let error) = client.connectionState {
                log("worker \(configuration.workerID): MQTT client for \(filter) closed: \(String(describing: error))")
                return nil
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }
}
