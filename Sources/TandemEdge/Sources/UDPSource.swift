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

/// Lines from UDP datagrams on a port: one sample line per datagram (a trailing newline is allowed;
/// a datagram holding several newline-separated lines yields each).
///
/// The socket is bound when the source is created, so a port in use fails at start. Datagrams are
/// collected into batches of up to 256 lines or whatever arrived within one 100 ms poll. With an allow-list,
/// a datagram from any other sender address is dropped unread and counted (``LineBatch/refusedDatagrams``,
/// reported as `senderNotAllowed`).
public final class UDPSource: LineSource {
    /// `udp <host>:<port>`.
    public let description: String
    /// The port the socket is bound to (the kernel's choice when 0 was asked for).
    public let boundPort: Int
    private let socketDescriptor: Int32
    private let maximumLineBytes: Int
    private let allowedSenders: [IPv4Network]
    private let channel = SourceChannel()

    /// Binds a UDP socket on `host` (an IPv4 address, default loopback: senders are not authenticated) and `port`
    /// (0: any free port), taking datagrams only from `allowedSenders` (empty: from any sender that can reach
    /// `host`).
    ///
    /// - Throws: ``SourceError`` naming the address if the socket cannot be created or bound.
    public init(
        host: String = "127.0.0.1", port: Int, allowedSenders: [IPv4Network] = [], maximumLineBytes: Int = 4096
    ) throws(SourceError) {
        guard (0...65535).contains(port) else {
            throw SourceError(.invalidParameter, "udp port \(port) is not within 0…65535")
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw SourceError(.invalidParameter, "udp host '\(host)' is not an IPv4 address")
        }
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_DGRAM, 0)
        #endif
        guard fd >= 0 else {
            throw SourceError(.io, "udp \(host):\(port): socket: \(String(cString: strerror(errno)))")
        }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var receiveBuffer: Int32 = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SourceError(.io, "udp \(host):\(port): bind: \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        socketDescriptor = fd
        boundPort = Int(UInt16(bigEndian: actual.sin_port))
        description = "udp \(host):\(boundPort)"
        self.maximumLineBytes = maximumLineBytes
        self.allowedSenders = allowedSenders
    }

    deinit { close(socketDescriptor) }

    /// Starts the reader thread and returns its batches.
    public func batches() -> LineBatches {
        BackgroundThread.start(name: "udp-source") { [self] in receiveLoop() }
        return LineBatches(channel: channel)
    }

    /// Stops receiving; datagrams already received are delivered.
    public func stop() { channel.stop() }

    private func receiveLoop() {
        var splitter = LineSplitter(maximumLineBytes: maximumLineBytes)
        // One byte more than the limit tells an over-long datagram from one that fits exactly.
        var buffer = [UInt8](repeating: 0, count: 65536)
        var lineNumber = 1
        var batch = LineBatch()
        func flush() {
            batch.firstLineNumber = lineNumber
            lineNumber += batch.lines.count + batch.overlongLines
            channel.deliver(batch)
            batch = LineBatch()
        }
        while !channel.isStopping {
            var descriptor = pollfd(fd: socketDescriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, batch.isEmpty ? 100 : 0)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 {
                flush()
                continue
            }
            var sender = sockaddr_in()
            var senderLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &sender) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(socketDescriptor, bytes.baseAddress, bytes.count, 0, $0, &senderLength)
                    }
                }
            }
            if n >= 0 && !isAllowed(sender) {
                batch.refusedDatagrams += 1
                continue
            }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                flush()
                channel.finish(throwing: SourceError(.io, "\(description): recv: \(String(cString: strerror(errno)))"))
                return
            }
            buffer.withUnsafeBytes { splitter.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n]), into: &batch) }
            splitter.finish(into: &batch)
            if batch.lines.count >= 256 { flush() }
        }
        // Drain what the kernel already holds, then stop.
        while true {
            var sender = sockaddr_in()
            var senderLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &sender) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(
                            socketDescriptor, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, &senderLength)
                    }
                }
            }
            guard n >= 0 else { break }
            guard isAllowed(sender) else {
                batch.refusedDatagrams += 1
                continue
            }
            buffer.withUnsafeBytes { splitter.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n]), into: &batch) }
            splitter.finish(into: &batch)
        }
        flush()
        channel.finish()
    }

    private func isAllowed(_ sender: sockaddr_in) -> Bool {
        if allowedSenders.isEmpty { return true }
        let address = UInt32(bigEndian: sender.sin_addr.s_addr)
        return allowedSenders.contains { $0.contains(address) }
    }
}
