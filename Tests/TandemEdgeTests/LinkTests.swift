import Foundation
import Synchronization
import TandemCore
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

@testable import TandemEdge

/// The agent against a real mosquitto, with a test responder in place of the cloud.
@Suite(.serialized)
struct LinkTests {
    /// Starts an agent from `configuration` fed by a ``PushSource``, with records collected in memory.
    func startAgent(_ configuration: AgentConfiguration) throws -> (
        EdgeAgent, PushSource, CollectingSink, Task<Void, any Error>
    ) {
        let classifier = try EdgeModelFiles(path: configuration.model.path).open(configuration.model) { _ in }
        let source = PushSource()
        let sink = CollectingSink()
        let link = try EdgeLink(configuration: configuration, log: { _ in })
        let agent = try EdgeAgent(
            configuration: configuration, classifier: classifier, sources: [source], sinks: [sink], link: link,
            log: { _ in })
        let run = Task { try await agent.run() }
        return (agent, source, sink, run)
    }

    @Test(
        "escalations follow the threshold policy, reach the responder with correlation data, and verdicts replace edge predictions"
    )
    func verdictsReplacePredictions() async throws {
        try await MosquittoBroker.with { broker in
            let (scratch, linked) = try linkedSetup(broker)
            defer { scratch.remove() }
            var configuration = linked
            configuration.verdictDeadlineMs = 20_000
            let responder = try await TestResponder(port: broker.port, classes: 3)
            let (agent, source, sink, run) = try startAgent(configuration)
            #expect(await waitUntil { agent.link?.client.connectionState.isConnected == true })
            await source.push(sampleLines(from: 0, count: 800))
            source.stop()
            try await run.value
            await responder.close()

            let records = sink.snapshot.filter { $0.kind == .prediction }
            let expectedWindows = (800 - 8) / 4 + 1
            #expect(records.count == expectedWindows)
            let escalated = records.filter(\.escalated)
            // The policy: exactly the windows whose confidence is below the threshold are escalated, and the audits
            // (1 % of the confident ones, by default), which say so.
            let followsPolicy = records.allSatisfy { (record: PredictionRecord) -> Bool in
                record.escalated == (record.confidence < 0.6 || record.reason == .audit)
                    && (record.reason == .audit) == (record.escalated && record.confidence >= 0.6)
            }
            #expect(followsPolicy)
            let (escalatedCount, total) = (escalated.count, records.count)
            #expect(escalatedCount > 10 && escalatedCount < total - 10, "\(escalatedCount) of \(total)")
            // Every escalation reached the responder with its correlation id, once journaled and acknowledged.
            #expect(Set(responder.ids) == Set(escalated.compactMap(\.escalationId)))
            // Each escalated window's record is the cloud's verdict, final.
            let answered = escalated.filter { (record: PredictionRecord) -> Bool in
                record.origin == .cloud && !record.provisional && record.modelVersion == "cloud-1"
            }
            #expect(answered.count == escalated.count)
            let edgeFinal = records.filter { (record: PredictionRecord) -> Bool in
                !record.escalated && record.origin == .edge && !record.provisional
            }
            #expect(edgeFinal.count == records.count - escalated.count)
            #expect(agent.link?.outbox.statistics.pending == 0)
        }
    }

    @Test("broker down for 10 s: predictions go on, provisional; every escalation is delivered once it is back")
    func brokerOutage() async throws {
        try await MosquittoBroker.with(.init(persistence: true)) { broker in
            let (scratch, linked) = try linkedSetup(broker)
            defer { scratch.remove() }
            var configuration = linked
            configuration.verdictDeadlineMs = 200
            let responder = try await TestResponder(port: broker.port, classes: 3, persistentSession: true)
            let (agent, source, sink, run) = try startAgent(configuration)
            #expect(await waitUntil { agent.link?.client.connectionState.isConnected == true })
            await source.push(sampleLines(from: 0, count: 200))
            #expect(await waitUntil { sink.snapshot.count >= (200 - 8) / 4 + 1 })

            broker.stop()
            let downSince = ContinuousClock.now
            let before = sink.snapshot.count
            var next = 200
            // Ten seconds without a broker, samples keep coming.
            while ContinuousClock.now - downSince < .seconds(10) {
                await source.push(sampleLines(from: next, count: 40))
                next += 40
                try await Task.sleep(for: .milliseconds(200))
            }
            let during = sink.snapshot.dropFirst(before).filter { $0.kind == .prediction }
            #expect(during.count >= 80, "windows classified while the broker was down: \(during.count)")
            let escalatedDuring = during.filter(\.escalated)
            let provisional = escalatedDuring.filter { (record: PredictionRecord) -> Bool in
                record.provisional && record.origin == .edge
            }
            #expect(!escalatedDuring.isEmpty && provisional.count == escalatedDuring.count)
            #expect((agent.link?.outbox.statistics.pending ?? 0) > 0)

            try await broker.start()
            await source.push(sampleLines(from: next, count: 40))
            let escalatedIDs = Set(
                sink.snapshot.filter { $0.kind == .prediction && $0.escalated }.compactMap(\.escalationId))
            #expect(await waitUntil(.seconds(30)) { Set(responder.ids).isSuperset(of: escalatedIDs) })
            #expect(await waitUntil(.seconds(10)) { agent.link?.outbox.statistics.pending == 0 })
            source.stop()
            try await run.value
            await responder.close()
            let missing = escalatedIDs.subtracting(responder.ids)
            #expect(missing.isEmpty, "\(missing.count) escalations never arrived")
        }
    }

    @Test(
        "tampered, unsigned, wrongly signed and incompatible models are rejected while the old one serves; a good one is swapped in"
    )
    func modelUpdates() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let dir = scratch.url
            let keyURL = dir.appendingPathComponent("cloud.key"), otherURL = dir.appendingPathComponent("other.key")
            let (publicURL, _) = try SigningKeyFile.createKeyPair(at: keyURL)
            _ = try SigningKeyFile.createKeyPair(at: otherURL)
            let key = try SigningKeyFile.readPrivateKey(from: keyURL)
            let otherKey = try SigningKeyFile.readPrivateKey(from: otherURL)
            let modelPath = dir.appendingPathComponent("model.tandem").path
            try TestModel.artifact(version: "v1").signed(with: key).write(to: URL(fileURLWithPath: modelPath))
            var configuration = linkedConfiguration(port: broker.port, directory: dir.path, modelPath: modelPath)
            configuration.model.trustedKeys = [publicURL.path]

            let publisher = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: "cloud"))
            try await publisher.connect()
            let statuses = try await publisher.subscribe(to: "tandem/v1/test/box1/status")
            let lastStatus = Mutex("")
            let statusTask = Task {
                for await message in statuses { lastStatus.withLock { $0 = message.payloadString } }
            }
            let (agent, source, sink, run) = try startAgent(configuration)
            #expect(await waitUntil { agent.link?.client.connectionState.isConnected == true })

            var sequence: UInt64 = 0
            func assign(_ bytes: [UInt8], version: String) async throws {
                try await publisher.publish(
                    MQTTMessage(
                        topic: "tandem/v1/test/models/\(version)", payload: bytes, qos: .atLeastOnce, retain: true))
                sequence += 1
                let assignment = try signedAssignment(
                    of: bytes, version: version, keyURL: keyURL, sequence: sequence)
                try await publisher.publish(
                    MQTTMessage(
                        topic: "tandem/v1/test/box1/model", payload: assignment.encoded(), qos: .atLeastOnce,
                        retain: true))
            }
            var sample = 0
            func stillServes(_ version: String) async -> Bool {
                let count = sink.snapshot.count
                await source.push(sampleLines(from: sample, count: 40))
                sample += 40
                return await waitUntil { sink.snapshot.count >= count + 9 }
                    && sink.snapshot.suffix(9).allSatisfy { $0.modelVersion == version }
            }

            var tampered = try TestModel.artifact(version: "v2").signed(with: key).serialized()
            tampered[tampered.count / 2] ^= 0x40
            let cases: [(String, [UInt8], String)] = [
                ("v2", tampered, "unreadable"),
                ("v3", try TestModel.artifact(version: "v3").serialized(), "untrusted"),
                ("v4", try TestModel.artifact(version: "v4").signed(with: otherKey).serialized(), "untrusted"),
                (
                    "v5", try TestModel.artifact(channels: 4, version: "v5").signed(with: key).serialized(),
                    "incompatible"
                ),
            ]
            for (version, bytes, reason) in cases {
                try await assign(bytes, version: version)
                #expect(
                    await waitUntil {
                        lastStatus.withLock { $0.contains("rejected \(version): \(reason)") }
                    }, "\(version): \(lastStatus.withLock { $0 })")
                #expect(agent.classifier.modelVersion == "v1")
                #expect(await stillServes("v1"), "\(version)")
            }
            #expect(!FileManager.default.fileExists(atPath: modelPath + ".download"))

            // A good model, with other standardization statistics, is swapped in without stopping.
            try await assign(
                try TestModel.artifact(seed: 7, version: "v6").signed(with: key).serialized(), version: "v6")
            #expect(
                await waitUntil { lastStatus.withLock { $0.contains("active v6") } }, "\(lastStatus.withLock { $0 })")
            #expect(agent.classifier.modelVersion == "v6")
            #expect(await stillServes("v6"))
            #expect(try ModelArtifact.read(from: URL(fileURLWithPath: modelPath)).manifest.version == "v6")
            #expect(
                try ModelArtifact.read(from: URL(fileURLWithPath: modelPath + ".previous")).manifest.version == "v1")

            source.stop()
            try await run.value
            statusTask.cancel()
            await publisher.disconnect()
            // Every window was classified: none dropped across the rejections and the swap.
            #expect(sink.snapshot.filter { $0.kind == .prediction }.count == (sample - 8) / 4 + 1)
        }
    }
}

extension LinkTests {
    @Test("an mqtt source feeds a stream from a topic; the mqtt sink publishes every record on …/predictions")
    func mqttSourceAndSink() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let dir = scratch.url.path
            let modelPath = "\(dir)/model.tandem"
            try TestModel.artifact().write(to: URL(fileURLWithPath: modelPath))
            var configuration = linkedConfiguration(port: broker.port, directory: dir, modelPath: modelPath)
            configuration.streams[0].source.kind = .mqtt
            configuration.streams[0].source.url = "mqtt://localhost:\(broker.port)"
            configuration.streams[0].source.topic = "gateway/vib"
            configuration.sinks = [
                .init(kind: .file, path: "\(dir)/records.jsonl", flushIntervalMs: 50), .init(kind: .mqtt),
            ]
            let gateway = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: "gateway"))
            try await gateway.connect()
            let predictions = try await gateway.subscribe(to: "tandem/v1/test/box1/predictions")
            let agent = try EdgeAgent.make(configuration: configuration, log: { _ in })
            let run = Task { try await agent.run() }
            let source = try #require(agent.sources.first as? MQTTTopicSource)
            #expect(await waitUntil { source.isSubscribed })
            // The sink publishes at QoS 0 through the agent's own link: records made before it is connected are
            // dropped (by design), so the samples start once it is.
            #expect(await waitUntil { agent.link?.client.connectionState.isConnected == true })
            // 400 samples in messages of 10 lines, one with a bad line in it.
            for start in stride(from: 0, to: 400, by: 10) {
                var text = sampleLines(from: start, count: 10)
                if start == 200 { text += "1.0,not,a,number\n" }
                try await gateway.publish(
                    MQTTMessage(topic: "gateway/vib", payload: Array(text.utf8), qos: .atLeastOnce))
            }
            let expected = (400 - 8) / 4 + 1
            var received = [MQTTMessage]()
            let timeout = Task {
                try? await Task.sleep(for: .seconds(20))
                predictions.cancel()
            }
            defer { timeout.cancel() }
            for await message in predictions {
                received.append(message)
                if received.count == expected { break }
            }
            agent.stop()
            try await run.value
            await gateway.disconnect()
            let lines = try String(contentsOfFile: "\(dir)/records.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(lines.count == expected)
            #expect(received.count == expected)
            #expect(received.allSatisfy { $0.payloadString.hasPrefix(#"{"type":"prediction""#) })
            #expect(agent.inputErrors.snapshot().byStream["vib"]?[.nonNumeric] == 1)
        }
    }
}

extension LinkTests {
    @Test("with a 20 % budget the escalation rate settles at 20 %, and the responder sees exactly those")
    func budgetPolicy() async throws {
        try await MosquittoBroker.with { broker in
            let (scratch, linked) = try linkedSetup(broker)
            defer { scratch.remove() }
            var configuration = linked
            configuration.policy.budget = 0.2
            configuration.policy.gain = 0.01
            let responder = try await TestResponder(port: broker.port, classes: 3)
            let (agent, source, sink, run) = try startAgent(configuration)
            #expect(await waitUntil { agent.link?.client.connectionState.isConnected == true })
            for start in stride(from: 0, to: 12_000, by: 400) {
                await source.push(sampleLines(from: start, count: 400))
            }
            source.stop()
            try await run.value
            // In window order (escalated windows' records come out when their verdict does).
            let records = sink.snapshot.filter { $0.kind == .prediction }.sorted { $0.windowStart < $1.windowStart }
            let windowCount = (12_000 - 8) / 4 + 1
            #expect(records.count == windowCount)
            // After the controller's first 500 windows, the share escalated stays near the budget.
            let settled = records.dropFirst(500)
            let rate = Double(settled.filter(\.escalated).count) / Double(settled.count)
            #expect(abs(rate - 0.2) < 0.04, "escalation rate \(rate)")
            let escalatedIDs = Set(records.filter(\.escalated).compactMap(\.escalationId))
            #expect(await waitUntil { Set(responder.ids) == escalatedIDs })
            await responder.close()
        }
    }
}

/// The `tandem-edge` process against a real broker: killed during model swaps, stopped by SIGTERM.
@Suite(.serialized)
struct LinkProcessTests {
    let edge = BuiltProducts.executable("tandem-edge")

    @Test(
        "kill -9 during model swaps: the last will says offline and the agent restarts with a valid model; SIGTERM ends cleanly"
    )
    func killDuringSwap() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let dir = scratch.url.path
            let keyURL = scratch.url.appendingPathComponent("cloud.key")
            let (publicURL, _) = try SigningKeyFile.createKeyPair(at: keyURL)
            let key = try SigningKeyFile.readPrivateKey(from: keyURL)
            let modelPath = "\(dir)/model.tandem"
            try TestModel.artifact(version: "v1").signed(with: key).write(to: URL(fileURLWithPath: modelPath))
            try sampleLines(from: 0, count: 400).write(toFile: "\(dir)/samples.csv", atomically: true, encoding: .utf8)
            try """
            device: {id: box1, fleet: test}
            broker: {url: "mqtt://localhost:\(broker.port)", reconnectMaxSeconds: 1}
            model: {path: "\(modelPath)", trustedKeys: ["\(publicURL.path)"]}
            streams:
              - name: vib
                channels: 3
                source: {kind: file, path: "\(dir)/samples.csv", startAtEnd: false, pollIntervalMs: 50}
            policy: {threshold: 0.6, maxEscalationsPerSecond: 1000}
            sinks: [{kind: file, path: "\(dir)/records.jsonl", flushIntervalMs: 100}]
            outbox: {directory: "\(dir)/outbox"}
            statusIntervalSeconds: 3600
            """.write(toFile: "\(dir)/agent.yaml", atomically: true, encoding: .utf8)

            let cloud = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: "cloud"))
            try await cloud.connect()
            let statuses = try await cloud.subscribe(to: "tandem/v1/test/box1/status")
            let lastStatus = Mutex("")
            let statusTask = Task {
                for await message in statuses { lastStatus.withLock { $0 = message.payloadString } }
            }
            // Two signed versions, retained where the agent fetches them.
            var artifacts = [String: [UInt8]]()
            for version in ["a1", "b1"] {
                let bytes = try TestModel.artifact(seed: version == "a1" ? 3 : 4, version: version).signed(with: key)
                    .serialized()
                artifacts[version] = bytes
                try await cloud.publish(
                    MQTTMessage(
                        topic: "tandem/v1/test/models/\(version)", payload: bytes, qos: .atLeastOnce, retain: true))
            }
            func assign(_ version: String, sequence: UInt64) throws {
                let bytes = artifacts[version]!
                let assignment = try signedAssignment(
                    of: bytes, version: version, keyURL: keyURL, sequence: sequence)
                try cloud.publish(
                    MQTTMessage(
                        topic: "tandem/v1/test/box1/model", payload: assignment.encoded(), qos: .atLeastOnce,
                        retain: true), onComplete: nil)
            }
            func launch() throws -> Process {
                let process = Process()
                process.executableURL = edge
                process.arguments = ["run", "--config", "\(dir)/agent.yaml"]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                return process
            }

            var generator = SeededGenerator(seed: 5)
            var versionsAfterKill = [String]()
            for round in 0..<8 {
                let process = try launch()
                #expect(
                    await waitUntil { lastStatus.withLock { $0.contains("\"state\":\"online\"") } }, "round \(round)")
                try assign(round.isMultiple(of: 2) ? "a1" : "b1", sequence: UInt64(round + 1))
                // Somewhere in the download, the verification or the swap.
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...60, using: &generator)))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                #expect(
                    await waitUntil { lastStatus.withLock { $0 == #"{"device":"box1","state":"offline"}"# } },
                    "the last will after kill -9, round \(round): \(lastStatus.withLock { $0 })")
                var model = AgentConfiguration.Model()
                model.path = modelPath
                model.trustedKeys = [publicURL.path]
                let restarted = try EdgeModelFiles(path: modelPath).open(model) { _ in }
                #expect(["v1", "a1", "b1"].contains(restarted.modelVersion))
                versionsAfterKill.append(restarted.modelVersion)
            }
            // Swaps did happen between the kills (the kills did not all land before the download).
            #expect(Set(versionsAfterKill).count > 1, "\(versionsAfterKill)")

            // A clean run: starts with a valid model, takes the retained assignment, ends on SIGTERM.
            let process = try launch()
            let final = "b1"  // the retained assignment of the last round (7, odd)
            #expect(
                await waitUntil { lastStatus.withLock { $0.contains("active \(final)") } },
                "\(lastStatus.withLock { $0 })")
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(
                await waitUntil {
                    lastStatus.withLock { $0.contains("\"state\":\"offline\"") && $0.contains("\"windows\":") }
                }, "the final status on SIGTERM: \(lastStatus.withLock { $0 })")
            #expect(try ModelArtifact.read(from: URL(fileURLWithPath: modelPath)).manifest.version == final)
            statusTask.cancel()
            await cloud.disconnect()
        }
    }
}
