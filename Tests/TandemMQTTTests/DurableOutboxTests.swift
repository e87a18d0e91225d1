import Foundation
import TandemMQTT
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Journal behaviour without a broker: recovery, damage, bounds.
struct DurableOutboxJournalTests {
    private func message(_ id: Int, bytes: Int = 40) -> MQTTMessage {
        MQTTMessage(
            topic: "tandem/v1/f/d/escalations", string: "\(id) " + String(repeating: "w", count: bytes),
            properties: MQTTPublishProperties(
                userProperties: [MQTTUserProperty("escalation-id", "e-\(id)")], responseTopic: "tandem/v1/f/d/verdicts",
                correlationData: [UInt8(id & 0xFF)], messageExpirySeconds: 600))
    }

    private func segments(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".journal") }.sorted()
    }

    @Test("journaled messages survive a reopen and numbering carries on")
    func replayAfterReopen() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let directory = scratch.url.path
        do {
            let outbox = try DurableOutbox(configuration: .init(directory: directory, sync: .everyAppend))
            try outbox.append(contentsOf: (0..<100).map { message($0) })
            outbox.close()
        }
        let reopened = try DurableOutbox(configuration: .init(directory: directory))
        #expect(reopened.statistics.recoveredOnOpen == 100)
        #expect(reopened.statistics.truncatedTails == 0)
        let sequence = try reopened.append(message(100))
        #expect(sequence == 101, "numbering carries on after the recovered messages")
        reopened.close()
    }

    @Test("a torn tail from a crash mid-write is cut off with a warning, not fatal")
    func tornTail() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let directory = scratch.url.path
        do {
            let outbox = try DurableOutbox(configuration: .init(directory: directory, sync: .everyAppend))
            try outbox.append(contentsOf: (0..<10).map { message($0) })
            outbox.close()
        }
        let segment = "\(directory)/\(try #require(try segments(in: directory).last))"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: segment)[.size] as? Int)
        #expect(truncate(segment, off_t(size - 7)) == 0)
        let warnings = Shared<[String]>([])
        let reopened = try DurableOutbox(configuration: .init(directory: directory)) { text in
            warnings.withLock { $0.append(text) }
        }
        #expect(reopened.statistics.recoveredOnOpen == 9)
        #expect(reopened.statistics.truncatedTails == 1)
        #expect(warnings.withLock { $0.count } == 1)
        #expect(warnings.withLock { $0.first?.contains("truncated") ?? false })
        try reopened.append(message(10))
        reopened.close()
        let again = try DurableOutbox(configuration: .init(directory: directory))
        #expect(again.statistics.recoveredOnOpen == 10, "appends after the cut are readable")
        #expect(again.statistics.truncatedTails == 0)
        again.close()
    }

    @Test("a flipped byte fails the CRC and ends the segment there")
    func corruptRecord() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let directory = scratch.url.path
        do {
            let outbox = try DurableOutbox(configuration: .init(directory: directory, sync: .everyAppend))
            for id in 0..<5 { try outbox.append(message(id)) }
            outbox.close()
        }
        let segment = "\(directory)/\(try #require(try segments(in: directory).last))"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: segment)))
        let recordSize = bytes.count / 5
        bytes[recordSize * 3 + 20] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let warnings = Shared<[String]>([])
        let reopened = try DurableOutbox(configuration: .init(directory: directory)) { text in
            warnings.withLock { $0.append(text) }
        }
        #expect(reopened.statistics.recoveredOnOpen == 3)
        #expect(warnings.withLock { $0.first?.contains("checksumMismatch") ?? false })
        reopened.close()
    }

    @Test("refuseNew throws outboxFull at the byte bound and counts it")
    func refuseNewWhenFull() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let outbox = try DurableOutbox(
            configuration: .init(
                directory: scratch.url.path, segmentBytes: 4096, maximumBytes: 16_384, overflow: .refuseNew))
        var accepted = 0
        var refusal: MQTTError?
        while refusal == nil && accepted < 10_000 {
            do {
                try outbox.append(message(accepted, bytes: 200))
                accepted += 1
            } catch let error as MQTTError {
                refusal = error
            }
        }
        #expect(refusal?.code == .outboxFull)
        #expect(outbox.statistics.refusedOnOverflow == 1)
        #expect(outbox.statistics.journalBytes <= 16_384)
        #expect(accepted > 40)
        outbox.close()
    }

    @Test("dropOldest keeps the newest messages within the bound and counts the drops")
    func dropOldestWhenFull() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let directory = scratch.url.path
        do {
            let outbox = try DurableOutbox(
                configuration: .init(
                    directory: directory, segmentBytes: 4096, maximumBytes: 16_384, overflow: .dropOldest))
            for id in 0..<500 { try outbox.append(message(id, bytes: 200)) }
            let statistics = outbox.statistics
            #expect(statistics.droppedOnOverflow > 0)
            #expect(statistics.pending + statistics.droppedOnOverflow == 500)
            #expect(statistics.journalBytes <= 16_384)
            outbox.close()
        }
        let reopened = try DurableOutbox(
            configuration: .init(directory: directory, segmentBytes: 4096, maximumBytes: 16_384))
        #expect(reopened.statistics.recoveredOnOpen > 0)
        #expect(reopened.statistics.recoveredOnOpen < 500)
        reopened.close()
    }

    @Test("the deduplicator passes each id once and forgets the oldest beyond capacity")
    func deduplicator() {
        var deduplicator = MessageDeduplicator<String>(capacity: 3)
        let sightings = ["a", "a", "b", "c", "d", "a", "d"].map { deduplicator.isFirstSighting($0) }
        #expect(sightings == [true, false, true, true, true, true, false], "a is forgotten once d arrives")
        #expect(deduplicator.count == 3)
    }
}

@Suite("Durable outbox against a real broker", .serialized, .timeLimit(.minutes(3)))
struct DurableOutboxDeliveryTests {
    /// A subscriber whose session (and so its subscription) outlives a restart of the broker.
    private func persistentSubscriber(
        _ broker: MosquittoBroker, clientID: String, topic: String, log: PacketLog
    ) async throws -> (MQTTClient, MQTTSubscription) {
        let subscriber = try await connectedClient(broker, "sub", log: log) {
            $0.cleanStart = false
            $0.sessionExpirySeconds = 3600
            $0.clientID = clientID
        }
        return (subscriber, try await subscriber.subscribe(to: topic))
    }

    @Test("messages appended while the broker is down are delivered after it returns, and leave the journal")
    func deliversAfterBrokerReturns() async throws {
        try await MosquittoBroker.with(MosquittoBroker.Options(persistence: true)) { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let log = PacketLog()
            let (subscriber, subscription) = try await persistentSubscriber(
                broker, clientID: "outbox-sub", topic: "tandem/outbox", log: log)
            let client = try await connectedClient(broker, "edge", log: log)
            let states = client.connectionStates()
            let watcher = Task {
                let record = log.recorder(for: "edge state")
                for await state in states { record(.info, "\(state)") }
            }
            defer { watcher.cancel() }
            let outbox = try DurableOutbox(configuration: .init(directory: scratch.url.path, segmentBytes: 4096))
            outbox.attach(to: client)
            broker.stop()
            for id in 0..<200 {
                try outbox.append(
                    MQTTMessage(
                        topic: "tandem/outbox", string: "\(id)",
                        properties: MQTTPublishProperties(userProperties: [MQTTUserProperty("seq", "\(id)")])))
            }
            #expect(outbox.statistics.pending == 200)
            let segmentsWhileDown = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).count
            #expect(segmentsWhileDown > 2, "200 messages span several 4 KiB segments")
            try await broker.start()
            let drained = await outbox.waitUntilDrained(timeout: .seconds(10))
            #expect(drained, "outbox \(outbox.statistics); client trace:\n\(log.text)\nbroker log:\n\(broker.logText)")
            var seen = MessageDeduplicator<String>()
            var firstSightings: [String] = []
            for await message in subscription {
                #expect(message.properties.userProperty("seq") == message.payloadString)
                if seen.isFirstSighting(message.payloadString) { firstSightings.append(message.payloadString) }
                if firstSightings.count == 200 { break }
            }
            #expect(firstSightings == (0..<200).map(String.init), "delivered in the order appended")
            #expect(outbox.statistics.delivered >= 200)
            // Acknowledged segments are deleted by the outbox's flusher; only the active one is left.
            try await eventually("one segment left") {
                (try? FileManager.default.contentsOfDirectory(atPath: scratch.url.path).count) == 1
            }
            outbox.close()
            await client.disconnect()
            await subscriber.disconnect()
        }
    }

    @Test("a backlog is sent from the journal, not from memory: a record damaged on disk meanwhile is dropped")
    func backlogReadBackFromJournal() async throws {
        try await MosquittoBroker.with(MosquittoBroker.Options(persistence: true)) { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let log = PacketLog()
            let (subscriber, subscription) = try await persistentSubscriber(
                broker, clientID: "journal-sub", topic: "tandem/journal", log: log)
            let client = try await connectedClient(broker, "edge", log: log)
            let warnings = Shared<[String]>([])
            // Five in flight: the client takes five at once, the other fifteen wait in the outbox's queue.
            let outbox = try DurableOutbox(
                configuration: .init(directory: scratch.url.path, maximumInflight: 5)
            ) { text in warnings.withLock { $0.append(text) } }
            broker.stop()
            try await eventually("the client sees the broker gone") { !client.connectionState.isConnected }
            outbox.attach(to: client)
            for id in 0..<20 {
                try outbox.append(MQTTMessage(topic: "tandem/journal", string: "payload-\(id)-end"))
            }
            // Damage message 12's payload on disk while it waits.
            let segment = try #require(
                try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).first { $0.hasSuffix(".journal") }
            )
            let path = "\(scratch.url.path)/\(segment)"
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let marker = Array("payload-12-end".utf8)
            let at = try #require(
                (0...(bytes.count - marker.count)).first { Array(bytes[$0..<($0 + marker.count)]) == marker })
            // In place, as a bad sector would: the outbox keeps appending to the same file.
            let descriptor = open(path, O_WRONLY)
            var flipped = bytes[at + 8] ^ 0x01
            #expect(pwrite(descriptor, &flipped, 1, off_t(at + 8)) == 1)
            close(descriptor)
            try await broker.start()
            #expect(await outbox.waitUntilDrained(timeout: .seconds(10)), "\(outbox.statistics)\n\(log.text)")
            var received = Set<String>()
            for await message in subscription {
                received.insert(message.payloadString)
                if received.count == 19 { break }
            }
            #expect(received == Set((0..<20).filter { $0 != 12 }.map { "payload-\($0)-end" }))
            #expect(outbox.statistics.rejected == 1)
            #expect(
                warnings.withLock { $0 }.contains { $0.contains("message 13 cannot be read back") },
                "\(warnings.withLock { $0 })")
            outbox.close()
            await client.disconnect()
            await subscriber.disconnect()
        }
    }

    @Test("a message the ACL rejects leaves the outbox as rejected instead of blocking it")
    func rejectedMessageLeaves() async throws {
        let options = MosquittoBroker.Options(
            users: ["edge-7": "pw"], acl: "user edge-7\ntopic write tandem/v1/acme/edge-7/#\n")
        try await MosquittoBroker.with(options) { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let client = try await connectedClient(broker, "edge") {
                $0.username = "edge-7"
                $0.password = "pw"
            }
            let warnings = Shared<[String]>([])
            let outbox = try DurableOutbox(configuration: .init(directory: scratch.url.path)) { text in
                warnings.withLock { $0.append(text) }
            }
            outbox.attach(to: client)
            try outbox.append(MQTTMessage(topic: "tandem/v1/acme/edge-8/escalations", string: "foreign"))
            try outbox.append(MQTTMessage(topic: "tandem/v1/acme/edge-7/escalations", string: "own"))
            #expect(await outbox.waitUntilDrained(timeout: .seconds(10)))
            #expect(outbox.statistics.rejected == 1)
            #expect(outbox.statistics.delivered == 1)
            #expect(warnings.withLock { $0.contains { $0.contains("edge-8") && $0.contains("135") } })
            outbox.close()
            await client.disconnect()
        }
    }

    /// The durability claim end to end: a separate publisher process journals 20,000 QoS 1 messages while
    /// the broker is stopped and restarted twice and the publisher itself is killed with SIGKILL once.
    @Test("20,000 messages survive two broker restarts and a SIGKILL of the publisher")
    func durabilityUnderFailures() async throws {
        try await MosquittoBroker.with(MosquittoBroker.Options(persistence: true)) { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let total = 20_000
            let subscriber = try await connectedClient(broker, "sub") {
                $0.clientID = "durability-sub"
                $0.cleanStart = false
                $0.sessionExpirySeconds = 3600
            }
            let subscription = try await subscriber.subscribe(
                to: "tandem/durable", qos: .atLeastOnce, bufferCapacity: 100_000)
            let progress = Shared<(unique: Int, duplicates: Int, ids: Set<Int>)>((0, 0, []))
            let reader = Task {
                for await message in subscription {
                    guard let id = Int(message.payloadString.prefix { $0 != " " }) else { continue }
                    progress.withLock { state in
                        if state.ids.insert(id).inserted { state.unique += 1 } else { state.duplicates += 1 }
                    }
                }
            }
            func unique() -> Int { progress.withLock { $0.unique } }
            let arguments = ["outbox", "\(broker.port)", scratch.url.path, "tandem/durable", "\(total)", "500", "25"]

            var publisher = try ProbeProcess(arguments)
            try await eventually(within: .seconds(30), "3,000 delivered") { unique() >= 3_000 }
            // First outage: the publisher keeps accepting into its journal, then dies with SIGKILL.
            broker.stop()
            try await Task.sleep(for: .milliseconds(200))
            publisher.killHard()
            let atKill = unique()
            try await broker.start()
            publisher = try ProbeProcess(arguments)
            try await publisher.waitForLine(containing: "recovered")
            let recovered = publisher.text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            #expect(recovered > 0, "the restarted publisher replays what the killed one journaled")
            try await eventually(within: .seconds(30), "12,000 delivered") { unique() >= max(12_000, atKill + 1) }
            // Second outage, with the restarted publisher running.
            broker.stop()
            try await Task.sleep(for: .milliseconds(300))
            try await broker.start()
            try await eventually(within: .seconds(60), "all \(total) delivered") { unique() == total }
            try await publisher.waitForLine(containing: "drained", within: .seconds(30))
            publisher.process.waitUntilExit()
            #expect(publisher.process.terminationStatus == 0)

            let final = progress.withLock { $0 }
            #expect(
                final.ids == Set(0..<total), "missing: \(Set(0..<total).subtracting(final.ids).sorted().prefix(20))")
            #expect(atKill < total, "the publisher was killed while messages were still in flight")
            #expect(subscription.droppedMessageCount == 0)
            reader.cancel()
            await subscriber.disconnect()
        }
    }
}
