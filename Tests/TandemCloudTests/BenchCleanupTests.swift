import Foundation
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem bench cloud` killed mid-run (SIGTERM, SIGKILL) leaves no process behind: neither its mosquitto nor its
/// `tandem-cloud serve` workers.
///
/// The bench runs with TMPDIR set to a directory of this test's own, so the broker's configuration and the
/// workers' data directories, and with them the command lines of every process it starts, carry that path.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct BenchCleanupTests {
    /// A live (not zombie) process whose command line contains `marker`, other than `excluded`.
    static func survivors(carrying marker: String, excluding excluded: Int32) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> String? in
            guard let pid = Int32(entry), pid != excluded, pid != getpid() else { return nil }
            // A zombie has exited (only its parent's wait is missing) and its command line reads empty.
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")"),
                stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z",
                let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { return nil }
            let command = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return command.contains(marker) ? "\(pid): \(command)" : nil
        }
    }

    @Test(
        "a bench killed mid-run leaves neither workers nor broker; after SIGTERM it also removed its scratch and exited 143",
        arguments: [SIGTERM, SIGKILL])
    func killedBenchLeavesNothing(signal: Int32) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-cleanup-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = directory.path
        let model = directory.appendingPathComponent("full.tandem")
        try fullModelArtifact().write(to: model)
        let bench = Process()
        bench.executableURL = BuiltProducts.executable("tandem")
        // Long enough that the kill always lands in the throughput run.
        bench.arguments = [
            "bench", "cloud", "--model", model.path, "--workers", "2", "--count", "100000000", "--window", "500",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = directory.path
        bench.environment = environment
        let log = directory.appendingPathComponent("bench.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        bench.standardOutput = try FileHandle(forWritingTo: log)
        bench.standardError = try FileHandle(forWritingTo: log)
        try bench.run()
        defer {
            // Whatever the test saw, nothing it started may stay.
            if bench.isRunning { kill(bench.processIdentifier, SIGKILL) }
            for line in Self.survivors(carrying: marker, excluding: bench.processIdentifier) {
                if let pid = Int32(line.prefix { $0 != ":" }) { kill(pid, SIGKILL) }
            }
        }
        let benchPID = bench.processIdentifier
        // mosquitto and both workers, then a moment of the run itself.
        let started = await waitUntil(.seconds(30)) {
            Self.survivors(carrying: marker, excluding: benchPID).filter { $0.contains("tandem-cloud serve") }.count
                == 2 && Self.survivors(carrying: marker, excluding: benchPID).contains { $0.contains("mosquitto") }
        }
        try #require(started, "\(Self.survivors(carrying: marker, excluding: benchPID))")
        try await Task.sleep(for: .seconds(3))
        #expect(bench.isRunning, "the bench ended before it was killed")

        let killed = ContinuousClock.now
        kill(benchPID, signal)
        let benchEnded = await waitUntil(.seconds(20)) { !bench.isRunning }
        #expect(benchEnded)
        let clean = await waitUntil(.seconds(10)) { Self.survivors(carrying: marker, excluding: benchPID).isEmpty }
        let took = ContinuousClock.now - killed
        #expect(clean, "left running \(took) after the kill: \(Self.survivors(carrying: marker, excluding: benchPID))")
        if signal == SIGTERM {
            bench.waitUntilExit()
            #expect(bench.terminationReason == .exit && bench.terminationStatus == 128 + SIGTERM)
            // The broker's and the workers' scratch directories went with them.
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                .filter { $0.hasPrefix("tandem-bench") }
            #expect(left.isEmpty, "\(left)")
        }
    }
}
