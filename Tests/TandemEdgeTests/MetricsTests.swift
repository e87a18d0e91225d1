import Foundation
import Testing

@testable import TandemEdge

#if canImport(Glibc)
    import Glibc
#endif

struct MetricsTests {
    /// A plain HTTP GET over a loopback socket; returns the whole response.
    func get(_ path: String, port: Int) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return "" }
        // Never hang a test: the port may have been taken by another test's listener once the endpoint closed.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.0\r\nHost: localhost\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }

    @Test("the Prometheus endpoint serves the agent's counters on /metrics and 404 elsewhere")
    func endpoint() async throws {
        var configuration = AgentConfiguration()
        configuration.streams = [.init(name: "s", channels: 3)]
        let text = (0..<20).map { "\($0),1,2,3" }.joined(separator: "\n") + "\nbad,1,2,3\n"
        // A pipe keeps the agent running until the test closes its write end.
        var fds: [Int32] = [0, 0]
        #expect(Glibc.pipe(&fds) == 0)
        defer { close(fds[0]) }
        _ = Array(text.utf8).withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
        let agent = try EdgeAgent(
            configuration: configuration, classifier: try TestModel.classifier(),
            sources: [StandardInputSource(fileDescriptor: fds[0], description: "pipe")], sinks: [CollectingSink()],
            log: { _ in })
        let port = try agent.serveMetrics(host: "127.0.0.1", port: 0)
        let running = Task { try await agent.run() }
        let metrics = get("/metrics", port: port)
        #expect(metrics.hasPrefix("HTTP/1.0 200 OK"))
        #expect(metrics.contains("# TYPE tandem_edge_windows_total counter"))
        #expect(metrics.contains("tandem_edge_model_info{version=\"test-1\"} 1"))
        #expect(get("/other", port: port).hasPrefix("HTTP/1.0 404"))
        close(fds[1])
        try await running.value
        #expect(agent.prometheusText().contains("tandem_edge_windows_total{stream=\"s\"} 4"))
        #expect(agent.prometheusText().contains("tandem_edge_input_errors_total{stream=\"s\",reason=\"nonNumeric\"} 1"))
        #expect(!get("/metrics", port: port).hasPrefix("HTTP/1.0"), "the endpoint closes when the agent stops")
        #expect(throws: MetricsEndpointError.self) { try MetricsEndpoint(host: "localhost", port: 1) { "" } }
    }
}
