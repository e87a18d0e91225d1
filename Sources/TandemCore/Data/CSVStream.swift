#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Reader of long-format CSV sensor streams: `timestamp,ch1,…,chN[,label]`, one sample a line.
///
/// The first line that is neither blank nor a `#` comment is the header. Its first column is
/// the timestamp (seconds, any numeric origin), a column named `label` (any case, any position)
/// holds class names, every other column is a channel. The stream is cut into windows of
/// `window` samples every `hop` samples; a window is never cut across a gap in the timestamps
/// (a step longer than `gapFactor` × the median step), so a gap starts a fresh window.
///
/// Bad lines — a wrong number of fields, a non-numeric value, NaN or infinity, a timestamp that
/// does not increase, an empty or unknown label — are skipped and counted per ``Reason``; the
/// first few are kept as messages with file and line. With `strict` the first one throws instead.
public enum CSVStream {
    /// Why a line was rejected.
    public enum Reason: String, Sendable, Codable, CaseIterable, Comparable {
        /// The line does not have as many fields as the header.
        case wrongFieldCount
        /// A timestamp or channel field is not a number.
        case notANumber
        /// A timestamp or channel value is NaN or infinite (or overflows Float).
        case nonFinite
        /// The timestamp is not later than the previous accepted line's.
        case outOfOrder
        /// The label field is empty.
        case missingLabel
        /// The label is not among the class names the caller gave.
        case unknownLabel

        /// Orders reasons by declaration, for stable reports.
        public static func < (lhs: Reason, rhs: Reason) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }

        var code: DataError.Code {
            switch self {
            case .wrongFieldCount, .notANumber: .malformedLine
            case .nonFinite: .missingValue
            case .outOfOrder: .outOfOrder
            case .missingLabel, .unknownLabel: .unknownLabel
            }
        }
    }

    /// How many rejected lines keep their full message in ``CSVStreamResult/errors``.
    public static let keptErrorMessages = 20

    /// Reads and windows the CSV stream at `url`.
    ///
    /// - Parameters:
    ///   - url: The file to read.
    ///   - window: Samples per window.
    ///   - hop: Samples between the starts of consecutive windows.
    ///   - labelRule: Which label a window gets; the label of its last sample by default.
    ///   - classNames: The class names and their order, if known; a label outside them is rejected.
    ///     Without it, the names found are sorted (numerically when all are integers).
    ///   - gapFactor: A time step longer than this many median steps is a gap.
    ///   - strict: Throw on the first bad line instead of counting it.
    /// - Throws: ``DataError`` when the file cannot be read or has no usable header, or, in
    ///   strict mode, on the first bad line.
    public static func read(
        contentsOf url: URL,
        window: Int,
        hop: Int,
        labelRule: WindowLabelRule = .lastSample,
        classNames: [String]? = nil,
        gapFactor: Double = 1.5,
        strict: Bool = false
    ) throws -> CSVStreamResult {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw DataError(.unreadable, "cannot read: \(describe(error))", file: url.path)
        }
        return try parse(
            [UInt8](data), fileName: url.path, window: window, hop: hop, labelRule: labelRule,
            classNames: classNames, gapFactor: gapFactor, strict: strict)
    }

    /// Parses and windows CSV text already in memory; `fileName` is used in messages.
    ///
    /// See ``read(contentsOf:window:hop:labelRule:classNames:gapFactor:strict:)``.
    public static func parse(
        _ text: [UInt8],
        fileName: String,
        window: Int,
        hop: Int,
        labelRule: WindowLabelRule = .lastSample,
        classNames: [String]? = nil,
        gapFactor: Double = 1.5,
        strict: Bool = false
    ) throws -> CSVStreamResult {
        guard window > 0, hop > 0 else {
            throw DataError(.invalidArgument, "window (\(window)) and hop (\(hop)) must be positive", file: fileName)
        }
        var parser = Parser(fileName: fileName, fixedClassNames: classNames, strict: strict)
        var bytes = text
        bytes.append(0)  // strtod needs a terminator it cannot run past
        try bytes.withUnsafeBufferPointer { try parser.parse($0, length: text.count) }
        return parser.result(window: window, hop: hop, labelRule: labelRule, gapFactor: gapFactor)
    }

    private struct Parser {
        let fileName: String
        let fixedClassNames: [String]?
        let strict: Bool

        var columnNames: [String] = []
        var labelColumn: Int?
        var timestamps: [Double] = []
        var values: [Float] = []
        var labelIDs: [Int] = []
        var foundNames: [String] = []
        var nameIDs: [String: Int] = [:]
        var rejected: [Reason: Int] = [:]
        var errors: [DataError] = []
        var lineCount = 0

        init(fileName: String, fixedClassNames: [String]?, strict: Bool) {
            self.fileName = fileName
            self.fixedClassNames = fixedClassNames
            self.strict = strict
            if let fixedClassNames {
                foundNames = fixedClassNames
                for (i, name) in fixedClassNames.enumerated() { nameIDs[name] = i }
            }
        }

        var channelCount: Int { columnNames.count - 1 - (labelColumn == nil ? 0 : 1) }

        mutating func parse(_ buffer: UnsafeBufferPointer<UInt8>, length: Int) throws {
            guard let base = buffer.baseAddress else { return }
            var lineStart = 0
            var lineNumber = 0
            var lastLabel: (start: Int, count: Int, id: Int)?
            while lineStart < length {
                lineNumber += 1
                var lineEnd = lineStart
                while lineEnd < length && base[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                let next = lineEnd + 1
                var end = lineEnd
                while end > lineStart && isSpace(base[end - 1]) { end -= 1 }
                var start = lineStart
                while start < end && isSpace(base[start]) { start += 1 }
                defer { lineStart = next }
                if start == end || base[start] == UInt8(ascii: "#") { continue }
                if columnNames.isEmpty {
                    try readHeader(base, start..<end, line: lineNumber)
                    continue
                }
                lineCount += 1
                if let reason = readRow(base, start..<end, lastLabel: &lastLabel) {
                    try reject(
                        reason, line: lineNumber,
                        text: String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self))
                }
            }
            if columnNames.isEmpty {
                throw DataError(
                    .malformedHeader, "no header line (expected timestamp,channel…[,label])", file: fileName)
            }
        }

        private func isSpace(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
        }

        private mutating func readHeader(_ base: UnsafePointer<UInt8>, _ range: Range<Int>, line: Int) throws {
            let text = String(
                decoding: UnsafeBufferPointer(start: base + range.lowerBound, count: range.count), as: UTF8.self)
            let names = text.split(separator: ",", omittingEmptySubsequences: false)
                .map { Self.unquoted($0.trimmingWhitespace()) }
            let labels = names.indices.filter { names[$0].lowercased() == "label" }
            guard labels.count <= 1 else {
                throw DataError(
                    .malformedHeader, "more than one label column in header '\(text)'", file: fileName, line: line)
            }
            guard labels.first != 0 else {
                throw DataError(
                    .malformedHeader, "the first column must be the timestamp, not the label", file: fileName,
                    line: line)
            }
            guard names.count - labels.count >= 2, !names.contains(where: \.isEmpty) else {
                throw DataError(
                    .malformedHeader, "header '\(text)' must name a timestamp and at least one channel, none empty",
                    file: fileName, line: line)
            }
            columnNames = names
            labelColumn = labels.first
        }

        /// `name` without one pair of surrounding double quotes, as spreadsheet exports write headers.
        static func unquoted(_ name: String) -> String {
            name.count >= 2 && name.hasPrefix("\"") && name.hasSuffix("\"") ? String(name.dropFirst().dropLast()) : name
        }

        /// Parses one data line into the accepted arrays, or returns why it is rejected.
        private mutating func readRow(
            _ base: UnsafePointer<UInt8>, _ range: Range<Int>, lastLabel: inout (start: Int, count: Int, id: Int)?
        ) -> Reason? {
            let columns = columnNames.count
            let channels = channelCount
            // Count fields first: with one too many or too few, every later field is misplaced and
            // its own complaint (not a number, unknown label) would name the wrong problem.
            var commas = 0
            for i in range where base[i] == UInt8(ascii: ",") { commas += 1 }
            if commas + 1 != columns { return .wrongFieldCount }
            let valuesBefore = values.count
            var timestamp = 0.0
            var labelID = 0
            var column = 0
            var fieldStart = range.lowerBound
            var failure: Reason?
            while failure == nil {
                var fieldEnd = fieldStart
                while fieldEnd < range.upperBound && base[fieldEnd] != UInt8(ascii: ",") { fieldEnd += 1 }
                var trimmedStart = fieldStart, trimmedEnd = fieldEnd
                while trimmedStart < trimmedEnd && isSpace(base[trimmedStart]) { trimmedStart += 1 }
                while trimmedEnd > trimmedStart && isSpace(base[trimmedEnd - 1]) { trimmedEnd -= 1 }
                if column == labelColumn {
                    if trimmedEnd - trimmedStart >= 2 && base[trimmedStart] == UInt8(ascii: "\"")
                        && base[trimmedEnd - 1] == UInt8(ascii: "\"")
                    {
                        trimmedStart += 1
                        trimmedEnd -= 1
                    }
                    if trimmedStart == trimmedEnd {
                        failure = .missingLabel
                    } else if let id = lookUpLabel(base, trimmedStart..<trimmedEnd, lastLabel: &lastLabel) {
                        labelID = id
                    } else {
                        failure = .unknownLabel
                    }
                } else {
                    switch ASCIINumber.parse(base, trimmedStart..<trimmedEnd) {
                    case .none:
                        failure = .notANumber
                    case let value? where !value.isFinite || (column != 0 && !Float(value).isFinite):
                        failure = .nonFinite
                    case let value?:
                        if column == 0 { timestamp = value } else { values.append(Float(value)) }
                    }
                }
                column += 1
                if fieldEnd >= range.upperBound { break }
                fieldStart = fieldEnd + 1
            }
            if failure == nil, let last = timestamps.last, timestamp <= last { failure = .outOfOrder }
            if let failure {
                values.removeSubrange(valuesBefore...)
                return failure
            }
            assert(values.count == valuesBefore + channels)
            timestamps.append(timestamp)
            if labelColumn != nil { labelIDs.append(labelID) }
            return nil
        }

        private mutating func lookUpLabel(
            _ base: UnsafePointer<UInt8>, _ range: Range<Int>, lastLabel: inout (start: Int, count: Int, id: Int)?
        ) -> Int? {
            // Labels change rarely along a stream: compare with the previous line's bytes before
            // building a String, so the common case allocates nothing.
            if let last = lastLabel, last.count == range.count,
                memcmp(base + last.start, base + range.lowerBound, range.count) == 0
            {
                return last.id
            }
            let name = String(
                decoding: UnsafeBufferPointer(start: base + range.lowerBound, count: range.count), as: UTF8.self)
            let id: Int
            if let known = nameIDs[name] {
                id = known
            } else if fixedClassNames != nil {
                return nil
            } else {
                id = foundNames.count
                foundNames.append(name)
                nameIDs[name] = id
            }
            lastLabel = (range.lowerBound, range.count, id)
            return id
        }

        private mutating func reject(_ reason: Reason, line: Int, text: String) throws {
            let shown = text.count > 80 ? String(text.prefix(77)) + "..." : text
            let explanation: String
            switch reason {
            case .wrongFieldCount:
                explanation = "expected \(columnNames.count) fields (\(columnNames.joined(separator: ",")))"
            case .notANumber: explanation = "a timestamp or channel field is not a number"
            case .nonFinite: explanation = "a value is NaN or infinite"
            case .outOfOrder: explanation = "timestamp not later than the previous line's \(timestamps.last ?? 0)"
            case .missingLabel: explanation = "empty label"
            case .unknownLabel: explanation = "label not among \(fixedClassNames ?? [])"
            }
            let error = DataError(reason.code, "\(explanation): '\(shown)'", file: fileName, line: line)
            if strict { throw error }
            rejected[reason, default: 0] += 1
            if errors.count < CSVStream.keptErrorMessages { errors.append(error) }
        }

        func result(window: Int, hop: Int, labelRule: WindowLabelRule, gapFactor: Double) -> CSVStreamResult {
            let channels = channelCount
            // Median step of the accepted timestamps; a longer step than gapFactor × median is a gap.
            var steps = [Double]()
            steps.reserveCapacity(max(0, timestamps.count - 1))
            for i in timestamps.indices.dropFirst() { steps.append(timestamps[i] - timestamps[i - 1]) }
            steps.sort()
            let median = steps.isEmpty ? 0 : steps[steps.count / 2]
            var runs: [Range<Int>] = []
            var runStart = 0
            for i in timestamps.indices.dropFirst() where timestamps[i] - timestamps[i - 1] > gapFactor * median {
                runs.append(runStart..<i)
                runStart = i
            }
            if !timestamps.isEmpty { runs.append(runStart..<timestamps.count) }

            let names: [String]
            var finalLabels: [Int]
            if labelColumn == nil {
                names = ["unlabeled"]
                finalLabels = [Int](repeating: 0, count: timestamps.count)
            } else if fixedClassNames != nil {
                names = foundNames
                finalLabels = labelIDs
            } else {
                names = Self.sortedNames(foundNames)
                let remap = foundNames.map { names.firstIndex(of: $0)! }
                finalLabels = labelIDs.map { remap[$0] }
            }
            let cut = values.withUnsafeBufferPointer {
                WindowCutter.cut(
                    samples: $0, channels: channels, runs: runs, labels: finalLabels, classCount: names.count,
                    window: window, hop: hop, labelRule: labelRule)
            }
            finalLabels = []
            return CSVStreamResult(
                windows: LabeledWindows(windows: cut.windows, labels: cut.labels, classNames: names),
                channelNames: Array(
                    columnNames.enumerated().filter { $0.offset != 0 && $0.offset != labelColumn }.map(\.element)),
                isLabeled: labelColumn != nil,
                lineCount: lineCount,
                sampleCount: timestamps.count,
                runCount: runs.count,
                medianStepSeconds: median,
                rejected: rejected,
                errors: errors)
        }

        /// Names sorted numerically when all are integers, else lexicographically.
        static func sortedNames(_ names: [String]) -> [String] {
            let numbers = names.compactMap { Int($0) }
            if numbers.count == names.count {
                return zip(numbers, names).sorted { $0.0 < $1.0 }.map(\.1)
            }
            return names.sorted()
        }
    }
}
