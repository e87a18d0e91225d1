import Foundation
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem bench fleet` with a small fleet: every emulated device takes the promoted version, the report has its
/// lines, and neither a finished nor a killed bench leaves a process behind (mosquitto, the worker, the device
/// processes, the `tandem rollout` commands).
///
/// As in ``BenchCleanupTests``, the bench runs with TMPDIR set to this test's own directory, so every process it
/// starts carries that path on its command line.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct BenchFleetTests {
    /// Starts `tandem bench fleet` with `arguments` in a scratch TMPDIR; its output goes to `log`.
    static func startBench(_ arguments: [String], in directory: URL, log: URL) throws -> Process {
        let bench = Process()
        bench.executableURL = BuiltProducts.executable("tandem")
        bench.arguments = ["bench", "fleet"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = directory.path
        bench.environment = environment
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        bench.standardOutput = try FileHandle(forWritingTo: log)
        bench.standardError = try FileHandle(forWritingTo: log)
        try bench.run()
        return bench
    }

    static func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tandem-bench-fleet-test-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func killSurvivors(of marker: String, excluding pid: Int32) {
        for line in BenchCleanupTests.survivors(carrying: marker, excluding: pid) {
            if let survivor = Int32(line.prefix { $0 != ":" }) { kill(survivor, SIGKILL) }
        }
    }

    @Test("20 emulated devices all take the promoted version; the report has every figure; nothing is left running")
    func smallFleetTakesThePromotion() async throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("bench.log")
        let bench = try Self.startBench(
            ["--devices", "20", "--devices-per-process", "8", "--idle-seconds", "1", "--timeout", "30"], in: directory,
            log: log)
        defer {
            if bench.isRunning { kill(bench.processIdentifier, SIGKILL) }
            Self.killSurvivors(of: directory.path, excluding: bench.processIdentifier)
        }
        let ended = await waitUntil(.seconds(120)) { !bench.isRunning }
        try #require(ended, "the bench did not end within 120 s")
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(bench.terminationReason == .exit && bench.terminationStatus == 0, "\(output)")
        for line in [
            "tandem bench fleet: 20 devices in 3 processes",
            "tandem-cloud before the fleet: RSS",
            "connect: 20 devices connected",
            "tandem-cloud with 20 devices connected: RSS",
            "promote: `tandem rollout promote` exited after",
            "rollout: 20 of 20 devices on edge-bench-2; the 19 promoted ones reported it after p50",
            "rollout: the fleet view (GET /v1/devices) listed all 20 on edge-bench-2",
            "tandem-cloud during the rollout:",
            "GET / (fleet page) with 20 devices: median",
            "GET /v1/devices with 20 devices: median",
        ] {
            #expect(output.contains(line), "missing \"\(line)\" in:\n\(output)")
        }
        #expect(!output.contains("rejected"), "\(output)")
        let clean = await waitUntil(.seconds(10)) {
            BenchCleanupTests.survivors(carrying: directory.path, excluding: bench.processIdentifier).isEmpty
        }
        #expect(clean, "\(BenchCleanupTests.survivors(carrying: directory.path, excluding: bench.processIdentifier))")
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
            $0.hasPrefix("tandem-bench")
        }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("a fleet bench killed with SIGKILL while its devices are connected leaves no process behind")
    func killedFleetBenchLeavesNothing() async throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("bench.log")
        let bench = try Self.startBench(
            ["--devices", "10", "--devices-per-process", "5", "--idle-seconds", "60"], in: directory, log: log)
        let pid = bench.processIdentifier
        defer {
            if bench.isRunning { kill(pid, SIGKILL) }
            Self.killSurvivors(of: directory.path, excluding: pid)
        }
        let connected = await waitUntil(.seconds(60)) {
            (try? String(contentsOf: log, encoding: .utf8))?.contains("connect: 10 devices connected") ?? false
        }
        try #require(connected, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        let running = BenchCleanupTests.survivors(carrying: directory.path, excluding: pid)
        #expect(running.filter { $0.contains("fleet-devices") }.count == 2, "\(running)")
        #expect(running.contains { $0.contains("tandem-cloud serve") }, "\(running)")
        kill(pid, SIGKILL)
        let ended = await waitUntil(.seconds(20)) { !bench.isRunning }
        #expect(ended)
        let clean = await waitUntil(.seconds(10)) {
            BenchCleanupTests.survivors(carrying: directory.path, excluding: pid).isEmpty
        }
        #expect(
            clean,
            "left running after the kill: \(BenchCleanupTests.survivors(carrying: directory.path, excluding: pid))")
    }
}
