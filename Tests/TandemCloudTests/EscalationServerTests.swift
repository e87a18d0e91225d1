import Foundation
import Synchronization
import TandemCloud
import TandemCore
import TandemEdge
import TandemFleetTestSupport
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A small full model (flatten → dense) with seeded weights, as a verified artifact.
func fullModelArtifact(window: Int = 8, channels: Int = 3, classes: Int = 3) throws -> ModelArtifact {
    try flattenDenseArtifact(
        name: "full-test", version: "full-1", seed: 3, window: window, channels: channels, classes: classes, mean: 0,
        std: 1, classPrefix: "c")
}

/// An escalation as an edge agent sends it.
func escalation(id: UUID, device: String, generator: inout SeededGenerator) throws -> [UInt8] {
    let window = (0..<24).map { _ in generator.nextGaussian() }
    return try EscalationPayload(
        id: id, device: device, stream: "vib", modelVersion: "edge-1", windowStart: 0, windowEnd: 0.07,
        sampleRateHz: 100, channels: 3, length: 8, window: window,
        topK: [.init(label: 0, probability: 0.5)], confidence: 0.5
    ).encoded()
}

/// `tandem-cloud serve` processes against a real mosquitto and one SQLite store.
@Suite(.serialized)
struct EscalationServerTests {
    let cloud = BuiltProducts.executable("tandem-cloud")

    final class Worker {
        let process = Process()
        let errorURL: URL
        init(_ executable: URL, arguments: [String], errorURL: URL) throws {
            self.errorURL = errorURL
            _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
            process.executableURL = executable
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: errorURL)
            try process.run()
        }
        var log: String { (try? String(contentsOf: errorURL, encoding: .utf8)) ?? "" }
    }

    @Test("3 workers on one shared subscription answer every escalation, one stored row per id, one killed -9 mid-run")
    func threeWorkers() async throws {
        try await threeWorkersAnswerEverything(storeURL: nil)
    }

    @Test(
        "the same on PostgreSQL: 3 workers sharing one database, one killed -9 mid-run",
        .enabled(if: PostgresCluster.isAvailable, "PostgreSQL server binaries are not installed"))
    func threeWorkersOnPostgres() async throws {
        try await PostgresCluster.with { cluster in
            try await threeWorkersAnswerEverything(storeURL: cluster.url)
        }
    }

    /// 3 worker processes (SQLite in a scratch directory, or the PostgreSQL store at `storeURL`), 3,000
    /// escalations at about 1,000/s, the second worker killed -9 a third of the way in and restarted.
    func threeWorkersAnswerEverything(storeURL: String?) async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let dir = scratch.url.path
            try fullModelArtifact().write(to: URL(fileURLWithPath: "\(dir)/full.tandem"))
            func start(_ id: Int, generation: Int = 0) throws -> Worker {
                try Worker(
                    cloud,
                    arguments: [
                        "serve", "--broker-url", "mqtt://localhost:\(broker.port)", "--model", "\(dir)/full.tandem",
                        "--worker-id", "\(id)", "--stats-interval", "0", "--http", "",
                    ]
                        // SQLite: one file in a directory the workers share; PostgreSQL: one database, and a
                        // directory of its own per worker for the registry.
                        + (storeURL.map { ["--store-url", $0, "--data-dir", "\(dir)/data\(id)"] }
                            ?? ["--data-dir", "\(dir)/data"]),
                    errorURL: URL(fileURLWithPath: "\(dir)/worker\(id)-\(generation).log"))
            }
            var workers = try (1...3).map { try start($0) }
            defer { for w in workers where w.process.isRunning { kill(w.process.processIdentifier, SIGKILL) } }
            for w in workers {
                #expect(await waitUntil(startLimit) { w.log.contains("serving") }, "\(w.log)")
            }

            let edge = try MQTTClient(
                configuration: MQTTClientConfiguration(
                    port: broker.port, clientID: "edge", maximumInflightMessages: 1000))
            try await edge.connect()
            let answered = Mutex(Set<UUID>())
            let verdicts = try await edge.subscribe(to: "tandem/v1/f/+/verdicts", qos: .atLeastOnce) { message in
                if let verdict = try? Verdict(decoding: message.payload) {
                    _ = answered.withLock { $0.insert(verdict.escalationId) }
                }
            }
            var generator = SeededGenerator(seed: 9)
            var sent = [UUID]()
            let total = 3000
            for i in 0..<total {
                let id = UUID()
                let device = "dev\(i % 10)"
                try edge.publish(
                    MQTTMessage(
                        topic: "tandem/v1/f/\(device)/escalations",
                        payload: try escalation(id: id, device: device, generator: &generator), qos: .atLeastOnce,
                        retain: false,
                        properties: MQTTPublishProperties(
                            responseTopic: "tandem/v1/f/\(device)/verdicts",
                            correlationData: withUnsafeBytes(of: id.uuid) { Array($0) })), onComplete: nil)
                sent.append(id)
                if i % 50 == 49 { try await Task.sleep(for: .milliseconds(50)) }  // about 1,000/s
                if i == total / 3 {
                    // A worker dies mid-run; a supervisor restarts it a second later.
                    kill(workers[1].process.processIdentifier, SIGKILL)
                    workers[1].process.waitUntilExit()
                    try await Task.sleep(for: .seconds(1))
                    workers[1] = try start(2, generation: 1)
                }
            }
            let everyone = Set(sent)
            #expect(
                await waitUntil(.seconds(60)) { answered.withLock { $0 } == everyone },
                "answered \(answered.withLock { $0.count }) of \(total)")
            verdicts.cancel()
            await edge.disconnect()
            // A verdict the killed worker sent but never saw acknowledged leaves its row unanswered; a live
            // worker takes such rows over after 5 s.
            let store = try openEscalationStore(storeURL ?? "\(dir)/data/tandem.sqlite")
            #expect(await waitUntil(.seconds(30)) { (try? store.counts().answered) == total })
            for w in workers { kill(w.process.processIdentifier, SIGTERM) }
            for w in workers {
                w.process.waitUntilExit()
                #expect(w.process.terminationStatus == 0, "\(w.log)")
            }
            let counts = try store.counts()
            #expect(counts.rows == total && counts.answered == total, "\(counts)")
            #expect(Set(try store.ids()) == everyone)
        }
    }
}
