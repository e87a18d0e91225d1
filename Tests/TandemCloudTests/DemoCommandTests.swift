import Foundation
import TandemCloud
import TandemCore
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem demo` against real agents, a real worker and a real mosquitto: it feeds every agent its own
/// simulated machine, scores every record against the simulator's truth, labels the cloud's answers, reports.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct DemoCommandTests {
    let tandem = BuiltProducts.executable("tandem")
    let cloud = BuiltProducts.executable("tandem-cloud")
    let edgeAgent = BuiltProducts.executable("tandem-edge")
    static let fleet = "demo-test"
    static let seconds = 8.0
    /// Seconds the stream goes on past `seconds`: it drifts and no trainer promotes anything.
    static let extraSeconds = 2.0
    static let seed: UInt64 = 21

    @Test("every record is scored against the truth, every sampled answer labelled in the store, the report adds up")
    func demoScoresLabelsAndReports() async throws {
        let fixture = try LoopFixture.shared.get()
        let threshold = try fixture.threshold
        try await fixture.withBroker { broker, install, scratch in
            let worker = try ChildProcess(
                cloud,
                [
                    "serve", "--broker-url", "mqtt://localhost:\(broker.port)", "--model", install.fullModel.path,
                    "--edge-model", install.signedEdge.path, "--data-dir", install.dataDirectory.path,
                    "--worker-id", "1", "--stats-interval", "0", "--http", "",
                ], errorURL: scratch.url.appendingPathComponent("cloud.log"))
            #expect(await waitUntil(.seconds(30)) { worker.log.contains("serving") }, "\(worker.log)")

            let agents = scratch.url.appendingPathComponent("agents")
            var processes: [ChildProcess] = []
            for name in ["a-1", "a-2"] {
                let dir = agents.appendingPathComponent(name)
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                #expect(mkfifo(dir.appendingPathComponent("samples.fifo").path, 0o600) == 0)
                _ = FileManager.default.createFile(
                    atPath: dir.appendingPathComponent("records.jsonl").path, contents: nil)
                try FileManager.default.copyItem(at: install.signedEdge, to: dir.appendingPathComponent("model.tandem"))
                let config = """
                    device: {id: \(name), fleet: \(Self.fleet)}
                    broker: {url: "mqtt://localhost:\(broker.port)", reconnectMaxSeconds: 1}
                    model: {path: \(dir.path)/model.tandem, trustedKeys: [\(install.publicKey.path)]}
                    streams:
                      - {name: machine, channels: 4, source: {kind: stdin}}
                    policy: {threshold: \(threshold), maxEscalationsPerSecond: 100000}
                    verdictDeadlineMs: 5000
                    sinks:
                      - {kind: stdout, flushIntervalMs: 100}
                    statusIntervalSeconds: 0.5
                    outbox: {directory: \(dir.path)/outbox}
                    """
                try config.write(to: dir.appendingPathComponent("agent.yaml"), atomically: true, encoding: .utf8)
                processes.append(
                    try ChildProcess(
                        URL(fileURLWithPath: "/bin/sh"),
                        [
                            "-c",
                            "exec \"$0\" run --config \"$1/agent.yaml\" < \"$1/samples.fifo\" >> \"$1/records.jsonl\"",
                            edgeAgent.path, dir.path,
                        ], errorURL: dir.appendingPathComponent("agent.log")))
            }

            let reportDirectory = scratch.url.appendingPathComponent("report")
            let demo = try ChildProcess(
                tandem,
                [
                    "demo", "--agents", agents.path, "--data-dir", install.dataDirectory.path, "--fleet", Self.fleet,
                    "--broker-url", "mqtt://localhost:\(broker.port)", "--seconds", "\(Self.seconds)", "--drift-at",
                    "4",
                    "--seed", "\(Self.seed)", "--start-at", "24", "--device-spacing", "10", "--label-fraction", "1",
                    "--bucket-seconds", "2", "--extend-until-promoted", "\(Self.extraSeconds)", "--report",
                    reportDirectory.path,
                ], errorURL: scratch.url.appendingPathComponent("demo.log"))
            #expect(await waitUntil(.seconds(60)) { !demo.process.isRunning }, "\(demo.log)")
            #expect(demo.process.terminationStatus == 0, "\(demo.log)")
            // The pipes are closed: each agent finishes its input and exits cleanly.
            for process in processes {
                #expect(await waitUntil(.seconds(20)) { !process.process.isRunning })
                #expect(process.process.terminationStatus == 0, "\(process.log)")
            }

            // The truth, simulated again here: device k watches the fixture's machine (its seed, default
            // segments) from 24 + 10·k s of its recording on, drifting 4 s into its stream.
            var scored = 0, correct = 0, escalated = 0
            var answered: [(id: UUID, truth: Int)] = []
            for (k, name) in ["a-1", "a-2"].enumerated() {
                let start = 24 + 10 * Double(k)
                var configuration = SensorSimulator.Configuration(seed: Self.seed, sampleRateHz: 1000)
                configuration.driftAtSeconds = start + 4
                let stream = SensorSimulator(configuration).stream(
                    durationSeconds: start + Self.seconds + Self.extraSeconds)
                let text = try String(
                    contentsOf: agents.appendingPathComponent("\(name)/records.jsonl"), encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let record = try #require(
                        try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                    guard record["type"] as? String == "prediction" else { continue }
                    let end = try #require(record["end"] as? Double)
                    let truth = stream.labels[Int(((start + end) * 1000).rounded())]
                    scored += 1
                    if record["label"] as? String == stream.classNames[truth] { correct += 1 }
                    if record["escalated"] as? Bool == true { escalated += 1 }
                    if record["source"] as? String == "cloud",
                        let id = (record["escalationId"] as? String).flatMap({ UUID(uuidString: $0) })
                    {
                        answered.append((id, truth))
                    }
                }
            }
            #expect(scored >= 2 * 200, "two devices, 8 s at 1 kHz, hop 32: about 250 windows each; got \(scored)")
            #expect(!answered.isEmpty, "the weak edge model escalates and the worker answers")

            // The timeline counts exactly the windows and right answers counted here.
            let csv = try String(contentsOf: reportDirectory.appendingPathComponent("timeline.csv"), encoding: .utf8)
            let rows = csv.split(separator: "\n").dropFirst().map {
                $0.split(separator: ",", omittingEmptySubsequences: false)
            }
            #expect(rows.reduce(0) { $0 + (Int($1[1]) ?? -1) } == scored, "\(csv)")
            #expect(rows.reduce(0) { $0 + (Int($1[2]) ?? -1) } == escalated, "\(csv)")
            #expect(rows.reduce(0) { $0 + (Int($1[3]) ?? -1) } == correct, "\(csv)")

            // Every answer was labelled (fraction 1) with the truth, and the worker stored each label.
            #expect(
                await waitUntil(.seconds(10)) {
                    answered.allSatisfy { (try? install.store.label(for: $0.id)) != nil }
                })
            let classNames = fixture.full.manifest.classNames
            for (id, truth) in answered {
                let stored = try #require(try install.store.label(for: id))
                #expect(classNames[stored] == SensorSimulator.classNames[truth])
            }

            let report = try String(contentsOf: reportDirectory.appendingPathComponent("report.txt"), encoding: .utf8)
            #expect(report.contains("\(answered.count) ground-truth labels sent"), "\(report)")
            // No update was promoted after the drift: the stream went on to its limit and the report says so.
            #expect(
                report.contains("before the drift (0–4 s)") && report.contains("after the drift (4–10 s)"), "\(report)")
            #expect(
                report.contains(
                    "stream extended from 8 s to 10 s (at most 10 s): no update was promoted after the drift"),
                "\(report)")
            let svg = try String(contentsOf: reportDirectory.appendingPathComponent("report.svg"), encoding: .utf8)
            #expect(svg.hasPrefix("<svg") && svg.contains("<polyline") && svg.contains(">drift<"))
            #expect(svg.contains(">before the drift<") && svg.contains(">after the drift<"), "the phases are named")
            let status = await worker.terminate()
            #expect(status == 0, "\(worker.log)")
        }
    }
}
