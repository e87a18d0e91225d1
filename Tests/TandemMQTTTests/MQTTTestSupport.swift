import Foundation
import TandemMQTT
import TandemTestSupport

struct TimedOut: Error, CustomStringConvertible {
    let description: String
}

/// A client for `broker` with a unique id, connected; with `log`, its libmosquitto trace goes there.
func connectedClient(
    _ broker: MosquittoBroker, _ name: String, log: PacketLog? = nil,
    configure: (inout MQTTClientConfiguration) -> Void = { _ in }
) async throws -> MQTTClient {
    var configuration = MQTTClientConfiguration(
        host: "127.0.0.1", port: broker.port, clientID: "\(name)-\(UUID().uuidString.prefix(8))",
        reconnect: .init(initialDelayMilliseconds: 20, maximumDelayMilliseconds: 300))
    configuration.libraryLog = log?.recorder(for: name)
    configure(&configuration)
    let client = try MQTTClient(configuration: configuration)
    try await client.connect()
    return client
}

/// The first `count` messages of `subscription`, or a `TimedOut` error after `limit`.
func collect(_ count: Int, from subscription: MQTTSubscription, within limit: Duration = .seconds(10)) async throws
    -> [MQTTMessage]
{
    let received = Shared<[MQTTMessage]>([])
    return try await withThrowingTaskGroup(of: [MQTTMessage].self) { group in
        group.addTask {
            for await message in subscription {
                let total = received.withLock { messages in
                    messages.append(message)
                    return messages.count
                }
                if total == count { break }
            }
            return received.withLock { $0 }
        }
        group.addTask {
            try await Task.sleep(for: limit)
            let got = received.withLock { $0.map(\.payloadString) }
            throw TimedOut(
                description:
                    "\(got.count) of \(count) messages on \(subscription.filter) within \(limit): \(got.suffix(5))")
        }
        let first = try await group.next() ?? []
        group.cancelAll()
        return first
    }
}

/// Polls `condition` every 10 ms until it holds or `limit` passes.
func eventually(within limit: Duration = .seconds(10), _ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(description: "timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// The test publisher executable, built next to the test bundle.
func probeExecutable() throws -> URL {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("tandem-mqtt-probe")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw TimedOut(description: "tandem-mqtt-probe not found; build with `swift build --build-tests`")
}

/// A running probe process whose standard output lines can be awaited.
final class ProbeProcess: @unchecked Sendable {
    // `process` is set once in init; `output` is guarded by `lock`.
    let process = Process()
    private let lock = NSLock()
    private var output = ""

    init(_ arguments: [String]) throws {
        process.executableURL = try probeExecutable()
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.output += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var text: String { lock.withLock { output } }

    func waitForLine(containing needle: String, within limit: Duration = .seconds(10)) async throws {
        try await eventually(within: limit, "probe output \"\(needle)\" (has: \(text))") { text.contains(needle) }
    }

    func killHard() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { killHard() }
    }
}

/// A value shared between test tasks, behind a lock.
///
/// An `NSLock` rather than `Mutex`, so ThreadSanitizer sees the synchronization.
final class Shared<Value: Sendable>: @unchecked Sendable {
    // `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result {
        lock.withLock { body(&value) }
    }
}

/// The libmosquitto packet trace of a test's clients, kept to explain a failure.
final class PacketLog: Sendable {
    private let lines = Shared<[String]>([])
    private let start = ContinuousClock.now
    private let capacity: Int

    init(capacity: Int = 20_000) {
        self.capacity = capacity
    }

    /// A `libraryLog` handler that records lines under `name` with the milliseconds since the log began.
    func recorder(for name: String) -> @Sendable (MQTTLogLevel, String) -> Void {
        { [self] _, text in
            let elapsed = ContinuousClock.now - start
            let milliseconds = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3
            let line = String(format: "%9.1f ms  ", milliseconds) + "\(name): \(text)"
            lines.withLock { lines in
                if lines.count == capacity { lines.removeFirst(capacity / 2) }
                lines.append(line)
            }
        }
    }

    /// The recorded lines, oldest first.
    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}
