import Foundation
import TandemCore
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
        configuration.streams = [.init(name: "file", channels: 3), .init(name: "udp", channels: 3)]
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
