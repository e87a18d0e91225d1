import Dispatch
import Synchronization
import TandemMQTT

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A minimal HTTP/1.0 endpoint serving Prometheus text on `GET /metrics` (404 for anything else).
///
/// One thread accepts and answers connections one at a time; a request must arrive within one second
/// and fit in 4 KiB. It is meant for a scraper on localhost, not as a web server.
public final class MetricsEndpoint: Sendable {
    /// The port it listens on (the kernel's choice when 0 was asked for).
    public let boundPort: Int
    private let socketDescriptor: Int32
    private let render: @Sendable () -> String
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// Binds `host:port` (IPv4) and starts answering.
    ///
    /// - Throws: ``MetricsEndpointError`` naming the address if it cannot be bound.
    public init(host: String, port: Int, render: @escaping @Sendable () -> String) throws(MetricsEndpointError) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
        guard (0...65535).contains(port), inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw MetricsEndpointError(message: "metrics.listen \(host):\(port) is not an IPv4 address and port")
        }
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else {
            throw MetricsEndpointError(message: "metrics socket: \(String(cString: strerror(errno)))")
        }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MetricsEndpointError(message: "metrics \(host):\(port): \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        socketDescriptor = fd
        boundPort = Int(UInt16(bigEndian: actual.sin_port))
        self.render = render
        BackgroundThread.start(name: "metrics") { [self] in serve() }
    }

    /// Stops answering and closes the socket.
    public func stop() {
        guard !stopRequested.exchange(true, ordering: .relaxed) else { return }
        finished.wait()
        close(socketDescriptor)
    }

    private func serve() {
        var request = [UInt8](repeating: 0, count: 4096)
        while !stopRequested.load(ordering: .relaxed) {
            var listening = pollfd(fd: socketDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&listening, 1, 100) > 0 else { continue }
            let client = accept(socketDescriptor, nil, nil)
            guard client >= 0 else { continue }
            let received = readRequest(client, into: &request)
            let firstLine = String(decoding: request[0..<received], as: UTF8.self).split(separator: "\n").first ?? ""
            let parts = firstLine.split(separator: " ")
            let response: String
            if parts.count >= 2, parts[0] == "GET", parts[1] == "/metrics" {
                let body = render()
                response =
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            } else {
                response = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"
            }
            let bytes = Array(response.utf8)
            bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                var sent = 0
                while sent < raw.count {
                    let n = send(client, base + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                    if n <= 0 { break }
                    sent += n
                }
            }
            close(client)
        }
        finished.signal()
    }

    /// Reads a request head (until a blank line, 4 KiB, or one second of silence); returns its length.
    private func readRequest(_ client: Int32, into request: inout [UInt8]) -> Int {
        var received = 0
        var waiting = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
        while received < request.count, poll(&waiting, 1, 1000) > 0 {
            let n = request.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return recv(client, base + received, raw.count - received, 0)
            }
            if n <= 0 { break }
            received += n
            let head = String(decoding: request[0..<received], as: UTF8.self)
            if head.contains("\r\n\r\n") || head.contains("\n\n") { break }
        }
        return received
    }
}

/// The metrics endpoint could not be started.
public struct MetricsEndpointError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What failed, naming the address.
    public var message: String
    /// The message.
    public var description: String { message }
}
