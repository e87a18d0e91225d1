import Foundation
import Synchronization
import TandemCloud
import TandemCore
import TandemEdge
import TandemFleet
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The whole loop, small: real `tandem-cloud` and `tandem-edge` processes on a real mosquitto and a real
/// SQLite store, a weak edge model escalating, the trainer retraining, gating, signing and rolling out.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct ClosedLoopTests {
    let cloud = BuiltProducts.executable("tandem-cloud")
    let edgeAgent = BuiltProducts.executable("tandem-edge")
    static let fleet = "loop"

    /// Three device ids, the first of which alone falls in the canary cohort at the returned percentage.
    static func devices() -> (ids: [String], canaryPercent: Double) {
        let ids = ["press-1", "press-2", "press-3"].sorted {
            RolloutCohort.bucket(of: $0) < RolloutCohort.bucket(of: $1)
        }
        return (ids, (Double(RolloutCohort.bucket(of: ids[0])) + 0.5) / 100)
    }

    func trainerArguments(_ install: LoopFixture.Installation, port: Int, hardExamples: Int, extra: [String])
        -> [String]
    {
        [
            "serve", "--broker-url", "mqtt://localhost:\(port)", "--model", install.fullModel.path, "--data-dir",
            install.dataDirectory.path, "--worker-id", "1", "--stats-interval", "0", "--http", "", "--trainer",
            "--training-data",
            install.trainingData.path, "--edge-spec", install.edgeSpec.path, "--signing-key", install.signingKey.path,
            "--fleet", Self.fleet, "--retrain-interval", "0.5", "--retrain-hard-examples", "\(hardExamples)",
            "--retrain-labels", "0", "--fine-tune-epochs", "3", "--lease-seconds", "30",
        ] + extra
    }

    /// One `tandem-edge` process following a file the test appends simulator lines to.
    struct Device: Sendable {
        let id: String
        let directory: URL
        let process: ChildProcess
        var samples: URL { directory.appendingPathComponent("samples.csv") }
        var records: URL { directory.appendingPathComponent("records.jsonl") }

        init(
            id: String, executable: URL, install: LoopFixture.Installation, port: Int, threshold: Double
        ) throws {
            self.id = id
            directory = install.directory.appendingPathComponent(id)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let model = directory.appendingPathComponent("model.tandem")
            try FileManager.default.copyItem(at: install.signedEdge, to: model)
            _ = FileManager.default.createFile(
                atPath: directory.appendingPathComponent("samples.csv").path, contents: nil)
            let dir = directory.path
            let config = """
                device: {id: \(id), fleet: \(ClosedLoopTests.fleet)}
                broker: {url: "mqtt://localhost:\(port)", reconnectMaxSeconds: 1}
                model: {path: \(dir)/model.tandem, trustedKeys: [\(install.publicKey.path)]}
                streams:
                  - name: vib
                    channels: 4
                    source: {kind: file, path: \(dir)/samples.csv, startAtEnd: false, pollIntervalMs: 50}
                policy: {threshold: \(threshold), maxEscalationsPerSecond: 100000}
                verdictDeadlineMs: 10000
                sinks:
                  - {kind: file, path: \(dir)/records.jsonl, flushIntervalMs: 100}
                statusIntervalSeconds: 0.3
                outbox: {directory: \(dir)/outbox}
                """
            try config.write(toFile: "\(dir)/agent.yaml", atomically: true, encoding: .utf8)
            process = try ChildProcess(
                executable, ["run", "--config", "\(dir)/agent.yaml"],
                errorURL: directory.appendingPathComponent("stderr.log"))
        }

        func feed(_ text: String) throws {
            let handle = try FileHandle(forWritingTo: samples)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
        }

        /// The records written so far, as JSON objects.
        func readRecords() -> [[String: Any]] {
            let text = (try? String(contentsOf: records, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
    }

    @Test(
        "hard examples start a round; the signed candidate is canaried, promoted and active on every device, which then escalate less; no escalation is lost"
    )
    func closedLoop() async throws {
        let fixture = try LoopFixture.shared.get()
        let threshold = try fixture.threshold
        let (ids, canaryPercent) = Self.devices()
        // Each device is fed its own 8 s of the machine before the update, then its own stretch after it.
        let before = ids.indices.map { fixture.samples(Double($0) * 8..<Double($0 + 1) * 8) }
        let after = ids.indices.map { fixture.samples(24 + Double($0) * 22..<24 + Double($0 + 1) * 22) }
        let expected = try before.map { try fixture.expectedEscalations($0) }
        let expectedEscalations = expected.reduce(0) { $0 + $1.escalations }
        #expect(expectedEscalations >= 20, "the weak edge model escalates: \(expected)")
        // The round starts once about half of what the weak model escalates before the update has arrived.
        let trigger = max(10, expectedEscalations / 2)

        try await fixture.withBroker { broker, install, scratch in
            let worker = try ChildProcess(
                cloud,
                trainerArguments(
                    install, port: broker.port, hardExamples: trigger,
                    extra: [
                        "--canary-percent", "\(canaryPercent)", "--soak-seconds", "2", "--min-canary-windows", "60",
                        "--rollout-interval", "0.25",
                    ]), errorURL: scratch.url.appendingPathComponent("cloud.log"))
            #expect(await waitUntil(.seconds(30)) { worker.log.contains("serving") && worker.log.contains("checking") })
            let devices = try ids.map {
                try Device(id: $0, executable: edgeAgent, install: install, port: broker.port, threshold: threshold)
            }
            let observer = try MQTTClient(
                configuration: MQTTClientConfiguration(port: broker.port, clientID: "observer"))
            try await observer.connect()
            let monitor = try await FleetMonitor(client: observer, fleet: Self.fleet)
            #expect(
                await waitUntil(.seconds(20)) {
                    ids.allSatisfy { monitor.statuses[$0]?.modelVersion == "edge-1" }
                }, "\(monitor.statuses)")

            // Before the update: the weak model escalates, the worker answers, the trainer's round starts.
            for (device, range) in zip(devices, before) { try device.feed(fixture.lines(range)) }
            let started = await waitUntil(.seconds(120)) {
                worker.log.contains("to the canary cohort") || worker.log.contains("stopped by the gate")
                    || !worker.process.isRunning
            }
            #expect(started && worker.log.contains("to the canary cohort"), "\(worker.log)")

            // During the canary and after it: each device gets its later stretch, a quarter second at a time.
            let promoted = Mutex<String?>(nil)
            let feeder = Task {
                var offsets = after.map(\.lowerBound)
                var extra = 0
                while !Task.isCancelled && extra < 24 && zip(offsets, after).contains(where: { $0 < $1.upperBound }) {
                    for (k, device) in devices.enumerated() {
                        let end = min(offsets[k] + 250, after[k].upperBound)
                        try? device.feed(fixture.lines(offsets[k]..<end))
                        offsets[k] = end
                    }
                    // Once every device runs the new model, 6 s more of stream go through it.
                    if promoted.withLock({ $0 }) != nil { extra += 1 }
                    try? await Task.sleep(for: .milliseconds(150))
                }
            }
            let rolledOut = await waitUntil(.seconds(60)) {
                guard let production = try? install.registry.productionVersion(), production != "edge-1" else {
                    return false
                }
                return ids.allSatisfy { monitor.statuses[$0]?.modelUpdate == .active(production) }
            }
            #expect(rolledOut, "\(worker.log)\n\(monitor.statuses)")
            let version = try #require(try install.registry.productionVersion())
            promoted.withLock { $0 = version }
            _ = await feeder.value

            // Every escalation a device recorded is answered in the store, and nothing else is there.
            func escalatedIDs() -> Set<UUID> {
                Set(
                    devices.flatMap { $0.readRecords() }.compactMap {
                        ($0["escalationId"] as? String).flatMap({ UUID(uuidString: $0) })
                    })
            }
            let settled = await waitUntil(.seconds(30)) {
                guard let counts = try? install.store.counts() else { return false }
                return counts.rows == counts.answered
                    && Set((try? install.store.ids()) ?? []) == escalatedIDs()
            }
            #expect(
                settled, "store \(String(describing: try? install.store.counts())), records \(escalatedIDs().count)")

            for device in devices {
                let status = await device.process.terminate()
                #expect(status == 0, "\(device.id): \(device.process.log)")
            }
            monitor.stop()
            await observer.disconnect()
            let workerStatus = await worker.terminate()
            #expect(workerStatus == 0, "\(worker.log)")
            #expect(!worker.process.isRunning && devices.allSatisfy { !$0.process.process.isRunning })

            // Verdicts reached the devices: every escalated window's record is the cloud's answer.
            let records = devices.flatMap { $0.readRecords() }.filter { $0["type"] as? String == "prediction" }
            let escalated = records.filter { $0["escalated"] as? Bool == true }
            #expect(!escalated.isEmpty)
            // Answered by the configured full model, or by the fine-tuned one the round promoted to the worker.
            let fullVersions = Set(
                ["full-1"]
                    + (try ModelRegistry(directory: install.dataDirectory.appendingPathComponent("full"))).list()
                    .versions.map(\.version))
            #expect(
                escalated.allSatisfy {
                    $0["source"] as? String == "cloud" && fullVersions.contains($0["modelVersion"] as? String ?? "")
                }, "\(fullVersions)")

            // No escalation lost, none stored twice: one answered row per escalation id the devices sent.
            let store = install.store
            let counts = try store.counts()
            let sent = escalatedIDs()
            #expect(counts.rows == sent.count && counts.answered == counts.rows, "\(counts) for \(sent.count)")
            #expect(Set(try store.ids()) == sent)

            // The escalation rate per edge model: escalations from the store's rows, windows from the records.
            let edgeModelOf = Dictionary(
                uniqueKeysWithValues: try store.trainingExamples().examples.map { ($0.id, $0.edgeModel) })
            var windows = [String: Int](), escalations = [String: Int]()
            for record in records {
                let model: String?
                if let id = (record["escalationId"] as? String).flatMap({ UUID(uuidString: $0) }) {
                    model = edgeModelOf[id]
                    if let model { escalations[model, default: 0] += 1 }
                } else {
                    model = record["modelVersion"] as? String
                }
                if let model { windows[model, default: 0] += 1 }
            }
            let oldWindows = windows["edge-1"] ?? 0, newWindows = windows[version] ?? 0
            #expect(oldWindows >= 300 && newWindows >= 150, "\(windows)")
            let oldRate = Double(escalations["edge-1"] ?? 0) / Double(max(oldWindows, 1))
            let newRate = Double(escalations[version] ?? 0) / Double(max(newWindows, 1))
            // The devices ran the two models on different stretches of the stream, a few hundred windows each, so
            // their live rates differ by noise as much as by the round; the models are compared on the same windows:
            // every device's stretch after the update, at the threshold the devices use.
            let candidate = try ModelArtifact.read(from: install.registry.artifactURL(version: version))
            let onOld = try after.map { try fixture.expectedEscalations($0) }
            let onNew = try after.map { try fixture.expectedEscalations($0, model: candidate) }
            let afterWindows = onOld.reduce(0) { $0 + $1.windows }
            let (oldOnAfter, newOnAfter) = (
                onOld.reduce(0) { $0 + $1.escalations }, onNew.reduce(0) { $0 + $1.escalations }
            )
            #expect(
                newOnAfter < oldOnAfter,
                "on the same \(afterWindows) windows \(version) escalates \(newOnAfter), edge-1 \(oldOnAfter)")
            print(
                "closed loop: \(version); on the same \(afterWindows) windows \(oldOnAfter) → \(newOnAfter) escalations; "
                    + "live: \(oldRate) on \(oldWindows) windows → \(newRate) on \(newWindows)"
            )

            // The candidate: retrained, signed with the fleet's key, its gate and rollout on record.
            let record = try install.registry.record(version: version)
            #expect(record.source == "retrain" && (record.metrics["gate.candidate_accuracy"] ?? -1) >= 0)
            let signed = try ModelArtifact.read(
                from: install.registry.artifactURL(version: version),
                trustedKeys: [try SigningKeyFile.readPublicKey(from: install.publicKey)], requireSignature: true)
            #expect(signed.manifest.numerics == "int8")
            // The trainer may start another round on the new model's hard examples before the test ends (a slow
            // machine feeds longer); the round and rollout checked are those of the version the fleet runs.
            let rounds = try store.rounds()
            let round = try #require(rounds.first { $0.version == version }, "\(rounds)")
            #expect(round.passed && round.outcome == "promoted", "\(round)")
            let report = try JSONDecoder().decode(
                RetrainingRound.GateReport.self, from: Data(try #require(round.report).utf8))
            #expect(report.passed && report.candidateEscalationRate < report.currentEscalationRate)
            let audit = AuditLog(url: install.dataDirectory.appendingPathComponent("audit.jsonl")).read().records
            let start = try #require(audit.first { $0.action == "rollout-start" && $0.version == version })
            let promote = try #require(audit.first { $0.action == "rollout-promote" && $0.version == version })
            #expect(start.version == version && start.devices == [ids[0]], "the canary cohort alone first")
            #expect(promote.devices == Array(ids.dropFirst()).sorted() && promote.actor == "rollout")
            #expect(audit.contains { $0.action == "register" && $0.version == version && $0.actor == "trainer" })
            #expect(
                audit.contains { $0.action == "retrain" && $0.version == version && $0.reason.hasPrefix("promoted") },
                "\(audit)")
            // No labels here, so no recent labelled windows show the fine-tuned full model ahead: the student learns the
            // stored verdicts as they are.
            #expect(worker.log.contains("verdict labels kept"), "\(worker.log)")
            // One progress line per phase.
            for phase in [
                "round: data:", "round: fine-tune:", "round: compress:", "round: gate:", "register:", "promoted",
            ] {
                #expect(worker.log.contains(phase), "\(phase)")
            }
        }
    }

    @Test("a drill candidate trained on shuffled labels is stopped by the gate: nothing registered or assigned")
    func drillStoppedByGate() async throws {
        let fixture = try LoopFixture.shared.get()
        try await fixture.withBroker { broker, install, scratch in
            // Hard examples as workers store them: the weak model's windows with the full model's verdicts.
            let range = fixture.samples(0..<4)
            let full = try FloatModel(artifact: fixture.full)
            let channels = 4
            var stored = 0
            for start in stride(from: range.lowerBound, to: range.upperBound - LoopFixture.window, by: LoopFixture.hop)
            {
                let raw = Array(
                    fixture.stream.samples.scalars[(start * channels)..<((start + LoopFixture.window) * channels)])
                var forEdge = Tensor(shape: [1, LoopFixture.window, channels], scalars: raw)
                fixture.edge.manifest.input.normalize(&forEdge)
                var forFull = Tensor(shape: [1, LoopFixture.window, channels], scalars: raw)
                fixture.full.manifest.input.normalize(&forFull)
                let p = try full.probabilities(for: forFull).scalars
                let verdict = p.indices.max { p[$0] < p[$1] } ?? 0
                let id = UUID()
                let payload = try EscalationPayload(
                    id: id, device: "press-1", stream: "vib", modelVersion: "edge-1", windowStart: 0, windowEnd: 1,
                    sampleRateHz: nil, channels: channels, length: LoopFixture.window, window: forEdge.scalars,
                    topK: [.init(label: 0, probability: 0.3)], confidence: 0.3
                ).encoded()
                try install.store.insert(
                    SampleStore.Escalation(
                        id: id, device: "press-1", stream: "vib", payload: payload, responseTopic: "t", edgeLabel: 0,
                        edgeConfidence: 0.3, edgeModel: "edge-1", receivedAt: Date().timeIntervalSince1970))
                try install.store.answer(
                    [(id, .init(label: verdict, probabilities: p, model: "full-1"))], at: Date().timeIntervalSince1970)
                stored += 1
            }
            let worker = try ChildProcess(
                cloud,
                trainerArguments(
                    install, port: broker.port, hardExamples: stored,
                    extra: ["--drill-shuffled-labels", "--canary-percent", "100", "--soak-seconds", "0"]),
                errorURL: scratch.url.appendingPathComponent("cloud.log"))
            let recorded = await waitUntil(.seconds(120)) {
                worker.log.contains("round: recorded") || !worker.process.isRunning
            }
            #expect(recorded, "\(worker.log)")
            #expect(worker.log.contains("stopped by the gate"), "\(worker.log)")

            let round = try #require(try install.store.lastRound())
            #expect(!round.passed && round.outcome == "gate-failed", "\(round)")
            #expect(round.summary.contains("accuracy"), "\(round.summary)")
            let report = try JSONDecoder().decode(
                RetrainingRound.GateReport.self, from: Data(try #require(round.report).utf8))
            #expect(!report.passed && report.candidateAccuracy < report.currentAccuracy - report.epsilon)
            // The fleet stays on the old version: nothing registered, published, assigned or rolled out.
            #expect(install.registry.list().versions.map(\.version) == ["edge-1"])
            #expect(try install.registry.productionVersion() == "edge-1")
            #expect(
                !FileManager.default.fileExists(
                    atPath: install.dataDirectory.appendingPathComponent("rollout-loop.json").path))
            let observer = try MQTTClient(
                configuration: MQTTClientConfiguration(port: broker.port, clientID: "observer"))
            try await observer.connect()
            let retained = Mutex(0)
            let subscription = try await observer.subscribe(to: "tandem/v1/\(Self.fleet)/#") { _ in
                retained.withLock { $0 += 1 }
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(retained.withLock { $0 } == 0, "no artifact or assignment was published")
            subscription.cancel()
            await observer.disconnect()
            let audit = AuditLog(url: install.dataDirectory.appendingPathComponent("audit.jsonl")).read().records
            #expect(audit.map(\.action) == ["retrain"] && audit[0].reason.hasPrefix("gate-failed"), "\(audit)")
            // The lease is given back, and the worker leaves cleanly.
            #expect(try install.store.trainingLease() == nil)
            let status = await worker.terminate()
            #expect(status == 0, "\(worker.log)")
            #expect(worker.log.contains("trainer: stopped"))
        }
    }
}
