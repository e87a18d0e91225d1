import ArgumentParser
import Foundation
import Synchronization
import TandemCore
import TandemEdge
import TandemMQTT
import TandemProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem bench cloud`: escalations answered end to end through mosquitto by `tandem-cloud` workers.
struct BenchCloud: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloud",
        abstract: "Escalations/s answered by 1…N tandem-cloud workers, and round-trip latency at a fixed rate.",
        discussion: """
            Starts mosquitto (or uses --port), then for each worker count starts that many `tandem-cloud serve` \
            processes (the binary next to this one) with --model, and from one client publishes escalations \
            shaped for the model (QoS 1, response topic, correlation data) from 100 simulated devices: first \
            --count as fast as the verdicts come back (at most --window unanswered), then at --latency-rate \
            (default: half the throughput just measured) for --latency-seconds, timing each verdict's round trip.

            Every process it starts ends with it: on SIGTERM, SIGINT or SIGHUP it stops them (SIGTERM, then \
            SIGKILL after 3 s) and exits with 128 + the signal number; the workers run with --exit-with-parent and \
            mosquitto under `setpriv --pdeathsig KILL` (when installed), so even a SIGKILL of the bench stops them.
            """)

    @Option(help: "The full model the workers run (.tandem; int8 with --precision int8).") var model: String
    @Option(help: "tandem-cloud serve --precision: float or int8.") var precision = "float"
    @Option(
        help: "tandem-cloud serve --store-url: the workers' PostgreSQL store (default: SQLite in a scratch directory).")
    var storeURL: String?
    @Option(help: "Worker counts to measure, comma-separated.") var workers = "1,2"
    @Option(help: "Escalations per throughput run.") var count = 20_000
    @Option(help: "Most escalations waiting for their verdict in the throughput run.") var window = 2_000
    @Option(help: "Escalations per second in the latency run (default: half the throughput just measured).")
    var latencyRate: Int?
    @Option(help: "Length of the latency run in seconds.") var latencySeconds = 5
    @Option(help: "Use a running broker on 127.0.0.1 at this port instead of starting mosquitto.") var port: Int?
    @Option(
        help: ArgumentHelp(
            "Measure another worker instead of tandem-cloud: a command line (split on spaces) started once per worker, with {port}, {id} and {dir} (a scratch directory) replaced.",
            discussion:
                "It must take the shared subscription $share/tandem-cloud/tandem/v1/+/+/escalations and answer as tandem-cloud does; scripts/bench-cloud measures scripts/cloud-worker-reference.py this way."
        )) var workerCommand: String?
    @Option(help: "How the rows name the measured worker (and prefix its JSON keys, unless tandem-cloud).")
    var workerName = "tandem-cloud"
    @Flag(help: "Print JSON on stdout.") var json = false

    func run() async throws {
        let children = BenchChildren.shared
        children.stopOnSignals()
        let artifact = try ModelArtifact.read(from: URL(fileURLWithPath: model))
        let input = artifact.manifest.input
        let counts = workers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--workers: e.g. 1,2") }
        guard (latencyRate ?? 1) >= 1, latencySeconds >= 1 else {
            throw ValidationError("--latency-rate and --latency-seconds must be at least 1")
        }
        let broker = try port.map { BenchBroker(existingPort: $0) } ?? BenchBroker.start()
        defer { broker.stop() }
        let cloud = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("tandem-cloud")
        var generator = SeededGenerator(seed: 1)
        // One payload shape for every message: a window of the model's size, re-stamped with a new id.
        let values = (0..<(input.window * input.channels)).map { _ in generator.nextGaussian() }
        var results = [String: Double]()
        var rows = [String]()
        for n in counts {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-cloud-\(UUID())")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            children.removeOnSignal(scratch)
            defer {
                children.forget(scratch)
                try? FileManager.default.removeItem(at: scratch)
            }
            var processes = [Process]()
            defer { children.stop(processes) }
            guard ["float", "int8"].contains(precision) else { throw ValidationError("--precision: float or int8") }
            for id in 1...n {
                let process = Process()
                if let workerCommand {
                    let words = workerCommand.split(separator: " ").map {
                        $0.replacingOccurrences(of: "{port}", with: "\(broker.port)")
                            .replacingOccurrences(of: "{id}", with: "\(id)")
                            .replacingOccurrences(of: "{dir}", with: scratch.path)
                    }
                    guard let program = words.first else { throw ValidationError("--worker-command is empty") }
                    process.executableURL =
                        program.contains("/") ? URL(fileURLWithPath: program) : try benchExecutable(program)
                    process.arguments = Array(words.dropFirst())
                    process.standardError = FileHandle.nullDevice
                    try children.start(process, deathSignal: true)
                } else {
                    process.executableURL = cloud
                    process.arguments =
                        [
                            "serve", "--broker-url", broker.url, "--model", model, "--data-dir",
                            scratch.path, "--worker-id", "bench\(id)", "--stats-interval", "0", "--http", "",
                            "--exit-with-parent", "\(getpid())", "--precision", precision,
                        ] + (storeURL.map { ["--store-url", $0] } ?? [])
                    process.standardError = FileHandle.nullDevice
                    try children.start(process, deathSignal: false)
                }
                processes.append(process)
            }
            try await Task.sleep(for: .seconds(workerCommand == nil ? 2 : 4))  // workers load the model and subscribe
            var configuration = try MQTTBrokerConfiguration(url: broker.url).clientConfiguration(
                clientID: "bench-edge-\(n)")
            configuration.maximumInflightMessages = 1000
            configuration.tcpNoDelay = true
            let client = try MQTTClient(configuration: configuration)
            try await client.connect()
            let sent = Mutex([UUID: UInt64]())
            let roundTrips = Mutex([Double]())
            let answered = Atomic<Int>(0)
            let subscription = try await client.subscribe(
                to: ProtocolTopics.fleetDevices(.verdicts, fleet: "bench"), qos: .atLeastOnce
            ) {
                message in
                guard let verdict = try? Verdict(decoding: message.payload) else { return }
                let now = monotonicNanoseconds()
                if let start = sent.withLock({ $0.removeValue(forKey: verdict.escalationId) }) {
                    answered.add(1, ordering: .relaxed)
                    roundTrips.withLock { $0.append(Double(now - start) / 1e6) }
                }
            }
            func send(_ i: Int) throws {
                let id = UUID()
                let device = DeviceTopics(fleet: "bench", device: "dev\(i % 100)")
                let payload = try EscalationPayload(
                    id: id, device: device.device, stream: "s", modelVersion: "edge-bench", windowStart: 0,
                    windowEnd: 1,
                    sampleRateHz: input.sampleRateHz, channels: input.channels, length: input.window, window: values,
                    topK: [.init(label: 0, probability: 0.5)], confidence: 0.5
                ).encoded()
                sent.withLock { $0[id] = monotonicNanoseconds() }
                try client.publish(
                    MQTTMessage(
                        topic: device.escalations, payload: payload, qos: .atLeastOnce,
                        retain: false,
                        properties: MQTTPublishProperties(
                            responseTopic: device.verdicts,
                            correlationData: withUnsafeBytes(of: id.uuid) { Array($0) })), onComplete: nil)
            }
            // Throughput: as fast as the verdicts return.
            let cpuBefore = processes.map { cpuSeconds(of: $0.processIdentifier) }
            let start = monotonicNanoseconds()
            var i = 0
            while i < count {
                if i - answered.load(ordering: .relaxed) >= window {
                    try await Task.sleep(for: .microseconds(200))
                    continue
                }
                try send(i)
                i += 1
            }
            let deadline = ContinuousClock.now + .seconds(60)
            while answered.load(ordering: .relaxed) < count && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(1))
            }
            let elapsed = Double(monotonicNanoseconds() - start) / 1e9
            let throughputAnswered = answered.load(ordering: .relaxed)
            let perSecond = Double(throughputAnswered) / elapsed
            let cpu = zip(processes, cpuBefore).map { cpuSeconds(of: $0.processIdentifier) - $1 }.reduce(0, +)
            // Latency at a fixed rate: half the capacity just measured, unless told.
            let latencyRate = self.latencyRate ?? max(1, Int(perSecond / 2))
            roundTrips.withLock { $0.removeAll() }
            let total = latencyRate * latencySeconds
            let period = 1e9 / Double(latencyRate)
            let latencyStart = monotonicNanoseconds()
            for k in 0..<total {
                let due = latencyStart + UInt64(Double(k) * period)
                let now = monotonicNanoseconds()
                if due > now { try await Task.sleep(for: .nanoseconds(Int(due - now))) }
                try send(count + k)
            }
            try await Task.sleep(for: .seconds(2))
            let samples = roundTrips.withLock { $0 }.sorted()
            func percentile(_ p: Double) -> Double {
                samples.isEmpty ? .nan : samples[min(samples.count - 1, Int(Double(samples.count) * p))]
            }
            subscription.cancel()
            await client.disconnect()
            let key = workerName == "tandem-cloud" ? "" : "\(workerName)_"
            results["\(key)workers\(n)_escalations_per_second"] = perSecond
            results["\(key)workers\(n)_answered"] = Double(throughputAnswered)
            results["\(key)workers\(n)_cpu_seconds"] = cpu
            results["\(key)workers\(n)_escalations_per_cpu_second"] = Double(throughputAnswered) / cpu
            results["\(key)workers\(n)_latency_rate"] = Double(latencyRate)
            results["\(key)workers\(n)_p50_ms"] = percentile(0.5)
            results["\(key)workers\(n)_p99_ms"] = percentile(0.99)
            results["\(key)workers\(n)_latency_answered"] = Double(samples.count)
            rows.append(
                "\(workerName), "
                    + String(
                        format:
                            "%d worker(s): %8.0f escalations/s (%d of %d answered; %.1f CPU-s, %.0f per CPU-second)   at %d/s: p50 %.2f ms  p99 %.2f ms  (%d of %d)",
                        n, perSecond, throughputAnswered, count, cpu, Double(throughputAnswered) / cpu,
                        latencyRate, percentile(0.5), percentile(0.99),
                        samples.count, total))
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(
                "model \(artifact.manifest.name) \(artifact.manifest.version) (\(input.window)×\(input.channels)); broker 127.0.0.1:\(broker.port)"
            )
            rows.forEach { print($0) }
        }
    }
}

/// User plus system CPU seconds a process has used so far, from `/proc/PID/stat`; 0 if it cannot be read.
func cpuSeconds(of pid: Int32) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return 0 }
    // Fields after the command name (which may hold spaces), from field 3: utime and stime are fields 14 and 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
