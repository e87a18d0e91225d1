#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Reader and writer of the UCR/UEA `.ts` time-series archive format.
///
/// The format is the one sktime, aeon and tslearn read: `#` comments (`%` too, as in the archive's ARFF
/// siblings and aeon's own UnitTest files), a header of `@tag value`
/// lines (`@problemName`, `@timeStamps`, `@missing`, `@univariate`, `@dimensions`,
/// `@equalLength`, `@seriesLength`, `@classLabel true label…`), then `@data` and one series a
/// line: each dimension's values separated by commas, dimensions separated by `:`, the class
/// label last. Tags are case-insensitive; unknown tags are ignored.
///
/// Series become windows `[count, length, dimensions]`. Time-stamped series (`@timeStamps true`),
/// regression targets (`@targetLabel true`) and unlabeled archives are rejected, as are missing
/// values (`?`, NaN): Tandem does not impute. Series of unequal length are an error unless an
/// explicit ``LengthPolicy`` brings them to one length.
public enum TSArchive {
    /// How series of different lengths are brought to one window length.
    public enum LengthPolicy: Sendable, Equatable, Hashable {
        /// Every series, in every dimension, must have the same length; otherwise reading fails.
        case requireEqual
        /// Shorter series are padded at the end, by repeating their last value, to this length.
        /// Repeating the last value rather than zero avoids inventing a step in signals whose
        /// level is far from zero. A longer series is an error.
        case padTo(Int)
        /// Like `padTo`, to the length of the longest series.
        case padToLongest
        /// Every series is linearly interpolated to this length, first and last values kept.
        case resample(to: Int)
    }

    /// Reads the archive at `url`.
    ///
    /// - Parameters:
    ///   - url: The `.ts` file.
    ///   - lengthPolicy: How to treat series of unequal length; by default they are an error.
    /// - Returns: The series as windows, labeled by the `@classLabel` list in its order.
    /// - Throws: ``DataError`` with the file, the line and the reason.
    public static func read(contentsOf url: URL, lengthPolicy: LengthPolicy = .requireEqual) throws -> LabeledWindows {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw DataError(.unreadable, "cannot read: \(describe(error))", file: url.path)
        }
        return try parse(bytes: [UInt8](data), fileName: url.path, lengthPolicy: lengthPolicy)
    }

    /// Parses archive text already in memory; `fileName` is used in messages.
    ///
    /// See ``read(contentsOf:lengthPolicy:)``.
    public static func parse(_ text: String, fileName: String, lengthPolicy: LengthPolicy = .requireEqual) throws
        -> LabeledWindows
    {
        try parse(bytes: Array(text.utf8), fileName: fileName, lengthPolicy: lengthPolicy)
    }

    /// Parses the archive from its bytes; lines end in LF or CRLF.
    package static func parse(bytes text: [UInt8], fileName: String, lengthPolicy: LengthPolicy) throws
        -> LabeledWindows
    {
        var parser = Parser(fileName: fileName)
        var bytes = text
        bytes.append(0)  // strtod needs a terminator it cannot run past
        let lastLine = try bytes.withUnsafeBufferPointer { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            var lineStart = 0
            var lineNumber = 0
            while lineStart < text.count {
                lineNumber += 1
                var lineEnd = lineStart
                while lineEnd < text.count && base[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                try parser.consume(base, ASCIINumber.trimmed(base, lineStart..<lineEnd), number: lineNumber)
                lineStart = lineEnd + 1
            }
            return lineNumber
        }
        return try parser.finish(lengthPolicy: lengthPolicy, lastLine: lastLine)
    }

    /// Writes `windows` as an equal-length `.ts` archive at `url`, replacing any file there.
    ///
    /// - Parameters:
    ///   - windows: The series; each window's channels become the dimensions.
    ///   - url: Where to write.
    ///   - problemName: The `@problemName`; no whitespace.
    /// - Throws: ``DataError`` if a class or problem name cannot be written (empty, whitespace,
    ///   `:` or `,`), a value is not finite, or the file cannot be written.
    public static func write(_ windows: LabeledWindows, to url: URL, problemName: String) throws {
        let text = try text(of: windows, problemName: problemName)
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw DataError(.unreadable, "cannot write: \(describe(error))", file: url.path)
        }
    }

    /// The archive text ``write(_:to:problemName:)`` writes.
    public static func text(of windows: LabeledWindows, problemName: String) throws -> String {
        func writable(_ name: String) -> Bool {
            !name.isEmpty && !name.contains(where: { $0.isWhitespace || $0 == ":" || $0 == "," || $0 == "#" })
        }
        guard writable(problemName) else {
            throw DataError(.invalidArgument, "problem name '\(problemName)' is empty or holds whitespace, ':' or ','")
        }
        for name in windows.classNames where !writable(name) {
            throw DataError(.invalidArgument, "class name '\(name)' is empty or holds whitespace, ':' or ','")
        }
        guard windows.windows.scalars.allSatisfy(\.isFinite) else {
            throw DataError(.missingValue, "windows hold NaN or infinite values")
        }
        let (count, length, channels) = (windows.count, windows.length, windows.channels)
        var out = """
            # Multichannel windows written by Tandem.
            @problemName \(problemName)
            @timeStamps false
            @missing false
            @univariate \(channels == 1)

            """
        if channels != 1 { out += "@dimensions \(channels)\n" }
        out += "@equalLength true\n@seriesLength \(length)\n"
        out += "@classLabel true \(windows.classNames.joined(separator: " "))\n@data\n"
        out.reserveCapacity(out.utf8.count + windows.windows.count * 12)
        windows.windows.scalars.withUnsafeBufferPointer { x in
            for i in 0..<count {
                for c in 0..<channels {
                    for t in 0..<length {
                        out += x[(i * length + t) * channels + c].description
                        out += t == length - 1 ? ":" : ","
                    }
                }
                out += windows.classNames[windows.labels[i]]
                out += "\n"
            }
        }
        return out
    }

    /// One series: its values live in the parser's flat `values`, dimension after dimension.
    private struct Series {
        var start: Int
        var lengths: [Int]
        var label: Int
        var line: Int
    }

    private struct Parser {
        let fileName: String
        var inData = false
        var univariate: Bool?
        var dimensions: Int?
        var equalLength: Bool?
        var seriesLength: Int?
        var classLabels: [String]?
        var labelIndex: [String: Int] = [:]
        var series: [Series] = []
        var values: [Float] = []

        init(fileName: String) { self.fileName = fileName }

        func error(_ code: DataError.Code, _ message: String, line: Int) -> DataError {
            DataError(code, message, file: fileName, line: line)
        }

        mutating func consume(_ base: UnsafePointer<UInt8>, _ line: Range<Int>, number: Int) throws {
            if line.isEmpty || base[line.lowerBound] == UInt8(ascii: "#") || base[line.lowerBound] == UInt8(ascii: "%")
            {
                return
            }
            if base[line.lowerBound] == UInt8(ascii: "@") {
                try tag(ASCIINumber.string(base, line), number: number)
            } else if !inData {
                throw error(.dataBeforeHeader, "data line before @data", line: number)
            } else {
                try dataLine(base, line, number: number)
            }
        }

        private mutating func tag(_ line: String, number: Int) throws {
            let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
            let name = words[0].lowercased()
            let values = Array(words.dropFirst())
            if inData {
                throw error(.malformedLine, "header tag \(words[0]) after @data", line: number)
            }
            func flag() throws -> Bool {
                switch values.first?.lowercased() {
                case "true": return true
                case "false": return false
                default: throw error(.malformedHeader, "\(words[0]) needs true or false", line: number)
                }
            }
            func count() throws -> Int {
                guard values.count == 1, let n = Int(values[0]), n > 0 else {
                    throw error(.malformedHeader, "\(words[0]) needs one positive integer", line: number)
                }
                return n
            }
            switch name {
            case "@timestamps":
                if try flag() {
                    throw error(
                        .unsupported,
                        "time-stamped series (@timeStamps true) are not supported; write equally spaced values",
                        line: number)
                }
            case "@missing":
                _ = try flag()  // missing values are rejected where they occur, whatever this says
            case "@univariate":
                univariate = try flag()
            case "@dimension", "@dimensions":
                dimensions = try count()
            case "@equallength":
                equalLength = try flag()
            case "@serieslength":
                seriesLength = try count()
            case "@targetlabel":
                if try flag() {
                    throw error(.unsupported, "regression archives (@targetLabel true) are not supported", line: number)
                }
            case "@classlabel":
                // A second list would leave labels indexed by the first (the index keeps every name it saw).
                guard classLabels == nil else {
                    throw error(.malformedHeader, "@classLabel appears twice", line: number)
                }
                guard try flag() else {
                    throw error(.unlabeled, "the archive has no class labels (@classLabel false)", line: number)
                }
                let labels = Array(values.dropFirst())
                guard !labels.isEmpty else {
                    throw error(.malformedHeader, "@classLabel true lists no labels", line: number)
                }
                guard Set(labels).count == labels.count else {
                    throw error(.malformedHeader, "@classLabel lists a label twice", line: number)
                }
                classLabels = labels
                for (i, label) in labels.enumerated() { labelIndex[label] = i }
            case "@data":
                guard classLabels != nil else {
                    throw error(.malformedHeader, "@data before @classLabel true <labels…>", line: number)
                }
                if univariate == true, let d = dimensions, d != 1 {
                    throw error(.malformedHeader, "@univariate true but @dimensions \(d)", line: number)
                }
                if univariate == true { dimensions = 1 }
                inData = true
            default:
                break  // @problemName and tags of newer format versions carry nothing Tandem needs
            }
        }

        /// Parses one series straight from the bytes: archives run to hundreds of megabytes, and
        /// Character-level String splitting would cost a minute where this takes a second.
        private mutating func dataLine(_ base: UnsafePointer<UInt8>, _ line: Range<Int>, number: Int) throws {
            var colons = 0
            var lastColon = line.lowerBound
            for i in line {
                switch base[i] {
                case UInt8(ascii: ":"):
                    colons += 1
                    lastColon = i
                case UInt8(ascii: "("):
                    throw error(.unsupported, "time-stamped values '(…)' are not supported", line: number)
                default:
                    break
                }
            }
            guard colons > 0 else {
                throw error(.malformedLine, "no ':' before a class label", line: number)
            }
            if let expected = dimensions, colons != expected {
                throw error(.malformedLine, "\(colons) dimensions, expected \(expected)", line: number)
            }
            dimensions = colons
            let labelText = ASCIINumber.string(base, ASCIINumber.trimmed(base, (lastColon + 1)..<line.upperBound))
            guard let label = labelIndex[labelText] else {
                throw error(
                    .unknownLabel, "class label '\(labelText)' is not in @classLabel \(classLabels ?? [])", line: number
                )
            }
            let start = values.count
            var lengths = [Int]()
            lengths.reserveCapacity(colons)
            var fieldStart = line.lowerBound
            for d in 0..<colons {
                var position = 0
                var itemStart = fieldStart
                while true {
                    var itemEnd = itemStart
                    while base[itemEnd] != UInt8(ascii: ",") && base[itemEnd] != UInt8(ascii: ":") { itemEnd += 1 }
                    position += 1
                    try appendValue(
                        base, ASCIINumber.trimmed(base, itemStart..<itemEnd), dimension: d + 1, position: position,
                        line: number)
                    itemStart = itemEnd + 1
                    if base[itemEnd] == UInt8(ascii: ":") { break }
                }
                lengths.append(position)
                fieldStart = itemStart
            }
            series.append(Series(start: start, lengths: lengths, label: label, line: number))
        }

        private mutating func appendValue(
            _ base: UnsafePointer<UInt8>, _ item: Range<Int>, dimension: Int, position: Int, line: Int
        ) throws {
            if let value = ASCIINumber.parse(base, item) {
                let single = Float(value)
                guard value.isFinite, single.isFinite else {
                    let place = "in dimension \(dimension) at position \(position)"
                    let text = ASCIINumber.string(base, item)
                    if value.isNaN {
                        throw error(
                            .missingValue, "missing value '\(text)' \(place); Tandem does not impute missing values",
                            line: line)
                    }
                    throw error(.missingValue, "value '\(text)' \(place) is not finite", line: line)
                }
                values.append(single)
                return
            }
            let text = ASCIINumber.string(base, item)
            let place = "in dimension \(dimension) at position \(position)"
            if text == "?" {
                throw error(
                    .missingValue, "missing value '?' \(place); Tandem does not impute missing values", line: line)
            }
            throw error(.malformedLine, "'\(text)' \(place) is not a number", line: line)
        }

        func finish(lengthPolicy: LengthPolicy, lastLine: Int) throws -> LabeledWindows {
            guard inData else {
                throw error(.malformedHeader, "no @data line", line: lastLine)
            }
            guard let first = series.first, let classLabels, let channels = dimensions else {
                throw error(.empty, "no series after @data", line: lastLine)
            }
            let target: Int
            switch lengthPolicy {
            case .requireEqual:
                let expected = seriesLength ?? first.lengths[0]
                for s in series {
                    for (d, count) in s.lengths.enumerated() where count != expected {
                        let why =
                            equalLength == false
                            ? "the archive declares @equalLength false; read it with a length policy (pad or resample)"
                            : "series must all have one length, or be read with a length policy (pad or resample)"
                        throw error(
                            .unequalLength,
                            "dimension \(d + 1) has \(values.count) values, expected \(expected): \(why)",
                            line: s.line)
                    }
                }
                target = expected
            case .padToLongest:
                target = series.map { $0.lengths.max() ?? 0 }.max() ?? 0
            case .padTo(let length):
                guard length > 0 else {
                    throw DataError(.invalidArgument, "padTo length must be positive", file: fileName)
                }
                for s in series where s.lengths.contains(where: { $0 > length }) {
                    throw error(
                        .unequalLength,
                        "series longer than padTo(\(length)); use padToLongest or resample to shorten", line: s.line)
                }
                target = length
            case .resample(let length):
                guard length > 0 else {
                    throw DataError(.invalidArgument, "resample length must be positive", file: fileName)
                }
                target = length
            }
            var scalars = [Float](repeating: 0, count: series.count * target * channels)
            scalars.withUnsafeMutableBufferPointer { out in
                values.withUnsafeBufferPointer { all in
                    for (i, s) in series.enumerated() {
                        var offset = s.start
                        for (d, count) in s.lengths.enumerated() {
                            let source = UnsafeBufferPointer(rebasing: all[offset..<(offset + count)])
                            offset += count
                            let base = i * target * channels + d
                            if case .resample = lengthPolicy, count != target {
                                for t in 0..<target {
                                    out[base + t * channels] = Self.interpolate(source, at: t, of: target)
                                }
                            } else {
                                // Equal length copies; a shorter series repeats its last value.
                                for t in 0..<target { out[base + t * channels] = source[min(t, count - 1)] }
                            }
                        }
                    }
                }
            }
            return LabeledWindows(
                windows: Tensor(shape: [series.count, target, channels], scalars: scalars),
                labels: series.map(\.label),
                classNames: classLabels)
        }

        /// The value at output sample `t` of `count`, linearly interpolated so that the first
        /// and last samples map onto the series' first and last values.
        static func interpolate(_ values: UnsafeBufferPointer<Float>, at t: Int, of count: Int) -> Float {
            guard values.count > 1 else { return values[0] }
            guard count > 1 else { return values[0] }
            let position = Double(t) * Double(values.count - 1) / Double(count - 1)
            let lower = min(Int(position), values.count - 2)
            let fraction = Float(position - Double(lower))
            return values[lower] + (values[lower + 1] - values[lower]) * fraction
        }
    }
}
