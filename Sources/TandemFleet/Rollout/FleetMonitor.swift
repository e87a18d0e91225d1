import Foundation
import Synchronization
import TandemMQTT
import TandemProtocol

/// The latest status of every device of a fleet, from the retained `tandem/v1/{fleet}/+/status` messages.
///
/// The device (and fleet) is taken from the topic (which the broker's ACL ties to the device's credentials),
/// not the payload. A last will (`state: offline` only) keeps the device's last known model and counters.
/// Payloads that are not status JSON are counted and skipped. The fleet `+` follows every fleet (the fleet
/// view of `tandem-cloud serve`); ``statuses`` is then keyed by device id alone, ``devices`` by both.
public final class FleetMonitor: Sendable {
    /// The fleet watched, or `+` for every fleet.
    public let fleet: String
    private let subscription: MQTTSubscription
    private let board = Board()
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    /// One device as the monitor last heard of it.
    public struct Device: Sendable, Equatable {
        /// The fleet (second topic level).
        public var fleet: String
        /// The latest status, merged with earlier ones across a last will.
        public var status: DeviceStatus
        /// When a status or last will of this device last arrived live, not as the broker's retained copy
        /// (whose age is unknown); nil if only the retained copy has been seen.
        public var lastSeen: Date?

        /// A device as given (tests and views build them; the monitor makes its own from status messages).
        package init(fleet: String, status: DeviceStatus, lastSeen: Date?) {
            self.fleet = fleet
            self.status = status
            self.lastSeen = lastSeen
        }
    }

    fileprivate struct Key: Hashable {
        var fleet: String
        var device: String
    }

    /// What the monitor knows of the fleet; ``take(_:at:)`` is the one way a status message changes it.
    package struct State: Sendable {
        fileprivate var devices: [Key: Device] = [:]
        /// Status messages that were not status JSON.
        package private(set) var unreadable = 0
        fileprivate var lastArrival = ContinuousClock.now

        /// Nothing known yet.
        package init() {}

        /// Every device seen, ordered by fleet and device id.
        package var orderedDevices: [Device] {
            devices.sorted { ($0.key.fleet, $0.key.device) < ($1.key.fleet, $1.key.device) }.map(\.value)
        }

        /// The latest status of each device seen, by device id.
        package var statuses: [String: DeviceStatus] {
            Dictionary(devices.map { ($0.key.device, $0.value.status) }, uniquingKeysWith: { first, _ in first })
        }

        /// Takes in one message of the status subscription, arrived at `now`: a status on a device's topic
        /// updates that device (the device is the topic's), anything else that is not empty counts as unreadable.
        package mutating func take(_ message: MQTTMessage, at now: Date) {
            lastArrival = .now
            guard let address = DeviceTopicAddress(topic: message.topic),
                var status = DeviceStatus(decoding: message.payload)
            else {
                if !message.payload.isEmpty { unreadable += 1 }
                return
            }
            let key = Key(fleet: address.fleet, device: address.device)
            status.device = key.device
            var device =
                devices[key].map {
                    Device(fleet: key.fleet, status: $0.status.updated(by: status), lastSeen: $0.lastSeen)
                }
                ?? Device(fleet: key.fleet, status: status, lastSeen: nil)
            if !message.retain { device.lastSeen = now }
            devices[key] = device
        }
    }

    /// The state, shared with the task that reads the subscription.
    private final class Board: Sendable {
        let state = Mutex(State())
    }

    /// Subscribes to the fleet's statuses with `client` (connected) and keeps them up to date until ``stop()``.
    ///
    /// - Parameter fleet: The fleet, or `+` for every fleet.
    /// - Throws: ``MQTTError`` if the broker refuses the subscription.
    public init(client: MQTTClient, fleet: String) async throws {
        self.fleet = fleet
        subscription = try await client.subscribe(
            to: ProtocolTopics.fleetDevices(.status, fleet: fleet), qos: .atLeastOnce)
        let subscription = self.subscription
        let board = self.board
        task.withLock {
            $0 = Task {
                for await message in subscription {
                    board.state.withLock { $0.take(message, at: Date()) }
                }
            }
        }
    }

    /// The latest status of each device seen, by device id.
    public var statuses: [String: DeviceStatus] { board.state.withLock { $0.statuses } }

    /// Every device seen, ordered by fleet and device id.
    public var devices: [Device] { board.state.withLock { $0.orderedDevices } }

    /// Status messages that were not status JSON.
    public var unreadableMessages: Int { board.state.withLock { $0.unreadable } }

    /// Waits until no status has arrived for `quiet` (the retained ones come in a burst after subscribing),
    /// at most `limit`.
    public func settle(quiet: Duration = .milliseconds(300), limit: Duration = .seconds(5)) async {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let last = board.state.withLock { $0.lastArrival }
            if ContinuousClock.now - last >= quiet { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Ends the subscription.
    public func stop() {
        subscription.cancel()
        task.withLock { $0?.cancel() }
    }
}
