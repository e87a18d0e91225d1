import Foundation
import Synchronization
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemEdge

#if canImport(Glibc)
    import Glibc
#endif

/// Collects every line a source delivers, on a task of its own.
final class LineCollector: Sendable {
    final class Store: Sendable {
        let lines = Mutex<[String]>([])
        let overlong = Mutex(0)
        let refused = Mutex(0)
    }

    let store = Store()
    let task: Task<Void, any Error>

    init(_ source: some LineSource) {
        let batches = source.batches()
        let store = self.store
        task = Task {
            for try await batch in batches {
                store.overlong.withLock { $0 += batch.overlongLines }
                store.refused.withLock { $0 += batch.refusedDatagrams }
                batch.forEachLine { _, bytes in
                    store.lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
                }
            }
        }
    }

    var snapshot: [String] { store.lines.withLock { $0 } }
    var overlongCount: Int { store.overlong.withLock { $0 } }
    var refusedCount: Int { store.refused.withLock { $0 } }

    /// Waits up to `seconds` for at least `count` lines.
    func wait(for count: Int, seconds: Double = 5) async throws -> [String] {
        let deadline = Date().addingTimeInterval(seconds)
        while snapshot.count < count && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return snapshot
    }
}

@Suite(.serialized, .timeLimit(.minutes(1)))
struct SourceTests {
    func append(_ text: String, to url: URL) throws {
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    @Test("the splitter keeps partial lines across chunks and counts over-long lines without keeping them")
    func splitter() {
        var splitter = LineSplitter(maximumLineBytes: 8)
        var batch = LineBatch()
        for chunk in ["ab", "c\nde", "f\n", String(repeating: "x", count: 20), "yy\nok\n", "tail"] {
            let bytes = Array(chunk.utf8)
            bytes.withUnsafeBytes { splitter.feed($0, into: &batch) }
        }
        splitter.finish(into: &batch)
        var lines = [String]()
        batch.forEachLine { _, b in lines.append(String(decoding: b, as: UTF8.self)) }
        #expect(lines == ["abc", "def", "ok", "tail"])
        #expect(batch.overlongLines == 1)
    }

    @Test("random lines cut into random chunks come out whole, in order, over-long ones counted")
    func splitterAgainstReference() {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<200 {
            let limit = Int.random(in: 1...12, using: &generator)
            let lines = (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                String(
                    (0..<Int.random(in: 0...(2 * limit), using: &generator)).map { _ in
                        "abc,1.5".randomElement(using: &generator)!
                    })
            }
            let text = Array(lines.joined(separator: "\n").utf8)
            var splitter = LineSplitter(maximumLineBytes: limit)
            var batches = [LineBatch]()
            var offset = 0
            while offset < text.count {
                // Several chunks per batch, several batches, as a reader that hands batches over does.
                var batch = LineBatch()
                for _ in 0..<Int.random(in: 1...3, using: &generator) where offset < text.count {
                    let size = min(Int.random(in: 1...(3 * limit + 2), using: &generator), text.count - offset)
                    text[offset..<(offset + size)].withUnsafeBytes { splitter.feed($0, into: &batch) }
                    offset += size
                }
                batches.append(batch)
            }
            var last = LineBatch()
            splitter.finish(into: &last)
            batches.append(last)
            var seen = [String]()
            for batch in batches { batch.forEachLine { _, b in seen.append(String(decoding: b, as: UTF8.self)) } }
            // The text's last line has no newline: finish delivers it (unless empty, which is no line at all).
            let kept = lines.enumerated().filter { $0.element.utf8.count <= limit }
                .filter { !($0.offset == lines.count - 1 && $0.element.isEmpty) }.map(\.element)
            let overlong = lines.filter { $0.utf8.count > limit }.count
            #expect(seen == kept, "limit \(limit): \(lines)")
            #expect(batches.map(\.overlongLines).reduce(0, +) == overlong, "limit \(limit): \(lines)")
        }
    }

    @Test("a followed file survives rotation by rename and truncation")
    func followedFile() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("samples.csv")
        try "1\n2\n".write(to: url, atomically: false, encoding: .utf8)
        let source = FollowedFileSource(path: url.path, pollIntervalSeconds: 0.02)
        let collector = LineCollector(source)
        #expect(try await collector.wait(for: 2) == ["1", "2"])
        try append("3\n4", to: url)  // "4" has no newline yet: a writer mid-line
        #expect(try await collector.wait(for: 3) == ["1", "2", "3"])
        // Rotate: rename away, then a new file at the path. The old file's unfinished line still counts.
        try FileManager.default.moveItem(at: url, to: scratch.url.appendingPathComponent("samples.csv.1"))
        try "5\n6\n".write(to: url, atomically: false, encoding: .utf8)
        #expect(try await collector.wait(for: 6) == ["1", "2", "3", "4", "5", "6"])
        // Truncate in place (copytruncate-style), then write again.
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 0)
        try handle.close()
        try await Task.sleep(for: .milliseconds(100))
        try append("7\n", to: url)
        #expect(try await collector.wait(for: 7) == ["1", "2", "3", "4", "5", "6", "7"])
        // A file that appears after the source started is picked up too: delete and re-create.
        try FileManager.default.removeItem(at: url)
        try await Task.sleep(for: .milliseconds(100))
        try "8\n".write(to: url, atomically: false, encoding: .utf8)
        #expect(try await collector.wait(for: 8).last == "8")
        source.stop()
        try await collector.task.value
    }

    @Test("stop reads the file to its end once more, then finishes")
    func followedFileDrainsOnStop() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("s.csv")
        try "a\nb\n".write(to: url, atomically: false, encoding: .utf8)
        let source = FollowedFileSource(path: url.path, pollIntervalSeconds: 10)
        let collector = LineCollector(source)
        _ = try await collector.wait(for: 2)
        try append("c\nd", to: url)
        source.stop()
        try await collector.task.value
        #expect(collector.snapshot == ["a", "b", "c", "d"])
    }

    @Test("UDP datagrams on a loopback port arrive as lines; an over-long one is counted")
    func udp() async throws {
        let source = try UDPSource(host: "127.0.0.1", port: 0, maximumLineBytes: 64)
        #expect(source.boundPort > 0)
        let collector = LineCollector(source)
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(source.boundPort).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        func send(_ text: String) {
            var bytes = Array(text.utf8)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, &bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        for i in 0..<50 { send("\(i),1,2\n") }
        send(String(repeating: "9", count: 100))
        send("last")
        let lines = try await collector.wait(for: 51)
        #expect(lines.count == 51)
        #expect(Set(lines) == Set((0..<50).map { "\($0),1,2" } + ["last"]))
        #expect(collector.overlongCount == 1)
        source.stop()
        try await collector.task.value
        #expect(throws: SourceError.self) { try UDPSource(host: "127.0.0.1", port: 70000) }
    }

    @Test("a UDP source with an allow-list takes datagrams only from the senders it names and counts the others")
    func udpAllowList() async throws {
        let allowed = try #require(IPv4Network("127.0.0.2"))
        let source = try UDPSource(host: "0.0.0.0", port: 0, allowedSenders: [allowed])
        let collector = LineCollector(source)
        /// A socket bound to `from` (every 127/8 address is the loopback interface's).
        func sender(_ from: String) -> Int32 {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(from)
            _ = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            return fd
        }
        let spoofer = sender("127.0.0.1")
        let trusted = sender("127.0.0.2")
        defer {
            close(spoofer)
            close(trusted)
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(source.boundPort).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        func send(_ text: String, from fd: Int32) {
            var bytes = Array(text.utf8)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, &bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        for i in 0..<20 { send("9\(i),6,6", from: spoofer) }
        for i in 0..<10 { send("\(i),1,2", from: trusted) }
        let lines = try await collector.wait(for: 10)
        let deadline = Date().addingTimeInterval(5)
        while collector.refusedCount < 20 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(Set(lines) == Set((0..<10).map { "\($0),1,2" }), "only the trusted sender's lines")
        #expect(collector.refusedCount == 20)
        source.stop()
        try await collector.task.value

        #expect(IPv4Network("192.168.1.0/24")?.contains(0xC0A8_0107) == true)
        #expect(IPv4Network("192.168.1.0/24")?.contains(0xC0A8_0207) == false)
        #expect(IPv4Network("0.0.0.0/0")?.contains(0x0A00_0001) == true)
        for bad in ["192.168.1.1/24", "10.0.0.0/33", "10.0.0/8", "::1", "10.0.0.0/", "host"] {
            #expect(IPv4Network(bad) == nil, "\(bad)")
        }
    }

    @Test("a pipe read as standard input: lines, then end of input finishes the sequence")
    func pipe() async throws {
        var fds: [Int32] = [0, 0]
        #expect(Glibc.pipe(&fds) == 0)
        let source = StandardInputSource(fileDescriptor: fds[0], description: "pipe")
        let collector = LineCollector(source)
        let text = Array("1,2\n3,4\nno newline".utf8)
        _ = text.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
        close(fds[1])
        try await collector.task.value
        close(fds[0])
        #expect(collector.snapshot == ["1,2", "3,4", "no newline"])
    }
}
