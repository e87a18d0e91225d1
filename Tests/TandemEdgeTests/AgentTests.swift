import Foundation
import Synchronization
import TandemCore
import TandemProtocol
import TandemTestSupport
import Testing

@testable import TandemEdge

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized, .timeLimit(.minutes(1)))
struct AgentTests {
    @Test("two named streams, a followed file and UDP, each windowed on its own; stop drains both")
    func severalStreams() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("a.csv").path
        try (0..<60).map { "\(Double($0) * 0.1),1,2,\($0)" }.joined(separator: "\n").appending("\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let udp = try UDPSource(host: "127.0.0.1", port: 0)
        var configuration = AgentConfiguration()
        configuration.device.id = "box"
        var fileSource = AgentConfiguration.Source(), udpSource = AgentConfiguration.Source()
        fileSource.kind = .file
        fileSource.path = path
        udpSource.kind = .udp
        udpSource.port = udp.boundPort
        configuration.streams = [
            .init(name: "file", channels: 3, source: fileSource), .init(name: "udp", channels: 3, source: udpSource),
        ]
        configuration.policy.threshold = 1
        configuration.policy.maxEscalationsPerSecond = 1e9
        let sink = CollectingSink()
        let escalations = OfflineEscalations()
        let agent = try EdgeAgent(
            configuration: configuration, classifier: try TestModel.classifier(),
            sources: [FollowedFileSource(path: path, pollIntervalSeconds: 0.02), udp], sinks: [sink],
            escalations: escalations, log: { _ in })
        let running = Task { try await agent.run() }

        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(udp.boundPort).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        for i in 0..<40 {
            var bytes = Array("{\"ts\":\(i),\"values\":[0.5,\(i),-1],\"stream\":\"udp\"}".utf8)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, &bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            // Loopback UDP drops nothing at this rate, but pace it so the socket buffer is never the question.
            if i % 10 == 9 { try await Task.sleep(for: .milliseconds(5)) }
        }
        let deadline = Date().addingTimeInterval(5)
        while sink.snapshot.count < 14 + 9 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        agent.stop()
        try await running.value

        let statistics = agent.currentStatistics()
        #expect(statistics.windowsByStream == ["file": (60 - 8) / 4 + 1, "udp": (40 - 8) / 4 + 1])
        #expect(Set(sink.snapshot.map(\.stream)) == ["file", "udp"])
        #expect(statistics.escalations == statistics.windows, "threshold 1 escalates every window")
        #expect(escalations.count == statistics.windows)
        #expect(sink.snapshot.allSatisfy { $0.provisional && $0.escalationId != nil }, "no verdicts offline")
        #expect(agent.statusJSON().contains("\"windows\":\(statistics.windows)"))
    }
}

/// Stands in for the cloud: decodes each escalation and answers a third in time with another class,
/// a third never, and a third too late (after the deadline), with another class.
final class RespondingTransport: EscalationTransport {
    let stream: AsyncStream<Verdict>
    let continuation: AsyncStream<Verdict>.Continuation
    let submitted = Mutex(0)
    let decodeFailures = Mutex(0)

    init() { (stream, continuation) = AsyncStream.makeStream(of: Verdict.self) }

    func verdicts() -> AsyncStream<Verdict>? { stream }

    func submit(_ payload: EscalationPayload, encoded: [UInt8]) {
        let n = submitted.withLock {
            $0 += 1
            return $0
        }
        guard let decoded = try? EscalationPayload(decoding: encoded), let top = decoded.topK.first else {
            decodeFailures.withLock { $0 += 1 }
            return
        }
        var probabilities: [Float] = [0.1, 0.1, 0.1]
        let label = (top.label + 1) % 3
        probabilities[label] = 0.8
        let verdict = Verdict(
            escalationId: decoded.id, label: label, probabilities: probabilities, modelVersion: "full-1")
        let continuation = self.continuation
        switch n % 3 {
        case 0: continuation.yield(verdict)
        case 1: break
        default: DispatchQueue.global().asyncAfter(deadline: .now() + 2.5) { continuation.yield(verdict) }
        }
    }
}

extension AgentTests {
    @Test("verdicts in time replace edge predictions; none → provisional; a late different one → correction")
    func verdicts() async throws {
        var configuration = AgentConfiguration()
        configuration.streams = [.init(name: "s", channels: 3)]
        configuration.policy.threshold = 1
        configuration.policy.maxEscalationsPerSecond = 1e9
        configuration.verdictDeadlineMs = 1000
        var fds: [Int32] = [0, 0]
        #expect(Glibc.pipe(&fds) == 0)
        defer { close(fds[0]) }
        let sink = CollectingSink()
        let transport = RespondingTransport()
        let agent = try EdgeAgent(
            configuration: configuration, classifier: try TestModel.classifier(),
            sources: [StandardInputSource(fileDescriptor: fds[0], description: "pipe")], sinks: [sink],
            escalations: transport, log: { _ in })
        let running = Task { try await agent.run() }
        let text = (0..<40).map { "\($0),\(Double($0) * 0.1),2,-1" }.joined(separator: "\n") + "\n"
        _ = Array(text.utf8).withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
        try await Task.sleep(for: .milliseconds(4000))  // past every deadline and every late verdict
        close(fds[1])
        try await running.value

        let records = sink.snapshot
        let statistics = agent.currentStatistics()
        #expect(statistics.windows == 9 && statistics.escalations == 9)
        #expect(transport.decodeFailures.withLock { $0 } == 0, "every escalation decodes")
        let predictions = records.filter { $0.kind == .prediction }
        #expect(predictions.count == 9, "one prediction record per window")
        #expect(predictions.filter { $0.origin == .cloud && !$0.provisional }.count == 3)
        #expect(predictions.filter { $0.origin == .edge && $0.provisional }.count == 6)
        let corrections = records.filter { $0.kind == .correction }
        #expect(corrections.count == 3 && corrections.allSatisfy { $0.origin == .cloud && $0.modelVersion == "full-1" })
        #expect(statistics.verdictsInTime == 3 && statistics.corrections == 3)
        #expect(Set(corrections.compactMap(\.escalationId)).isSubset(of: Set(predictions.compactMap(\.escalationId))))
    }
}

extension AgentTests {
    @Test("a stream whose sample rate differs from the model's is reported once; a matching one is not")
    func sampleRateCheck() async throws {
        let artifact = try TestModel.artifact(sampleRateHz: 50)
        let classifier = FloatWindowClassifier(model: try FloatModel(artifact: artifact), manifest: artifact.manifest)
        var configuration = AgentConfiguration()
        var slowSource = AgentConfiguration.Source(), rightSource = AgentConfiguration.Source()
        (slowSource.kind, slowSource.path) = (.file, "/slow.csv")
        (rightSource.kind, rightSource.path) = (.file, "/right.csv")
        configuration.streams = [
            .init(name: "slow", channels: 3, source: slowSource),
            .init(name: "right", channels: 3, source: rightSource),
        ]
        let slow = (0..<100).map { "\(Double($0) * 0.1),1,2,3" }.joined(separator: "\n") + "\n"
        let right = (0..<100).map { "\(Double($0) * 0.02),1,2,3" }.joined(separator: "\n") + "\n"
        let messages = Mutex<[String]>([])
        let agent = try EdgeAgent(
            configuration: configuration, classifier: classifier,
            sources: [
                TextSource(Array(slow.utf8), maximumLineBytes: 256),
                TextSource(Array(right.utf8), maximumLineBytes: 256),
            ], sinks: [CollectingSink()], log: { m in messages.withLock { $0.append(m) } })
        try await agent.run()
        let statistics = agent.currentStatistics()
        #expect(statistics.sampleRateMismatchByStream.keys.sorted() == ["slow"])
        #expect(abs((statistics.sampleRateMismatchByStream["slow"] ?? 0) - 10) < 0.01)
        #expect(messages.withLock { $0 }.filter { $0.contains("10 Hz") && $0.contains("50 Hz") }.count == 1)
        #expect(statistics.windowsByStream["slow"] ?? 0 == 0, "every 0.1 s step is a gap at 50 Hz: no windows")
        #expect(statistics.windowsByStream["right"] == (100 - 8) / 4 + 1)
    }
}

extension AgentTests {
    @Test("streams sharing one source: JSON lines go to the stream they name, CSV lines to the first")
    func sharedSource() async throws {
        var configuration = AgentConfiguration()
        configuration.device.id = "box"
        configuration.streams = ["a", "b", "c"].map { .init(name: $0, channels: 3) }  // all on stdin: one reader
        #expect(configuration.sourceGroups == [[0, 1, 2]])
        try configuration.validate()
        var lines = [String]()
        for i in 0..<40 {
            lines.append("{\"stream\":\"b\",\"ts\":\(i),\"values\":[1,2,3]}")
            lines.append("\(i),1,2,3")  // no stream field: the first stream, a
            if i < 20 { lines.append("{\"ts\":\(i),\"values\":[1,2,3],\"stream\":\"c\"}") }
        }
        lines.append("{\"ts\":99,\"values\":[1,2,3],\"stream\":\"zzz\"}")
        let text = lines.joined(separator: "\n") + "\n"
        let agent = try EdgeAgent(
            configuration: configuration, classifier: try TestModel.classifier(),
            sources: [TextSource(Array(text.utf8), maximumLineBytes: 256)], sinks: [CollectingSink()], log: { _ in })
        try await agent.run()
        let statistics = agent.currentStatistics()
        #expect(statistics.windowsByStream == ["a": 9, "b": 9, "c": 4])
        #expect(statistics.inputErrors.byStream == ["a": [.unknownStream: 1]])
        #expect(throws: ConfigurationError.self) {
            try EdgeAgent(
                configuration: configuration, classifier: try TestModel.classifier(),
                sources: [TextSource([], maximumLineBytes: 64), TextSource([], maximumLineBytes: 64)], sinks: [])
        }
    }
}
