import Foundation
import TandemTestSupport
import Testing

@testable import TandemMQTT

@Suite("Connection life: last will, reconnect, resubscribe", .serialized, .timeLimit(.minutes(2)))
struct ConnectionLifeTests {
    @Test("the last will is published when the client process is killed with SIGKILL")
    func lastWillOnKill() async throws {
        try await MosquittoBroker.with { broker in
            let watcher = try await connectedClient(broker, "fleet-view")
            let status = try await watcher.subscribe(to: "tandem/v1/acme/+/status")
            let probe = try ProbeProcess(["will", "\(broker.port)", "edge-kill", "tandem/v1/acme/edge-kill/status"])
            try await probe.waitForLine(containing: "connected")
            probe.killHard()
            let will = try #require(try await collect(1, from: status, within: .seconds(10)).first)
            #expect(will.topic == "tandem/v1/acme/edge-kill/status")
            #expect(will.payloadString == "offline")
            await watcher.disconnect()
        }
    }

    @Test("a clean disconnect does not publish the last will")
    func noWillOnCleanDisconnect() async throws {
        try await MosquittoBroker.with { broker in
            let watcher = try await connectedClient(broker, "fleet-view")
            let status = try await watcher.subscribe(to: "tandem/v1/acme/+/status")
            let edge = try await connectedClient(broker, "edge") {
                $0.lastWill = .init(MQTTMessage(topic: "tandem/v1/acme/edge/status", string: "offline"))
            }
            await edge.disconnect()
            try await watcher.publish(MQTTMessage(topic: "tandem/v1/acme/marker/status", string: "marker"))
            let first = try await collect(1, from: status).first
            #expect(first?.payloadString == "marker")
            await watcher.disconnect()
        }
    }

    @Test("after a broker restart the client reconnects, resubscribes and receives again")
    func reconnectAndResubscribe() async throws {
        try await MosquittoBroker.with { broker in
            let subscriber = try await connectedClient(broker, "sub")
            let states = Shared<[MQTTConnectionState]>([])
            let observer = Task {
                for await state in subscriber.connectionStates() { states.withLock { $0.append(state) } }
            }
            let subscription = try await subscriber.subscribe(to: "tandem/reconnect")
            broker.stop()
            try await eventually("reconnecting state") {
                states.withLock { $0.contains { if case .reconnecting = $0 { true } else { false } } }
            }
            try await broker.start()
            try await eventually("reconnected") { subscriber.connectionState.isConnected }
            let publisher = try await connectedClient(broker, "pub")
            let received = Shared<[String]>([])
            let reader = Task {
                for await message in subscription { received.withLock { $0.append(message.payloadString) } }
            }
            // The resubscription races the publisher; publish until one message gets through.
            for _ in 0..<100 where received.withLock({ $0.isEmpty }) {
                try await publisher.publish(MQTTMessage(topic: "tandem/reconnect", string: "again"))
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(received.withLock { $0.first } == "again")
            reader.cancel()
            observer.cancel()
            await publisher.disconnect()
            await subscriber.disconnect()
        }
    }

    @Test("a QoS 1 publish while the broker is down is queued, acknowledged after the reconnect and sent once")
    func publishWhileDown() async throws {
        try await MosquittoBroker.with(MosquittoBroker.Options(persistence: true)) { broker in
            let subscriber = try await connectedClient(broker, "sub") {
                $0.cleanStart = false
                $0.sessionExpirySeconds = 3600
                $0.clientID = "down-sub"
            }
            let subscription = try await subscriber.subscribe(to: "tandem/down")
            let publisher = try await connectedClient(broker, "pub")
            broker.stop()
            try await eventually("publisher sees the broker gone") { !publisher.connectionState.isConnected }
            let results = Shared<[Result<MQTTPublishResult, MQTTError>]>([])
            for id in 0..<5 {
                try publisher.publish(MQTTMessage(topic: "tandem/down", string: "\(id)")) { result in
                    results.withLock { $0.append(result) }
                }
            }
            #expect(results.withLock { $0.isEmpty }, "nothing is acknowledged while the broker is down")
            try await broker.start()
            try await eventually("5 acknowledgements") { results.withLock { $0.count } == 5 }
            #expect(results.withLock { $0.allSatisfy { (try? $0.get().isAccepted) == true } })
            let received = try await collect(5, from: subscription)
            #expect(received.map(\.payloadString) == (0..<5).map(String.init))
            await #expect(throws: TimedOut.self, "no second copy") {
                _ = try await collect(1, from: subscription, within: .milliseconds(500))
            }
            await publisher.disconnect()
            await subscriber.disconnect()
        }
    }

    @Test("reconnect backoff grows exponentially and is jittered below its ceiling")
    func backoffShape() {
        let reconnect = MQTTClientConfiguration.Reconnect(
            initialDelayMilliseconds: 100, maximumDelayMilliseconds: 5_000)
        #expect(reconnect.ceilingMilliseconds(attempt: 0) == 100)
        #expect(reconnect.ceilingMilliseconds(attempt: 3) == 800)
        #expect(reconnect.ceilingMilliseconds(attempt: 10) == 5_000)
        #expect(reconnect.ceilingMilliseconds(attempt: 1_000) == 5_000)
        var generator = SystemRandomNumberGenerator()
        let samples = (0..<200).map { _ in reconnect.delayMilliseconds(attempt: 4, using: &generator) }
        #expect(samples.allSatisfy { (0...1_600).contains($0) })
        #expect(Set(samples).count > 20, "delays are spread, not lock-step")
    }
}
