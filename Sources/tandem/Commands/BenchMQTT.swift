import ArgumentParser
import Foundation
import Synchronization
import TandemMQTT

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem bench mqtt`: TandemMQTT against the stock mosquitto clients through one broker.
struct BenchMQTT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt",
        abstract: "Throughput (QoS 0/1) and latency at a fixed rate: TandemMQTT vs mosquitto_pub/mosquitto_sub."
    )

    @Option(
        help: "Messages per throughput run (below 65,536: mosquitto_pub -l quits early at QoS 1 once packet ids wrap).")
    var messages = 60_000

    @Option(help: "Payload size in bytes.")
    var payloadBytes = 200

    @Option(help: "Publish rate of the latency runs, messages per second.")
    var latencyRate = 1_000

    @Option(help: "Length of each latency run in seconds.")
    var latencySeconds = 5

    @Option(help: "Use a running broker on 127.0.0.1 at this port instead of starting mosquitto.")
    var port: Int?

    @Option(help: "Throughput runs per case; the best is reported.")
    var repeats = 3

    @Option(help: "TandemMQTT publisher: most unacknowledged QoS 1 publishes in the application (0 = no limit).")
    var publishWindow = 0

    @Option(
        help: """
            TandemMQTT clients: MQTT v5 receive maximum (default: the client's default, 65535; the stock clients \
            get the broker's 20).
            """)
    var receiveMaximum: Int?

    @Flag(help: "Disable Nagle's algorithm in every client (stock clients get --nodelay).")
    var tcpNoDelay = false

    @Flag(help: "Skip the latency runs.")
    var skipLatency = false

    mutating func run() async throws {
        BenchChildren.shared.stopOnSignals()
        let broker = try port.map { BenchBroker(existingPort: $0) } ?? BenchBroker.start()
        defer { broker.stop() }
        print("broker: mosquitto on 127.0.0.1:\(broker.port); payload \(payloadBytes) B; \(messages) messages per run")
        print("case                                         msg/s      received")
        for qos in [MQTTQoS.atMostOnce, .atLeastOnce] {
            var stockBest = BenchThroughput(messagesPerSecond: 0, received: 0)
            var oursBest = stockBest
            for _ in 0..<repeats {
                let stock = try stockThroughput(port: broker.port, qos: qos)
                if stock.messagesPerSecond > stockBest.messagesPerSecond { stockBest = stock }
                let ours = try await tandemThroughput(port: broker.port, qos: qos)
                if ours.messagesPerSecond > oursBest.messagesPerSecond { oursBest = ours }
            }
            print(stockBest.line("mosquitto_pub -l → mosquitto_sub, QoS \(qos.rawValue)"))
            print(oursBest.line("TandemMQTT → TandemMQTT, QoS \(qos.rawValue)"))
            print(
                String(
                    format: "  TandemMQTT / stock: %.0f %%",
                    100 * oursBest.messagesPerSecond / stockBest.messagesPerSecond))
        }
        if skipLatency { return }
        print("latency at \(latencyRate) msg/s for \(latencySeconds) s    p50 ms   p99 ms   received")
        for qos in [MQTTQoS.atMostOnce, .atLeastOnce] {
            print(
                try stockLatency(port: broker.port, qos: qos).line(
                    "mosquitto_pub -l → mosquitto_sub, QoS \(qos.rawValue)"))
            print(
                try await tandemLatency(port: broker.port, qos: qos).line(
                    "TandemMQTT → TandemMQTT, QoS \(qos.rawValue)"))
        }
    }

    // MARK: TandemMQTT

    private func tandemThroughput(port: Int, qos: MQTTQoS) async throws -> BenchThroughput {
        let topic = "bench/tandem/throughput/\(UUID().uuidString.prefix(6))"
        let (subscriber, publisher) = try await connectPair(port: port)
        let subscription = try await subscriber.subscribe(
            to: topic, qos: qos, bufferCapacity: messages, whenFull: .dropNewest)
        let count = messages
        let receiver = Task { () -> (Int, UInt64) in
            var received = 0
            var last: UInt64 = 0
            for await _ in subscription {
                received += 1
                if received == count {
                    last = monotonicNanoseconds()
                    break
                }
            }
            return (received, last)
        }
        let message = MQTTMessage(topic: topic, payload: [UInt8](repeating: 0x78, count: payloadBytes), qos: qos)
        let start = monotonicNanoseconds()
        if publishWindow > 0 && qos != .atMostOnce {
            // Flow control as an application (or the outbox) does it: wait for room before publishing more.
            let room = DispatchSemaphore(value: publishWindow)
            for _ in 0..<count {
                room.wait()
                try publisher.publish(message) { _ in room.signal() }
            }
        } else {
            for _ in 0..<count {
                try publisher.publish(message, onComplete: nil)
            }
        }
        let outcome = try await firstOf(seconds: 60) { await receiver.value } ?? (0, 0)
        receiver.cancel()
        await publisher.disconnect()
        await subscriber.disconnect()
        let seconds = Double((outcome.1 > start ? outcome.1 : monotonicNanoseconds()) - start) / 1e9
        return BenchThroughput(messagesPerSecond: Double(outcome.0) / seconds, received: outcome.0)
    }

    private func tandemLatency(port: Int, qos: MQTTQoS) async throws -> BenchLatency {
        let topic = "bench/tandem/latency/\(UUID().uuidString.prefix(6))"
        let (subscriber, publisher) = try await connectPair(port: port)
        let subscription = try await subscriber.subscribe(to: topic, qos: qos, bufferCapacity: 1_000_000)
        let total = latencyRate * latencySeconds
        let receiver = Task { () -> [Double] in
            var samples: [Double] = []
            for await message in subscription {
                let now = monotonicNanoseconds()
                if let sent = BenchPayload.timestamp(in: message.payload) {
                    samples.append(Double(now - sent) / 1e6)
                }
                if samples.count == total { break }
            }
            return samples
        }
        let payloadBytes = payloadBytes
        try pace(rate: latencyRate, count: total) {
            let payload = BenchPayload.make(timestamp: monotonicNanoseconds(), bytes: payloadBytes)
            try publisher.publish(MQTTMessage(topic: topic, payload: payload, qos: qos), onComplete: nil)
        }
        let samples = try await firstOf(seconds: 10) { await receiver.value } ?? []
        receiver.cancel()
        await publisher.disconnect()
        await subscriber.disconnect()
        return BenchLatency(samples: samples)
    }

    private func connectPair(port: Int) async throws -> (MQTTClient, MQTTClient) {
        let id = UUID().uuidString.prefix(6)
        var configuration = try MQTTBrokerConfiguration(url: BenchBroker.url(port: port))
            .clientConfiguration(clientID: "bench-sub-\(id)")
        configuration.tcpNoDelay = tcpNoDelay
        if let receiveMaximum { configuration.receiveMaximum = receiveMaximum }
        let subscriber = try MQTTClient(configuration: configuration)
        configuration.clientID = "bench-pub-\(id)"
        let publisher = try MQTTClient(configuration: configuration)
        try await subscriber.connect()
        try await publisher.connect()
        return (subscriber, publisher)
    }

    // MARK: Stock clients

    private func stockThroughput(port: Int, qos: MQTTQoS) throws -> BenchThroughput {
        let topic = "bench/stock/throughput/\(UUID().uuidString.prefix(6))"
        let line = String(repeating: "x", count: payloadBytes) + "\n"
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-\(UUID().uuidString)")
        try Data(String(repeating: line, count: messages).utf8).write(to: input)
        BenchChildren.shared.removeOnSignal(input)
        defer {
            BenchChildren.shared.forget(input)
            try? FileManager.default.removeItem(at: input)
        }
        let subscriber = try StockClient.subscriber(port: port, topic: topic, qos: qos, noDelay: tcpNoDelay)
        Thread.sleep(forTimeInterval: 0.5)
        let start = monotonicNanoseconds()
        let publisher = Process()
        publisher.executableURL = try benchExecutable("mosquitto_pub")
        publisher.arguments =
            ["-h", "127.0.0.1", "-p", "\(port)", "-t", topic, "-q", "\(qos.rawValue)", "-l"]
            + (tcpNoDelay ? ["--nodelay"] : [])
        publisher.standardInput = try FileHandle(forReadingFrom: input)
        try BenchChildren.shared.start(publisher, deathSignal: true)
        let (received, last) = subscriber.countLines(upTo: messages, idleSeconds: 5)
        publisher.waitUntilExit()
        BenchChildren.shared.stop([publisher])
        subscriber.kill()
        let seconds = Double(last - start) / 1e9
        return BenchThroughput(messagesPerSecond: Double(received) / seconds, received: received)
    }

    private func stockLatency(port: Int, qos: MQTTQoS) throws -> BenchLatency {
        let topic = "bench/stock/latency/\(UUID().uuidString.prefix(6))"
        let subscriber = try StockClient.subscriber(port: port, topic: topic, qos: qos, noDelay: tcpNoDelay)
        Thread.sleep(forTimeInterval: 0.5)
        let publisher = Process()
        publisher.executableURL = try benchExecutable("mosquitto_pub")
        publisher.arguments =
            ["-h", "127.0.0.1", "-p", "\(port)", "-t", topic, "-q", "\(qos.rawValue)", "-l"]
            + (tcpNoDelay ? ["--nodelay"] : [])
        let input = Pipe()
        publisher.standardInput = input
        try BenchChildren.shared.start(publisher, deathSignal: true)
        let total = latencyRate * latencySeconds
        let samples = Mutex<[Double]>([])
        let done = DispatchSemaphore(value: 0)
        BackgroundThread.start(name: "bench-reader") {
            subscriber.forEachLine(upTo: total, idleSeconds: 5) { line in
                let now = monotonicNanoseconds()
                if let sent = UInt64(
                    line.prefix { $0 != 0x20 }.map { Character(UnicodeScalar($0)) }.map(String.init).joined())
                {
                    samples.withLock { $0.append(Double(now - sent) / 1e6) }
                }
            }
            done.signal()
        }
        let writer = input.fileHandleForWriting
        let payloadBytes = payloadBytes
        try pace(rate: latencyRate, count: total) {
            var line = BenchPayload.make(timestamp: monotonicNanoseconds(), bytes: payloadBytes)
            line.append(0x0A)
            try writer.write(contentsOf: line)
        }
        _ = done.wait(timeout: .now() + 15)
        try writer.close()
        publisher.waitUntilExit()
        BenchChildren.shared.stop([publisher])
        subscriber.kill()
        return BenchLatency(samples: samples.withLock { $0 })
    }

    // MARK: Helpers

    /// Calls `body` `count` times at `rate` per second on an absolute schedule (no drift).
    private func pace(rate: Int, count: Int, _ body: () throws -> Void) throws {
        let interval = 1_000_000_000 / UInt64(rate)
        let start = monotonicNanoseconds()
        for index in 0..<count {
            let due = start + UInt64(index) * interval
            let now = monotonicNanoseconds()
            if due > now {
                var pause = timespec(
                    tv_sec: Int((due - now) / 1_000_000_000), tv_nsec: Int((due - now) % 1_000_000_000))
                nanosleep(&pause, nil)
            }
            try body()
        }
    }

    private func firstOf<T: Sendable>(seconds: Int, _ work: @escaping @Sendable () async -> T) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await work() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}

/// The full path of `name`, from `PATH` and the sbin directories where Debian puts `mosquitto`.
func benchExecutable(_ name: String) throws -> URL {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
    for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
        return URL(fileURLWithPath: "\(directory)/\(name)")
    }
    throw ValidationError("\(name) not found in PATH; install the mosquitto and mosquitto-clients packages")
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Payloads that carry their send time as leading decimal digits, padded to size.
enum BenchPayload {
    static func make(timestamp: UInt64, bytes: Int) -> [UInt8] {
        var payload = Array("\(timestamp) ".utf8)
        if payload.count < bytes { payload += [UInt8](repeating: 0x78, count: bytes - payload.count) }
        return payload
    }

    static func timestamp(in payload: [UInt8]) -> UInt64? {
        var value: UInt64 = 0
        for byte in payload {
            guard byte >= 0x30 && byte <= 0x39 else { break }
            value = value * 10 + UInt64(byte - 0x30)
        }
        return value == 0 ? nil : value
    }
}

struct BenchThroughput {
    var messagesPerSecond: Double
    var received: Int

    func line(_ name: String) -> String {
        name.padding(toLength: 42, withPad: " ", startingAt: 0)
            + String(format: " %9.0f  %9d", messagesPerSecond, received)
    }
}

struct BenchLatency {
    var samples: [Double]

    func line(_ name: String) -> String {
        let sorted = samples.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        return name.padding(toLength: 42, withPad: " ", startingAt: 0)
            + String(format: " %8.3f %8.3f  %9d", percentile(0.5), percentile(0.99), sorted.count)
    }
}

/// A `mosquitto_sub` whose standard output the bench reads.
final class StockClient: Sendable {
    let process: Process
    let descriptor: Int32

    private init(process: Process, descriptor: Int32) {
        self.process = process
        self.descriptor = descriptor
    }

    static func subscriber(port: Int, topic: String, qos: MQTTQoS, noDelay: Bool) throws -> StockClient {
        let process = Process()
        process.executableURL = try benchExecutable("mosquitto_sub")
        process.arguments =
            ["-h", "127.0.0.1", "-p", "\(port)", "-t", topic, "-q", "\(qos.rawValue)"] + (noDelay ? ["--nodelay"] : [])
        let output = Pipe()
        process.standardOutput = output
        try BenchChildren.shared.start(process, deathSignal: true)
        return StockClient(process: process, descriptor: output.fileHandleForReading.fileDescriptor)
    }

    /// Counts newline-terminated messages until `limit` or `idleSeconds` without data; returns the count
    /// and the time the last one arrived.
    func countLines(upTo limit: Int, idleSeconds: Int) -> (Int, UInt64) {
        var count = 0
        var last: UInt64 = 0
        forEachChunk(idleSeconds: idleSeconds) { chunk in
            for byte in chunk where byte == 0x0A { count += 1 }
            last = monotonicNanoseconds()
            return count < limit
        }
        return (count, last)
    }

    /// Calls `body` with each line until `limit` lines or `idleSeconds` without data.
    func forEachLine(upTo limit: Int, idleSeconds: Int, _ body: ([UInt8]) -> Void) {
        var pending: [UInt8] = []
        var count = 0
        forEachChunk(idleSeconds: idleSeconds) { chunk in
            for byte in chunk {
                if byte == 0x0A {
                    body(pending)
                    pending.removeAll(keepingCapacity: true)
                    count += 1
                } else {
                    pending.append(byte)
                }
            }
            return count < limit
        }
    }

    private func forEachChunk(idleSeconds: Int, _ body: (UnsafeRawBufferPointer) -> Bool) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while poll(&poller, 1, Int32(idleSeconds * 1000)) > 0 {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            let more = buffer.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            if !more { return }
        }
    }

    func kill() {
        BenchChildren.shared.stop([process], signal: SIGKILL)
    }
}

/// The mosquitto the bench starts (or an existing one).
struct BenchBroker {
    let port: Int
    let process: Process?
    let directory: URL?

    /// The URL of the broker on 127.0.0.1 at `port`.
    static func url(port: Int) -> String { "mqtt://127.0.0.1:\(port)" }

    /// This broker's URL.
    var url: String { Self.url(port: port) }

    init(existingPort: Int) {
        port = existingPort
        process = nil
        directory = nil
    }

    private init(port: Int, process: Process, directory: URL) {
        self.port = port
        self.process = process
        self.directory = directory
    }

    static func start() throws -> BenchBroker {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tandem-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = Int.random(in: 20_000..<60_000)
        let config = """
            listener \(port) 127.0.0.1
            allow_anonymous true
            max_queued_messages 1000000
            \(getuid() == 0 ? "user root" : "")
            """
        let configFile = directory.appendingPathComponent("mosquitto.conf")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        BenchChildren.shared.removeOnSignal(directory)
        let process = Process()
        process.executableURL = try benchExecutable("mosquitto")
        process.arguments = ["-c", configFile.path]
        process.standardError = FileHandle.nullDevice
        try BenchChildren.shared.start(process, deathSignal: true)
        Thread.sleep(forTimeInterval: 0.5)
        return BenchBroker(port: port, process: process, directory: directory)
    }

    func stop() {
        if let process { BenchChildren.shared.stop([process], signal: SIGKILL) }
        if let directory {
            BenchChildren.shared.forget(directory)
            try? FileManager.default.removeItem(at: directory)
        }
    }
}
