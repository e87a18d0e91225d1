import ArgumentParser
import Foundation
import Synchronization
import TandemCore
import TandemFleet
import TandemMQTT
import TandemProtocol

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// `tandem bench fleet`: a rollout's promotion reaching N emulated devices over real MQTT connections, and what
/// following them costs a `tandem-cloud` worker.
struct BenchFleet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Time from `tandem rollout promote` to N emulated devices on the new version; the cloud's cost.",
        discussion: """
            Makes a scratch data directory with a signing key and a registry holding two small signed edge models, \
            v1 (production) and v2; starts mosquitto (loopback, a free port, with this process's open-file limit \
            raised to its hard limit, which mosquitto inherits) and one `tandem-cloud serve` (the binary next to \
            this one) with that data directory and --http on a free port. Then N emulated devices connect, each \
            with its own MQTT connection (the offline status as last will), spread over processes of \
            --devices-per-process (libmosquitto's loop takes no socket numbered above 1023, so one process holds \
            about 300 clients). Each publishes its retained status (v1 active), subscribes to its verdicts, the \
            fleet's key revocation list and its model assignment, and sends escalations at --escalation-rate. An \
            assignment is checked with the agent's own gate (signature, fleet, device, sequence, expiry, \
            rollback), the artifact fetched from its retained topic and verified as the agent verifies it (size \
            and SHA-256 against the assignment, signature by the trusted key, input spec, self-test), and the \
            device then reports the new version active.

            `tandem rollout start v2 --detach` (a child process) puts one device in the canary (the percentage \
            that holds exactly the device with the lowest bucket); once it reports v2, `tandem rollout promote` \
            (a child process) assigns v2 to the others. Measured: connecting the N devices; from the start of the \
            promote command to every device reporting v2, in the bench's own tally (p50, p95, max per device) and \
            in the worker's fleet view (`GET /v1/devices`, polled every 250 ms); the worker's resident memory \
            (VmRSS) and CPU seconds before the devices connect, with them connected, and during the rollout; the \
            response time of `GET /` (the fleet page) and `GET /v1/devices` (median of 20). Exits 1 if not every \
            device reports v2 within --timeout seconds of the promote.

            Every process it starts ends with it: on SIGTERM, SIGINT or SIGHUP it stops them (SIGTERM, then \
            SIGKILL after 3 s) and exits with 128 + the signal number; the worker runs with --exit-with-parent, \
            mosquitto, the device processes and the `tandem rollout` commands under `setpriv --pdeathsig KILL` \
            (when installed).
            """)

    @Option(help: "Emulated devices, each with its own MQTT connection (and network thread).") var devices = 100
    @Option(help: "Escalations per second each device sends (0: none).") var escalationRate = 0.2
    @Option(help: "Seconds the connected fleet is measured before the rollout.") var idleSeconds = 10.0
    @Option(help: "Seconds after the promote by which every device must report the new version.") var timeout = 60.0
    @Option(help: "Emulated devices per process (at most 300: libmosquitto's select limit).")
    var devicesPerProcess = 250
    @Option(help: "Devices of one process connecting at once.") var connectConcurrency = 64

    /// The fleet the bench's devices are in.
    static let fleet = "bench"

    /// The id of device `index`: `dev` and the number with `width` digits.
    static func deviceName(_ index: Int, width: Int) -> String {
        let digits = String(index)
        return "dev" + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    func validate() throws {
        guard devices >= 2 else { throw ValidationError("--devices must be at least 2 (one canary, one other)") }
        guard escalationRate >= 0, escalationRate.isFinite else { throw ValidationError("--escalation-rate ≥ 0") }
        guard timeout.isFinite, timeout > 0, idleSeconds.isFinite, (0...86_400).contains(idleSeconds),
            connectConcurrency >= 1
        else {
            throw ValidationError("--timeout > 0, --idle-seconds ≥ 0, --connect-concurrency ≥ 1")
        }
        guard (1...300).contains(devicesPerProcess) else { throw ValidationError("--devices-per-process: 1…300") }
    }

    /// Writes `line` to standard output at once (unbuffered), also into a file or a pipe.
    private func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    func run() async throws {
        let children = BenchChildren.shared
        children.stopOnSignals()
        let limit = raiseOpenFileLimit()
        guard limit >= UInt64(devices) + 256 else {
            throw ValidationError(
                "mosquitto needs about \(devices + 256) open files for \(devices) devices; the hard limit is \(limit) "
                    + "(ulimit -Hn)")
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-fleet-\(UUID())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        children.removeOnSignal(scratch)
        defer {
            children.forget(scratch)
            try? FileManager.default.removeItem(at: scratch)
        }
        let setup = try BenchFleetSetup(directory: scratch)
        let broker = try BenchBroker.start()
        defer { broker.stop() }
        let programs =
            Bundle.main.executableURL?.deletingLastPathComponent()
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let tandem = programs.appendingPathComponent("tandem")
        let httpPort = try freeLoopbackPort()
        let base = "http://127.0.0.1:\(httpPort)"
        let worker = Process()
        worker.executableURL = programs.appendingPathComponent("tandem-cloud")
        worker.arguments = [
            "serve", "--broker-url", broker.url, "--model", setup.fullModel.path, "--data-dir", setup.data.path,
            "--worker-id", "bench-fleet", "--stats-interval", "0", "--http", "127.0.0.1:\(httpPort)",
            "--exit-with-parent", "\(getpid())",
        ]
        worker.standardOutput = FileHandle.nullDevice
        worker.standardError = FileHandle.nullDevice
        try children.start(worker, deathSignal: false)
        defer { children.stop([worker]) }
        let pid = worker.processIdentifier
        guard try await waitUntil(seconds: 60, { (try? await httpGet("\(base)/healthz")) != nil }) else {
            throw ValidationError("tandem-cloud did not answer on \(base)/healthz within 60 s")
        }
        try await Task.sleep(for: .seconds(1))
        let before = ProcessSample(pid: pid)
        say(
            "tandem bench fleet: \(devices) devices in \((devices + devicesPerProcess - 1) / devicesPerProcess) "
                + "processes, escalations \(escalationRate)/s each; mosquitto on 127.0.0.1:\(broker.port), "
                + "open-file limit \(limit)")
        say(
            String(
                format: "tandem-cloud before the fleet: RSS %.1f MiB, %.2f CPU-s since start", before.rssMiB,
                before.cpuSeconds))

        // The fleet connects.
        let width = max(4, String(devices - 1).count)
        let names = (0..<devices).map { Self.deviceName($0, width: width) }
        let tally = BenchFleetTally()
        var emulators = [Process]()
        defer { children.stop(emulators) }
        let connectStart = monotonicNanoseconds()
        for first in stride(from: 0, to: devices, by: devicesPerProcess) {
            let process = Process()
            process.executableURL = tandem
            process.arguments = [
                "bench", "fleet-devices", "--broker-url", broker.url, "--first", "\(first)", "--count",
                "\(min(devicesPerProcess, devices - first))", "--width", "\(width)", "--version", setup.v1,
                "--trusted-key", setup.publicKey.path, "--escalation-rate", "\(escalationRate)",
                "--connect-concurrency", "\(connectConcurrency)",
            ]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.standardError
            try children.start(process, deathSignal: true)
            emulators.append(process)
            tally.follow(output.fileHandleForReading.fileDescriptor, source: emulators.count - 1)
        }
        let connected = try await waitUntil(seconds: 120) {
            tally.readyDevices == devices || emulators.contains { !$0.isRunning }
        }
        guard connected, tally.readyDevices == devices else {
            throw ValidationError("only \(tally.readyDevices) of \(devices) devices connected")
        }
        let connectSeconds = seconds(since: connectStart)
        let seen = try await waitUntil(seconds: 30) {
            guard let list = try? await deviceList(base) else { return false }
            return list.filter { $0.state == "online" && $0.modelVersion == setup.v1 }.count == devices
        }
        let seenSeconds = seconds(since: connectStart)
        say(
            String(
                format:
                    "connect: %d devices connected, status acknowledged, subscribed in %.2f s (%.0f/s); the fleet view lists all online on v1 after %.2f s%@",
                devices, connectSeconds, Double(devices) / connectSeconds, seenSeconds,
                seen ? "" : " (NOT all: timed out)"))

        // Idle: connected, escalating, no rollout.
        let idleStart = ProcessSample(pid: pid)
        try await Task.sleep(for: .milliseconds(Int(idleSeconds * 1000)))
        let idleEnd = ProcessSample(pid: pid)
        say(
            String(
                format:
                    "tandem-cloud with %d devices connected: RSS %.1f MiB; %.1f %% of a core over %.0f s (%.2f CPU-s)",
                devices, idleEnd.rssMiB, 100 * idleEnd.cpu(since: idleStart), idleSeconds,
                idleEnd.cpuSeconds - idleStart.cpuSeconds))

        // The canary: the one device with the lowest bucket.
        guard let canary = names.min(by: { RolloutCohort.bucket(of: $0) < RolloutCohort.bucket(of: $1) }) else {
            return
        }
        let percent = Double(RolloutCohort.bucket(of: canary) + 1) / 100
        let common = [
            "--fleet", Self.fleet, "--key", setup.key.path, "--data-dir", setup.data.path, "--broker-url", broker.url,
            "--actor", "bench",
        ]
        let started = try await runChild(
            tandem,
            ["rollout", "start", setup.v2, "--detach", "--canary-percent", String(format: "%.2f", percent)] + common,
            log: scratch.appendingPathComponent("rollout-start.log"))
        guard started == 0 else { throw ValidationError("tandem rollout start exited \(started)") }
        guard try await waitUntil(seconds: timeout, { tally.activeAt(canary, version: setup.v2) != nil }) else {
            throw ValidationError("the canary \(canary) did not report \(setup.v2) within \(timeout) s")
        }

        // The promotion.
        let rolloutStart = ProcessSample(pid: pid)
        let promoteStart = monotonicNanoseconds()
        let promote = Process()
        promote.executableURL = tandem
        promote.arguments = ["rollout", "promote", "--reason", "tandem bench fleet"] + common
        let promoteLog = scratch.appendingPathComponent("rollout-promote.log")
        _ = FileManager.default.createFile(atPath: promoteLog.path, contents: nil)
        promote.standardOutput = try FileHandle(forWritingTo: promoteLog)
        promote.standardError = promote.standardOutput
        try children.start(promote, deathSignal: true)
        var promoteSeconds: Double?
        var viewSeconds: Double?
        var peakRSS = rolloutStart.rssMiB
        let deadline = promoteStart + UInt64(timeout * 1e9)
        while monotonicNanoseconds() < deadline {
            if promoteSeconds == nil && !promote.isRunning { promoteSeconds = seconds(since: promoteStart) }
            peakRSS = max(peakRSS, ProcessSample(pid: pid).rssMiB)
            if viewSeconds == nil, let list = try? await deviceList(base),
                list.filter({ $0.modelVersion == setup.v2 }).count == devices
            {
                viewSeconds = seconds(since: promoteStart)
            }
            if viewSeconds != nil && promoteSeconds != nil && tally.count(on: setup.v2) == devices { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let rolloutEnd = ProcessSample(pid: pid)
        if promote.isRunning { children.stop([promote]) }
        let latencies = names.filter { $0 != canary }.compactMap { tally.activeAt($0, version: setup.v2) }
            .map { Double(Int64(bitPattern: $0 &- promoteStart)) / 1e9 }.sorted()
        let onV2 = tally.count(on: setup.v2)
        func percentile(_ p: Double) -> Double {
            latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
        }
        say(
            "promote: `tandem rollout promote` exited "
                + (promoteSeconds.map { String(format: "after %.2f s", $0) } ?? "not within the timeout")
                + (promote.isRunning ? "" : " (status \(promote.terminationStatus))"))
        say(
            String(
                format:
                    "rollout: %d of %d devices on %@; the %d promoted ones reported it after p50 %.2f s, p95 %.2f s, max %.2f s (the devices' acknowledged statuses)",
                onV2, devices, setup.v2, latencies.count, percentile(0.5), percentile(0.95), latencies.last ?? .nan))
        say(
            "rollout: the fleet view (GET /v1/devices) listed all \(devices) on \(setup.v2) "
                + (viewSeconds.map { String(format: "%.2f s after the promote", $0) } ?? "NOT within \(timeout) s"))
        say(
            String(
                format:
                    "tandem-cloud during the rollout: %.1f %% of a core (%.2f CPU-s over %.1f s), RSS peak %.1f MiB",
                100 * rolloutEnd.cpu(since: rolloutStart), rolloutEnd.cpuSeconds - rolloutStart.cpuSeconds,
                rolloutEnd.seconds - rolloutStart.seconds, peakRSS))
        let rejections = tally.rejections
        if !rejections.isEmpty { say("rejected: \(rejections.count), e.g. \(rejections[0])") }

        // The page and the API with the whole fleet known.
        for (name, path) in [("GET / (fleet page)", "/"), ("GET /v1/devices", "/v1/devices")] {
            var times = [Double]()
            var bytes = 0
            for _ in 0..<20 {
                let (data, took) = try await httpGet(base + path)
                times.append(took)
                bytes = data.count
            }
            times.sort()
            say(
                String(
                    format: "%@ with %d devices: median %.1f ms, max %.1f ms (%d bytes)", name, devices,
                    times[times.count / 2] * 1000, times[times.count - 1] * 1000, bytes))
        }
        let (sent, answered) = tally.escalations
        say("escalations: \(sent) sent, \(answered) verdicts received")
        say(
            String(
                format: "tandem-cloud at the end: RSS %.1f MiB, %.2f CPU-s since start", rolloutEnd.rssMiB,
                rolloutEnd.cpuSeconds))
        guard onV2 == devices, viewSeconds != nil else {
            say("FAILED: \(devices - onV2) devices not on \(setup.v2) within \(timeout) s of the promote")
            throw ExitCode(1)
        }
    }
}

/// What the device processes of `tandem bench fleet` report, read from their standard output.
final class BenchFleetTally: Sendable {
    private struct State {
        var ready = 0
        /// Device → (version, monotonic nanoseconds) of its latest acknowledged new version.
        var active: [String: (version: String, at: UInt64)] = [:]
        var rejections: [String] = []
        /// Per process: escalations sent, verdicts received.
        var counts: [Int: (Int, Int)] = [:]
    }

    private let state = Mutex(State())

    /// Devices connected so far.
    var readyDevices: Int { state.withLock { $0.ready } }

    /// Devices whose latest reported version is `version`.
    func count(on version: String) -> Int { state.withLock { $0.active.values.filter { $0.version == version }.count } }

    /// When `device` reported `version` active, if it has.
    func activeAt(_ device: String, version: String) -> UInt64? {
        state.withLock { $0.active[device].flatMap { $0.version == version ? $0.at : nil } }
    }

    /// Every rejection reported.
    var rejections: [String] { state.withLock { $0.rejections } }

    /// Escalations sent and verdicts received over all processes.
    var escalations: (Int, Int) {
        state.withLock { $0.counts.values.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) } }
    }

    /// Reads the lines of process `source` from `descriptor` on a thread of its own until it closes.
    func follow(_ descriptor: Int32, source: Int) {
        BackgroundThread.start(name: "bench-fleet-\(source)") { [self] in
            var pending = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return }
                pending += buffer[0..<count]
                while let end = pending.firstIndex(of: 0x0A) {
                    take(String(decoding: pending[..<end], as: UTF8.self), source: source)
                    pending.removeSubrange(...end)
                }
            }
        }
    }

    private func take(_ line: String, source: Int) {
        let words = line.split(separator: " ", maxSplits: 3).map(String.init)
        guard let kind = words.first else { return }
        state.withLock { state in
            switch kind {
            case "ready" where words.count >= 2: state.ready += Int(words[1]) ?? 0
            case "active" where words.count == 4:
                if let at = UInt64(words[3]) { state.active[words[1]] = (words[2], at) }
            case "rejected": state.rejections.append(line)
            case "counts" where words.count == 3: state.counts[source] = (Int(words[1]) ?? 0, Int(words[2]) ?? 0)
            default: break
            }
        }
    }
}

/// The scratch data directory of `tandem bench fleet`: key pair, registry with v1 (production) and v2, full model.
struct BenchFleetSetup {
    /// The fleet's private signing key.
    let key: URL
    /// Its public key, which the devices trust.
    let publicKey: URL
    /// The data directory: registry, rollout state, audit log, the worker's store.
    let data: URL
    /// The worker's full model.
    let fullModel: URL
    /// The version the devices start on (production).
    let v1 = "edge-bench-1"
    /// The version rolled out.
    let v2 = "edge-bench-2"

    /// The edge models' input: 8 samples of 3 channels at 100 Hz.
    static let edgeInput = InputSpec(
        channels: 3, window: 8, hop: 4, sampleRateHz: 100, mean: [0.5, 0.5, 0.5], std: [2, 2, 2])

    /// Makes everything in `directory`.
    init(directory: URL) throws {
        key = directory.appendingPathComponent("cloud.key")
        publicKey = try SigningKeyFile.createKeyPair(at: key).publicKeyURL
        data = directory.appendingPathComponent("data")
        let registry = try ModelRegistry(directory: data)
        let signingKey = try SigningKeyFile.readPrivateKey(from: key)
        for (seed, version) in [(UInt64(1), v1), (2, v2)] {
            let artifact = try Self.flattenDense(
                name: "edge-bench", version: version, seed: seed, input: Self.edgeInput)
            let url = directory.appendingPathComponent("\(version).tandem")
            try artifact.write(to: url)
            try registry.register(artifactAt: url, signingKey: signingKey, lineage: ModelLineage(source: "bench"))
        }
        try registry.setProduction(v1)
        var input = Self.edgeInput
        input.mean = [0, 0, 0]
        input.std = [1, 1, 1]
        fullModel = directory.appendingPathComponent("full.tandem")
        try Self.flattenDense(name: "full-bench", version: "full-bench-1", seed: 3, input: input).write(to: fullModel)
    }

    /// A flatten → dense float model over `input` with seeded weights, three classes, two golden inputs.
    static func flattenDense(name: String, version: String, seed: UInt64, input: InputSpec) throws -> ModelArtifact {
        var generator = SeededGenerator(seed: seed)
        let classes = 3
        let inputs = input.window * input.channels
        let architecture = [LayerSpec(type: .flatten), LayerSpec(type: .dense, units: classes)]
        let model = try FloatModel(
            architecture: architecture, window: input.window, channels: input.channels, classes: classes,
            weights: [
                "1.weight": Tensor(
                    shape: [classes, inputs],
                    scalars: (0..<(classes * inputs)).map { _ in generator.nextGaussian() * 0.3 }),
                "1.bias": Tensor(shape: [classes], scalars: [Float](repeating: 0, count: classes)),
            ])
        let manifest = ModelManifest(
            name: name, version: version, parentVersion: nil, createdAt: "2026-12-07T00:00:00Z",
            architecture: architecture, input: input, classNames: (0..<classes).map { "class\($0)" },
            metrics: ["test_accuracy": 0.9])
        let golden = Tensor(
            shape: [2, input.window, input.channels], scalars: (0..<(2 * inputs)).map { _ in generator.nextGaussian() })
        return try ModelArtifact(model: model, manifest: manifest, goldenInputs: golden)
    }
}

/// A process's resident memory and CPU time at one instant, from `/proc`.
struct ProcessSample {
    /// Monotonic seconds when it was taken.
    let seconds: Double
    /// User plus system CPU seconds so far.
    let cpuSeconds: Double
    /// VmRSS in MiB (0 if it cannot be read).
    let rssMiB: Double

    init(pid: Int32) {
        seconds = Double(monotonicNanoseconds()) / 1e9
        cpuSeconds = processCPUSeconds(pid)
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        let kilobytes = line.flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        rssMiB = kilobytes / 1024
    }

    /// The share of one core used between `earlier` and this sample.
    func cpu(since earlier: ProcessSample) -> Double {
        seconds > earlier.seconds ? (cpuSeconds - earlier.cpuSeconds) / (seconds - earlier.seconds) : 0
    }
}

/// ``cpuSeconds(of:)`` under a name ``ProcessSample``'s property does not shadow.
private func processCPUSeconds(_ pid: Int32) -> Double { cpuSeconds(of: pid) }

/// Raises this process's soft open-file limit to its hard limit (children inherit it).
///
/// - Returns: The soft limit now in force.
private func raiseOpenFileLimit() -> UInt64 {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    }
    return UInt64(limit.rlim_cur)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
private func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ValidationError("socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    guard bound else { throw ValidationError("cannot bind a port on 127.0.0.1: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Seconds since `start` (monotonic nanoseconds).
private func seconds(since start: UInt64) -> Double { Double(monotonicNanoseconds() - start) / 1e9 }

/// Checks `condition` every 100 ms until it holds (true) or `seconds` pass (false).
private func waitUntil(seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while monotonicNanoseconds() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}

/// One session for the bench's requests: no cache, no cookies.
private let benchSession = URLSession(configuration: .ephemeral)

/// `GET url`: the body (a 200 only) and the seconds from sending the request to having the whole body.
private func httpGet(_ url: String) async throws -> (Data, Double) {
    guard let address = URL(string: url) else { throw ValidationError("bad URL \(url)") }
    let start = monotonicNanoseconds()
    let (data, response) = try await benchSession.data(from: address)
    let took = seconds(since: start)
    guard (response as? HTTPURLResponse)?.statusCode == 200 else {
        throw ValidationError("GET \(url): \((response as? HTTPURLResponse)?.statusCode ?? 0)")
    }
    return (data, took)
}

/// The bench fleet's devices as the worker's `GET /v1/devices` lists them.
private func deviceList(_ base: String) async throws -> [BenchListedDevice] {
    let (data, _) = try await httpGet(base + "/v1/devices")
    return try JSONDecoder().decode(BenchDeviceList.self, from: data).devices.filter { $0.fleet == BenchFleet.fleet }
}

private struct BenchDeviceList: Decodable {
    var devices: [BenchListedDevice]
}

private struct BenchListedDevice: Decodable {
    var fleet: String
    var device: String
    var state: String
    var modelVersion: String?
}

/// Runs `program` with `arguments` as a child of the bench (its output to `log`) and waits for it to exit, off
/// the cooperative threads' time (polled).
///
/// - Returns: Its exit status.
private func runChild(_ program: URL, _ arguments: [String], log: URL) async throws -> Int32 {
    let process = Process()
    process.executableURL = program
    process.arguments = arguments
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: log)
    process.standardError = process.standardOutput
    try BenchChildren.shared.start(process, deathSignal: true)
    while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    BenchChildren.shared.stop([process])
    return process.terminationStatus
}
