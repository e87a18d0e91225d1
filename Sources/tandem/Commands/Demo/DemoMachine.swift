import Foundation
import TandemCore

#if canImport(Glibc)
    import Glibc
#endif

/// One simulated machine feeding one running `tandem-edge`: its samples go down the agent's standard input (a
/// named pipe), the agent's records come back through a file, and the machine remembers the true condition of
/// every sample so each record can be scored.
final class DemoMachine {
    /// The device id (the agent's directory name).
    let device: String
    private var generator: SensorSimulator.Generator
    /// The condition of every sample produced so far (index into `SensorSimulator.classNames`).
    private var truth: [UInt8] = []
    private var pipe: Int32
    private var unwritten: [UInt8] = []
    private var rows: [UInt8] = []
    private let records: Int32
    private var partialLine: [UInt8] = []
    private var readBuffer = [UInt8](repeating: 0, count: 1 << 16)
    /// Samples thrown away because the agent stopped reading (more than `maxUnwrittenBytes` waited).
    private(set) var droppedSamples = 0
    /// Bytes that may wait for a slow agent before samples are dropped.
    static let maxUnwrittenBytes = 4 << 20

    /// Where in the machine's recording this device's stream starts, in seconds.
    let startSeconds: Double

    /// Opens the agent's pipe (waiting up to `waitSeconds` for the agent to open its end) and its records file.
    ///
    /// The device's stream is the machine's recording from `startSeconds` on, with timestamps counted from
    /// there (so every device's stream starts at 0); drift in `simulation` is in recording time.
    init(
        device: String, directory: URL, simulation: SensorSimulator.Configuration, startSeconds: Double,
        waitSeconds: Double
    ) throws {
        self.device = device
        self.startSeconds = startSeconds
        generator = SensorSimulator.Generator(simulation)
        var skip = Int((startSeconds * simulation.sampleRateHz).rounded())
        while skip > 0 {
            let n = min(skip, 1 << 16)
            _ = generator.next(n)
            skip -= n
        }
        let pipePath = directory.appendingPathComponent("samples.fifo").path
        let deadline = Date().addingTimeInterval(waitSeconds)
        var fd: Int32 = -1
        while true {
            fd = open(pipePath, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if fd >= 0 { break }
            let error = errno
            guard error == ENXIO, Date() < deadline else {
                throw DemoError(
                    error == ENXIO
                        ? "\(pipePath): no agent reads this pipe after \(Int(waitSeconds)) s (did tandem-edge start? see its log)"
                        : "\(pipePath): \(String(cString: strerror(error)))")
            }
            usleep(100_000)
        }
        pipe = fd
        let recordsPath = directory.appendingPathComponent("records.jsonl").path
        records = open(recordsPath, O_RDONLY | O_CLOEXEC)
        guard records >= 0 else {
            close(pipe)
            throw DemoError("\(recordsPath): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        finish()
        close(records)
    }

    /// Ends the stream: closes the pipe, so the agent reads to its end, classifies what is left and exits.
    func finish() {
        guard pipe >= 0 else { return }
        close(pipe)
        pipe = -1
    }

    /// The true class name at stream time `seconds`, if that sample was produced.
    func truth(at seconds: Double) -> String? {
        let index = Int((seconds * generator.configuration.sampleRateHz).rounded())
        guard index >= 0 && index < truth.count else { return nil }
        return SensorSimulator.classNames[Int(truth[index])]
    }

    /// Produces the samples due by `seconds` of stream time and writes as much as the pipe takes now.
    func feed(until seconds: Double) {
        guard pipe >= 0 else { return }
        let due = Int(seconds * generator.configuration.sampleRateHz) - truth.count
        if due > 0 {
            var chunk = generator.next(due)
            chunk.startSeconds -= startSeconds
            truth.append(contentsOf: chunk.labels.lazy.map { UInt8(truncatingIfNeeded: $0) })
            rows.removeAll(keepingCapacity: true)
            chunk.appendCSVRows(to: &rows, labels: false)
            if unwritten.count + rows.count > Self.maxUnwrittenBytes {
                droppedSamples += chunk.count
            } else {
                unwritten.append(contentsOf: rows)
            }
        }
        flush()
    }

    private func flush() {
        var offset = 0
        unwritten.withUnsafeBytes { bytes in
            while offset < bytes.count {
                let n = write(pipe, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { break }  // EAGAIN: the pipe is full; EPIPE: the agent is gone. Either way, later.
                offset += n
            }
        }
        unwritten.removeFirst(offset)
    }

    /// The complete record lines the agent has written since the last call.
    func newRecords() -> [DemoRecord] {
        var lines: [DemoRecord] = []
        while true {
            let n = read(records, &readBuffer, readBuffer.count)
            guard n > 0 else { break }
            partialLine.append(contentsOf: readBuffer[0..<n])
        }
        guard let lastNewline = partialLine.lastIndex(of: UInt8(ascii: "\n")) else { return lines }
        for line in partialLine[..<lastNewline].split(separator: UInt8(ascii: "\n")) {
            if let record = DemoRecord(line: Substring(decoding: line, as: UTF8.self)) { lines.append(record) }
        }
        partialLine.removeFirst(lastNewline + 1)
        return lines
    }
}

/// A demo that cannot go on, with what to do about it.
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
