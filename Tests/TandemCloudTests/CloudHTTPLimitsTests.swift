import Foundation
import TandemCloud
import TandemTestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A TCP connection to 127.0.0.1:`port` that sends nothing.
final class IdleConnection {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw CloudStartError("connect: \(String(cString: strerror(errno)))") }
    }

    /// Whether the server closed it within `seconds` (a read returns end of file).
    func closedByPeer(within seconds: Int) -> Bool {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        return recv(descriptor, &byte, 1, 0) == 0
    }

    deinit { close(descriptor) }
}

/// The HTTP server's idle timeout and connection limit, and the API token file's mode.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct CloudHTTPLimitsTests {
    @Test(
        "connections beyond the limit wait until one closes, and idle connections are closed after the idle timeout")
    func idleTimeoutAndConnectionLimit() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let worker = try await defenseWorker(broker: broker, directory: scratch.url.path) {
                var http = CloudHTTPAPI.Configuration()
                http.address = CloudHTTPAPI.Address(host: "127.0.0.1", port: 0)
                http.idleTimeoutSeconds = 1.5
                http.maximumConnections = 2
                $0.http = http
            }
            #expect(await waitUntil { worker.log.contains("http: listening on 127.0.0.1:") }, "\(worker.log)")
            let text = worker.log
            let range = try #require(text.range(of: "http: listening on 127.0.0.1:"))
            let port = try #require(Int(text[range.upperBound...].prefix { $0.isNumber }))

            // Two clients take both connections and send nothing.
            let idle = try (0..<2).map { _ in try IdleConnection(port: port) }
            try await Task.sleep(for: .milliseconds(200))
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/healthz")!)
            request.timeoutInterval = 20
            let started = ContinuousClock.now
            let (_, response) = try await URLSession.shared.data(for: request)
            let waited = ContinuousClock.now - started
            #expect((response as? HTTPURLResponse)?.statusCode == 200)
            // Served only once the idle ones were closed, about 1.5 s after they connected.
            #expect(waited >= .milliseconds(900) && waited < .seconds(10), "\(waited)")
            #expect(idle.allSatisfy { $0.closedByPeer(within: 5) }, "the idle connections were closed by the server")
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }

    @Test("the API token file is read only when open to its owner alone; otherwise the reason names mode and fix")
    func tokenFileMode() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("token").path
        try "s3cret\nsecond line\n".write(toFile: path, atomically: true, encoding: .utf8)
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            #expect(throws: APIConfigurationError.self, "mode \(String(mode, radix: 8))") {
                _ = try APITokenFile.read(path: path)
            }
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        do {
            _ = try APITokenFile.read(path: path)
        } catch {
            #expect(error.description.contains("mode 644") && error.description.contains("chmod 600 \(path)"))
        }
        for mode in [0o600, 0o400] {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            #expect(try APITokenFile.read(path: path) == "s3cret")
        }
        #expect(throws: APIConfigurationError.self) { _ = try APITokenFile.read(path: path + "-missing") }
    }

    @Test("tandem-cloud refuses to start with an API token file its group or others may read, saying why")
    func executableRefusesOpenTokenFile() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let token = scratch.url.appendingPathComponent("token").path
        try "s3cret\n".write(toFile: token, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: token)
        let result = try runCommand(
            BuiltProducts.executable("tandem-cloud"),
            [
                "serve", "--model", scratch.url.appendingPathComponent("full.tandem").path, "--data-dir",
                scratch.url.appendingPathComponent("data").path, "--http", "127.0.0.1:0", "--api-token-file", token,
            ])
        #expect(result.status != 0)
        #expect(result.standardError.contains("chmod 600 \(token)"), "\(result.standardError)")
        #expect(
            !FileManager.default.fileExists(atPath: scratch.url.appendingPathComponent("data/tandem.sqlite").path),
            "it stopped before opening anything")
    }
}
