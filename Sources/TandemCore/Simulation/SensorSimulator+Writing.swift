#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

extension SensorSimulator {
    /// The file format ``write(to:format:durationSeconds:trainFraction:window:hop:problemName:)`` writes.
    public enum OutputFormat: String, Sendable, Codable, CaseIterable {
        /// `train.csv` and `test.csv`: long-format streams, `timestamp,vib_x,vib_y,vib_z,current,label`.
        case csv
        /// `NAME_TRAIN.ts` and `NAME_TEST.ts`: windows in the UCR/UEA archive format.
        case ts
    }

    /// One file the simulator wrote.
    public struct WrittenFile: Sendable, Codable, Equatable {
        /// The file's path.
        public var path: String
        /// Rows written: samples for CSV, windows for `.ts`.
        public var rows: Int
        /// Time span the file covers, in seconds of the simulated timeline.
        public var startSeconds: Double
        /// End of the time span (exclusive), in seconds.
        public var endSeconds: Double
        /// Rows per class name.
        public var classCounts: [String: Int]
    }

    /// What ``write(to:format:durationSeconds:trainFraction:window:hop:problemName:)`` wrote.
    public struct WriteReport: Sendable, Codable, Equatable {
        /// The configuration simulated.
        public var configuration: Configuration
        /// The format written.
        public var format: OutputFormat
        /// The data files, train first, then test.
        public var files: [WrittenFile]
        /// Where the configuration and this report were saved (`simulation.json`).
        public var metadataPath: String
        /// Channel names, in column order.
        public var channelNames: [String]
        /// Class names, in label order.
        public var classNames: [String]
    }

    /// Simulates `durationSeconds` of one machine and writes a train and a test split.
    ///
    /// Both splits come from one continuous recording: the first `trainFraction` of the timeline
    /// is the training split, the rest, later in time, the test split, as when a model trained
    /// on past data meets the future. With ``Configuration/driftAtSeconds`` inside the test part,
    /// the test split holds the drifted regime. Values are rounded to 4 decimals (0.1 mg,
    /// 0.1 mA), about the resolution of a 16-bit converter; timestamps to 1 µs.
    /// `simulation.json` records the configuration.
    ///
    /// - Parameters:
    ///   - directory: Created if missing; existing files of the same names are replaced.
    ///   - format: CSV streams or `.ts` windows.
    ///   - durationSeconds: Length of the whole timeline.
    ///   - trainFraction: Share of the timeline used for training, in `(0, 1)`.
    ///   - window: Samples per window (`.ts` only).
    ///   - hop: Samples between window starts (`.ts` only).
    ///   - problemName: Name of the `.ts` problem and file prefix.
    /// - Throws: ``DataError`` when the directory or a file cannot be written or the arguments are invalid.
    @discardableResult
    public func write(
        to directory: URL,
        format: OutputFormat = .csv,
        durationSeconds: Double = 600,
        trainFraction: Double = 0.75,
        window: Int = 128,
        hop: Int = 64,
        problemName: String = "TandemMachine"
    ) throws -> WriteReport {
        guard durationSeconds > 0, trainFraction > 0, trainFraction < 1 else {
            throw DataError(.invalidArgument, "duration must be positive and the train fraction inside (0, 1)")
        }
        guard window > 0, hop > 0 else {
            throw DataError(.invalidArgument, "window and hop must be positive")
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw DataError(.unreadable, "cannot create directory: \(describe(error))", file: directory.path)
        }
        var whole = stream(durationSeconds: durationSeconds)
        whole.samples.scalars.withUnsafeMutableBufferPointer { x in
            for i in x.indices { x[i] = (x[i] * 10_000).rounded() / 10_000 }
        }
        let split = Int((Double(whole.count) * trainFraction).rounded())
        let parts = [("train", whole.slice(0..<split)), ("test", whole.slice(split..<whole.count))]
        var files: [WrittenFile] = []
        for (name, part) in parts {
            let end = part.timestamp(at: part.count)
            switch format {
            case .csv:
                let url = directory.appendingPathComponent("\(name).csv")
                try Self.writeCSV(part, to: url)
                files.append(
                    WrittenFile(
                        path: url.path, rows: part.count, startSeconds: part.startSeconds, endSeconds: end,
                        classCounts: Self.counts(part.labels, names: part.classNames)))
            case .ts:
                let url = directory.appendingPathComponent("\(problemName)_\(name.uppercased()).ts")
                let windows = part.windows(window: window, hop: hop)
                guard windows.count > 0 else {
                    throw DataError(
                        .empty, "the \(name) split (\(part.count) samples) is shorter than one window of \(window)")
                }
                try TSArchive.write(windows, to: url, problemName: problemName)
                files.append(
                    WrittenFile(
                        path: url.path, rows: windows.count, startSeconds: part.startSeconds, endSeconds: end,
                        classCounts: Self.counts(windows.labels, names: windows.classNames)))
            }
        }
        let metadataURL = directory.appendingPathComponent("simulation.json")
        let report = WriteReport(
            configuration: configuration, format: format, files: files, metadataPath: metadataURL.path,
            channelNames: Self.channelNames, classNames: Self.classNames)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: metadataURL, options: .atomic)
        } catch {
            throw DataError(.unreadable, "cannot write: \(describe(error))", file: metadataURL.path)
        }
        return report
    }

    private static func counts(_ labels: [Int], names: [String]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for label in labels { counts[names[label], default: 0] += 1 }
        return counts
    }

    /// Writes `stream` as long-format CSV with a header, formatting numbers by hand: building
    /// a String per value would dominate the time for long recordings.
    static func writeCSV(_ stream: SensorStream, to url: URL) throws {
        var out = [UInt8]()
        out.reserveCapacity(stream.count * (stream.channelNames.count * 9 + 24) + 64)
        out.append(contentsOf: Array(("timestamp," + stream.channelNames.joined(separator: ",") + ",label\n").utf8))
        stream.appendCSVRows(to: &out, labels: true)
        do {
            try Data(out).write(to: url, options: .atomic)
        } catch {
            throw DataError(.unreadable, "cannot write: \(describe(error))", file: url.path)
        }
    }

    /// Appends `value` rounded to `decimals` places, without trailing zeros.
    static func appendFixed(_ value: Double, decimals: Int, to out: inout [UInt8]) {
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int64((abs(value) * Double(scale)).rounded())
        if value < 0 && scaled != 0 { out.append(UInt8(ascii: "-")) }
        appendDigits(scaled / scale, minimumCount: 1, to: &out)
        var fraction = scaled % scale
        guard fraction != 0 else { return }
        var places = decimals
        while fraction % 10 == 0 {
            fraction /= 10
            places -= 1
        }
        out.append(UInt8(ascii: "."))
        appendDigits(fraction, minimumCount: places, to: &out)
    }

    private static func appendDigits(_ value: Int64, minimumCount: Int, to out: inout [UInt8]) {
        var width = 1
        var probe = value / 10
        while probe > 0 {
            width += 1
            probe /= 10
        }
        width = max(width, minimumCount)
        // Reserve the digits' places, then fill them from the least significant end: no String.
        let start = out.count
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width))
        var v = value
        var index = start + width - 1
        while v > 0 {
            out[index] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
            index -= 1
        }
    }
}

extension SensorStream {
    /// Appends one CSV row per sample, `timestamp,ch1,…,chN[,label]\n` (timestamps to 1 µs, values to 4
    /// decimals), formatting numbers by hand: the form `tandem simulate` writes and `tandem-edge` reads.
    public func appendCSVRows(to out: inout [UInt8], labels includeLabels: Bool) {
        let channels = channelNames.count
        let labelBytes = classNames.map { Array($0.utf8) }
        samples.scalars.withUnsafeBufferPointer { x in
            for i in 0..<count {
                SensorSimulator.appendFixed(timestamp(at: i), decimals: 6, to: &out)
                for c in 0..<channels {
                    out.append(UInt8(ascii: ","))
                    SensorSimulator.appendFixed(Double(x[i * channels + c]), decimals: 4, to: &out)
                }
                if includeLabels {
                    out.append(UInt8(ascii: ","))
                    out.append(contentsOf: labelBytes[labels[i]])
                }
                out.append(UInt8(ascii: "\n"))
            }
        }
    }
}
