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

/// Runs blocking `body` on a thread of its own: a blocked thread of the cooperative pool (two here) could hold up the
/// server under test, whose handlers run there.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}

/// A TCP connection to 127.0.0.1:`port`, driven by hand (blocking calls: use them through ``offThePool(_:)``).
final class IdleConnection: Sendable {
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

    /// Sends one keep-alive `GET /healthz` and reads the start of its answer (within 10 s): the server has accepted
    /// the connection and keeps it open afterwards.
    func getHealth() -> String {
        let request = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : ""
    }

    /// Waits up to `seconds` for the server to close it (a read returns end of file, or the connection is reset;
    /// what is left of an answer is read and skipped).
    ///
    /// - Returns: nil once closed, else what happened instead.
    func waitForClose(within seconds: Int) -> String? {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        var skipped = 0
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { return nil }
            if count > 0 {
                skipped += count
                continue
            }
            if errno == ECONNRESET { return nil }
            if errno == EINTR { continue }
            return "still open after \(seconds) s (errno \(errno), \(skipped) bytes skipped)"
        }
        return "still open after \(seconds) s (\(skipped) bytes skipped)"
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
                http.idleTimeoutSeconds = 2
                http.maximumConnections = 2
                $0.http = http
            }
            #expect(
                await waitUntil(startLimit) { worker.log.contains("http: listening on 127.0.0.1:") }, "\(worker.log)")
            let text = worker.log
            let range = try #require(text.range(of: "http: listening on 127.0.0.1:"))
            let port = try #require(Int(text[range.upperBound...].prefix { $0.isNumber }))

            // Two clients take both connections, one after the other: each asks once, then keeps its connection open
            // and says nothing.
            var idle = [IdleConnection]()
            var answered = [ContinuousClock.Instant]()
            for _ in 0..<2 {
                let connection = try IdleConnection(port: port)
                #expect(await offThePool { connection.getHealth() }.hasPrefix("HTTP/1.1 200"))
                answered.append(.now)
                idle.append(connection)
            }
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/healthz")!)
            request.timeoutInterval = 20
            let (_, response) = try await URLSession.shared.data(for: request)
            let served = ContinuousClock.now
            #expect((response as? HTTPURLResponse)?.statusCode == 200)
            // Served only once a slot was free: an idle connection closed, 2 s after its answer at the earliest (with
            // no limit it is served at once; with no idle timeout, never).
            #expect(served - answered[0] >= .milliseconds(1800), "\(served - answered[0])")
            for connection in idle {
                let problem = await offThePool { connection.waitForClose(within: 30) }
                #expect(problem == nil, "an idle connection was not closed by the server: \(problem ?? "")")
            }
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
