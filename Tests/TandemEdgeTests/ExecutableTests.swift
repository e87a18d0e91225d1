import Foundation
import TandemCore
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The `tandem-edge` executable, run as a user would.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ExecutableTests {
    let edge = BuiltProducts.executable("tandem-edge")

    func csv(from start: Int, count: Int) -> String {
        (start..<(start + count)).map { i in
            let t = Double(i) * 0.02
            return "\(t),\(sin(t * 7)),\(cos(t * 3)),\(Double(i % 5) * 0.1)"
        }.joined(separator: "\n") + "\n"
    }

    @Test(
        "run follows a file, serves metrics.listen, and on SIGTERM drains what was written, flushes and exits 0 with every window"
    )
    func runAndTerminate() async throws {
        let metricsPort = try MosquittoBroker.freeLoopbackPort()
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        try TestModel.artifact(window: 8, hop: 4, channels: 3).write(
            to: scratch.url.appendingPathComponent("model.tandem"))
        try csv(from: 0, count: 100).write(toFile: "\(dir)/samples.csv", atomically: true, encoding: .utf8)
        try """
        device: {id: test-box}
        broker: {url: ""}
        model: {path: \(dir)/model.tandem}
        streams:
          - name: vib
            channels: 3
            source: {kind: file, path: \(dir)/samples.csv, startAtEnd: false, pollIntervalMs: 50}
        policy: {threshold: 0.6, maxEscalationsPerSecond: 1000}
        sinks:
          - {kind: file, path: \(dir)/records.jsonl, flushIntervalMs: 100}
        statusIntervalSeconds: 3600
        metrics: {listen: "127.0.0.1:\(metricsPort)"}
        """.write(toFile: "\(dir)/agent.yaml", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = edge
        process.arguments = ["run", "--config", "\(dir)/agent.yaml"]
        let errURL = scratch.url.appendingPathComponent("stderr.txt")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        func stderr() -> String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }
        func records() -> [String] {
            ((try? String(contentsOfFile: "\(dir)/records.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").map(
                String.init)
        }
        let deadline = Date().addingTimeInterval(20)
        while records().count < (100 - 8) / 4 + 1 && Date() < deadline && process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(records().count == 24, "the first 100 samples give 24 windows; \(stderr())")
        let metrics = MetricsTests().get("/metrics", port: metricsPort)
        #expect(
            metrics.contains("200 OK") && metrics.contains("tandem_edge_windows"), "metrics: \(metrics.prefix(200))")
        // More samples, then SIGTERM at once: the agent must read them before it stops.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/samples.csv"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(csv(from: 100, count: 100).utf8))
        try handle.close()
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr())")
        let all = records()
        let expected = (200 - 8) / 4 + 1
        #expect(all.count == expected, "every window of all 200 samples")
        let first = try #require(try JSONSerialization.jsonObject(with: Data(all[0].utf8)) as? [String: Any])
        #expect(first["stream"] as? String == "vib" && first["modelVersion"] as? String == "test-1")
        #expect(stderr().contains("started") && stderr().contains("stopped"))
    }

    @Test("run reads stdin to its end and exits 0; bad lines are counted, not fatal")
    func stdin() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        try TestModel.artifact().write(to: scratch.url.appendingPathComponent("model.tandem"))
        try ("timestamp,a,b,c\n" + csv(from: 0, count: 40) + "oops,1,2,3\n1,2\n").write(
            toFile: "\(dir)/in.csv", atomically: true, encoding: .utf8)
        try "broker: {url: \"\"}\nstreams: [{name: s, channels: 3}]\n".write(
            toFile: "\(dir)/agent.yaml", atomically: true, encoding: .utf8)
        let result = try runCommand(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c",
                "'\(edge.path)' --config '\(dir)/agent.yaml' --model '\(dir)/model.tandem' --device-id box < '\(dir)/in.csv'",
            ])
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n")
        let expected = (40 - 8) / 4 + 1
        #expect(lines.count == expected)
        #expect(result.standardError.contains("wrongChannelCount"), "\(result.standardError)")
        #expect(result.standardError.contains("\"nonNumeric\":1"), "the final status counts the bad line")
    }

    @Test("check-config prints the effective configuration, or names each bad key and fails")
    func checkConfig() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("agent.yaml").path
        try "device: {id: box}\nstreams: [{name: s, channels: 3, source: {kind: udp, port: 9999}}]\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let good = try runCommand(
            edge, ["check-config", "--config", path, "--threshold", "0.7"],
            environment: ["TANDEM_BROKER_URL": "mqtts://b:8883"])
        #expect(good.status == 0, "\(good.standardError)")
        #expect(good.standardOutput.contains("threshold: 0.7") && good.standardOutput.contains("url: mqtts://b:8883"))
        #expect(good.standardOutput.contains("port: 9999"))
        try "streams: [{name: s, channels: 0}]\npolicy: {budget: 3}\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let bad = try runCommand(edge, ["check-config", "--config", path])
        #expect(bad.status != 0)
        #expect(bad.standardError.contains("streams[0].channels: must be positive"), "\(bad.standardError)")
        #expect(bad.standardError.contains("policy.budget"))
        let help = try runCommand(edge, ["--help"])
        #expect(
            help.status == 0 && help.standardOutput.contains("TANDEM_BROKER_URL")
                && help.standardOutput.contains("check-config"))
    }
}
