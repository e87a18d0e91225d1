import Foundation
import Synchronization
import TandemMQTT
import TandemTestSupport
import Testing

@Suite("Publish and subscribe against a real broker", .serialized, .timeLimit(.minutes(2)))
struct PublishSubscribeTests {
    @Test("a message arrives intact at every QoS", arguments: MQTTQoS.allCases)
    func roundTripAtEveryQoS(qos: MQTTQoS) async throws {
        try await MosquittoBroker.with { broker in
            let log = PacketLog()
            let subscriber = try await connectedClient(broker, "sub", log: log)
            let publisher = try await connectedClient(broker, "pub", log: log)
            let subscription = try await subscriber.subscribe(to: "tandem/test/qos", qos: qos)
            #expect(subscription.grantedQoS == qos)
            let payloads = (0..<50).map { "message \($0) at qos \(qos.rawValue)" }
            for payload in payloads {
                let result = try await publisher.publish(
                    MQTTMessage(topic: "tandem/test/qos", string: payload, qos: qos))
                #expect(result.isAccepted)
            }
            do {
                let received = try await collect(payloads.count, from: subscription)
                #expect(received.map(\.payloadString) == payloads)
                #expect(received.allSatisfy { $0.qos == qos && $0.topic == "tandem/test/qos" })
            } catch {
                Issue.record(error, "client packet trace:\n\(log.text)\nbroker log:\n\(broker.logText)")
            }
            await publisher.disconnect()
            await subscriber.disconnect()
        }
    }

    @Test("a QoS 2 burst far beyond the broker's in-flight window arrives complete and in order")
    func qos2Burst() async throws {
        // mosquitto 2.0.11 sends more than the subscriber's receive maximum once acknowledgements come back
        // while more messages are queued; with libmosquitto's default maximum of 20 the subscriber then drops
        // the connection with a protocol error and the clean session loses the rest.
        try await MosquittoBroker.with { broker in
            let log = PacketLog()
            let subscriber = try await connectedClient(broker, "sub", log: log)
            let publisher = try await connectedClient(broker, "pub")
            let subscription = try await subscriber.subscribe(to: "tandem/test/burst", qos: .exactlyOnce)
            let states = subscriber.connectionStates()
            let watcher = Task {
                let record = log.recorder(for: "state")
                for await state in states { record(.info, "\(state)") }
            }
            let payloads = (0..<500).map { "burst \($0)" }
            for payload in payloads {
                try publisher.publish(
                    MQTTMessage(topic: "tandem/test/burst", string: payload, qos: .exactlyOnce), onComplete: nil)
            }
            do {
                let received = try await collect(payloads.count, from: subscription)
                #expect(received.map(\.payloadString) == payloads)
            } catch {
                Issue.record(error, "subscriber trace:\n\(log.text)")
            }
            watcher.cancel()
            await publisher.disconnect()
            await subscriber.disconnect()
        }
    }

    @Test("a retained message reaches a subscriber that comes later")
    func retainedMessage() async throws {
        try await MosquittoBroker.with { broker in
            let publisher = try await connectedClient(broker, "pub")
            try await publisher.publish(
                MQTTMessage(topic: "tandem/v1/f/d/status", string: "model v7", qos: .atLeastOnce, retain: true))
            let late = try await connectedClient(broker, "late")
            let subscription = try await late.subscribe(to: "tandem/v1/+/+/status")
            let received = try await collect(1, from: subscription)
            #expect(received.first?.payloadString == "model v7")
            #expect(received.first?.retain == true)
            await publisher.disconnect()
            await late.disconnect()
        }
    }

    @Test("request/response carries response topic, correlation data and user properties")
    func requestResponse() async throws {
        try await MosquittoBroker.with { broker in
            let server = try await connectedClient(broker, "server")
            let edge = try await connectedClient(broker, "edge")
            let requests = try await server.subscribe(to: "tandem/v1/f/d/escalations")
            let verdicts = try await edge.subscribe(to: "tandem/v1/f/d/verdicts")
            let serverTask = Task {
                for await request in requests {
                    guard let responseTopic = request.properties.responseTopic else { continue }
                    let reply = MQTTPublishProperties(
                        userProperties: [MQTTUserProperty("model", "v3")],
                        correlationData: request.properties.correlationData)
                    try await server.publish(
                        MQTTMessage(topic: responseTopic, string: "label=bearing-fault", properties: reply))
                }
            }
            let correlation: [UInt8] = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]
            try await edge.publish(
                MQTTMessage(
                    topic: "tandem/v1/f/d/escalations", payload: [1, 2, 3],
                    properties: MQTTPublishProperties(
                        userProperties: [MQTTUserProperty("escalation-id", "e-42")],
                        responseTopic: "tandem/v1/f/d/verdicts", correlationData: correlation,
                        messageExpirySeconds: 60, contentType: "application/x-tandem-window")))
            let reply = try #require(try await collect(1, from: verdicts).first)
            #expect(reply.properties.correlationData == correlation)
            #expect(reply.properties.userProperty("model") == "v3")
            #expect(reply.payloadString == "label=bearing-fault")
            serverTask.cancel()
            await edge.disconnect()
            await server.disconnect()
        }
    }

    @Test("a shared subscription spreads messages over 3 subscribers, each delivered once")
    func sharedSubscription() async throws {
        try await MosquittoBroker.with { broker in
            var workers: [MQTTClient] = []
            var subscriptions: [MQTTSubscription] = []
            for index in 0..<3 {
                let worker = try await connectedClient(broker, "worker\(index)")
                workers.append(worker)
                subscriptions.append(
                    try await worker.subscribe(to: "$share/tandem-cloud/tandem/v1/+/+/escalations"))
            }
            let counts = Shared<[Int: [String]]>([:])
            let readers = subscriptions.enumerated().map { index, subscription in
                Task {
                    for await message in subscription {
                        counts.withLock { $0[index, default: []].append(message.payloadString) }
                    }
                }
            }
            let publisher = try await connectedClient(broker, "edge")
            let total = 300
            for id in 0..<total {
                try await publisher.publish(MQTTMessage(topic: "tandem/v1/f/dev\(id % 7)/escalations", string: "\(id)"))
            }
            try await eventually("all \(total) shared messages") {
                counts.withLock { $0.values.reduce(0) { $0 + $1.count } } == total
            }
            let perWorker = counts.withLock { $0 }
            #expect(perWorker.count == 3, "every worker got some messages: \(perWorker.mapValues(\.count))")
            #expect(perWorker.values.allSatisfy { $0.count >= 10 })
            #expect(Set(perWorker.values.flatMap { $0 }).count == total)
            for reader in readers { reader.cancel() }
            await publisher.disconnect()
            for worker in workers { await worker.disconnect() }
        }
    }

    @Test("a retained message with a message expiry is gone once it expires")
    func messageExpiry() async throws {
        try await MosquittoBroker.with { broker in
            let publisher = try await connectedClient(broker, "pub")
            try await publisher.publish(
                MQTTMessage(
                    topic: "tandem/expiring", string: "short-lived", retain: true,
                    properties: MQTTPublishProperties(messageExpirySeconds: 1)))
            try await publisher.publish(MQTTMessage(topic: "tandem/lasting", string: "kept", retain: true))
            try await Task.sleep(for: .milliseconds(2_100))
            let late = try await connectedClient(broker, "late")
            let lasting = try await late.subscribe(to: "tandem/lasting")
            let expiring = try await late.subscribe(to: "tandem/expiring")
            #expect(try await collect(1, from: lasting).first?.payloadString == "kept")
            await #expect(throws: TimedOut.self) {
                _ = try await collect(1, from: expiring, within: .milliseconds(500))
            }
            await publisher.disconnect()
            await late.disconnect()
        }
    }

    @Test("MQTT 3.1.1 is selectable and still delivers")
    func protocol311() async throws {
        try await MosquittoBroker.with { broker in
            let subscriber = try await connectedClient(broker, "sub311") { $0.protocolVersion = .v311 }
            let publisher = try await connectedClient(broker, "pub311") { $0.protocolVersion = .v311 }
            let subscription = try await subscriber.subscribe(to: "tandem/old/#")
            try await publisher.publish(MQTTMessage(topic: "tandem/old/a", string: "hello"))
            #expect(try await collect(1, from: subscription).first?.payloadString == "hello")
            await publisher.disconnect()
            await subscriber.disconnect()
        }
    }

    @Test("a full subscription buffer drops the oldest message and counts it")
    func boundedBuffer() async throws {
        try await MosquittoBroker.with { broker in
            let subscriber = try await connectedClient(broker, "slow")
            let publisher = try await connectedClient(broker, "fast")
            let subscription = try await subscriber.subscribe(
                to: "tandem/burst", qos: .atLeastOnce, bufferCapacity: 10, whenFull: .dropOldest)
            for id in 0..<100 {
                try await publisher.publish(MQTTMessage(topic: "tandem/burst", string: "\(id)"))
            }
            try await eventually("90 drops") { subscription.droppedMessageCount == 90 }
            let kept = try await collect(10, from: subscription)
            #expect(kept.map(\.payloadString) == (90..<100).map(String.init))
            await publisher.disconnect()
            await subscriber.disconnect()
        }
    }
}
