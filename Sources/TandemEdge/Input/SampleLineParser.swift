#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Parses one sensor sample per line: CSV `timestamp,ch1,…,chN` or JSON `{"ts":…,"values":[…],"stream":"…"}`.
///
/// A line starting with `{` is JSON, anything else CSV. Blank lines, `#` comments and a CSV header
/// (first field `timestamp`, `ts` or `time`) are skipped without counting. Everything else either
/// yields a sample or an ``InputRejection``. Parsed values land in ``values``, a buffer the parser
/// reuses: parsing allocates nothing.
///
/// JSON keys may come in any order; unknown keys are skipped. `stream`, if present, must be one of the
/// stream names given at construction (``streamIndex`` then says which), else the line is rejected as
/// `unknownStream`; a line without one (and every CSV line) belongs to the first stream.
public struct SampleLineParser: Sendable {
    /// Channel values per sample.
    public let channels: Int
    /// Lines longer than this many bytes are rejected as `lineTooLong`.
    public let maximumLineBytes: Int
    /// The streams this parser's lines may belong to (JSON `stream` fields are checked against them;
    /// none: any name is accepted).
    public let streamNames: [String]
    /// The index in ``streamNames`` of the last accepted sample's stream (0 without a `stream` field).
    public private(set) var streamIndex = 0
    /// The values of the last accepted sample (a copy; the hot path gets them from ``parseLines(of:_:)``).
    public var values: [Float] { Array(valueStorage.buffer) }
    /// ``channels`` floats written in place for every value of every line: an array would re-check its
    /// uniqueness on each write, so the parser checks its storage once per line instead (``parse(_:)``).
    private var valueStorage: ValueStorage
    private let streamNameBytes: [[UInt8]]
    /// Open-addressing table of stream indices by FNV-1a hash of the name (-1: empty): an agent may read
    /// a thousand streams from one source, so a name is found without scanning them all.
    private let nameTable: [Int32]
    private var scratch: [CChar]

    /// The result of parsing one line.
    public enum Outcome: Sendable, Equatable {
        /// A sample: its timestamp; the channel values are in ``SampleLineParser/values``.
        case sample(timestamp: Double)
        /// A blank line, comment or CSV header: nothing to do and nothing to count.
        case skipped
        /// A rejected line and why.
        case rejected(InputRejection)
    }

    /// The longest numeric field accepted (longer fields are `nonNumeric`).
    static let maximumFieldBytes = 63

    /// Creates a parser for samples of `channels` values belonging to one stream (`""`: any).
    public init(channels: Int, streamName: String = "", maximumLineBytes: Int = 4096) {
        self.init(
            channels: channels, streamNames: streamName.isEmpty ? [] : [streamName], maximumLineBytes: maximumLineBytes)
    }

    /// Creates a parser for samples of `channels` values belonging to one of `streamNames` (empty: any).
    public init(channels: Int, streamNames: [String], maximumLineBytes: Int = 4096) {
        self.channels = max(channels, 1)
        self.streamNames = streamNames
        self.maximumLineBytes = max(maximumLineBytes, 16)
        valueStorage = ValueStorage(count: self.channels)
        streamNameBytes = streamNames.map { Array($0.utf8) }
        var size = 4
        while size < 2 * streamNames.count { size *= 2 }
        var table = [Int32](repeating: -1, count: size)
        for (k, name) in streamNameBytes.enumerated() {
            var i = name.withUnsafeBufferPointer { Self.nameHash($0) } & (size - 1)
            while table[i] >= 0 { i = (i + 1) & (size - 1) }
            table[i] = Int32(k)
        }
        nameTable = table
        scratch = [CChar](repeating: 0, count: Self.maximumFieldBytes + 1)
    }

    /// Parses the line in `bytes` (without its newline).
    public mutating func parse(_ bytes: [UInt8]) -> Outcome {
        bytes.withUnsafeBufferPointer { parse($0) }
    }

    /// Parses every line of `batch`, calling `body` with the line's number, the outcome, the sample's
    /// ``streamIndex`` and its values (both valid for a `.sample`, the values until the next line): the hot
    /// path, which checks the value storage once per batch rather than once per line.
    public mutating func parseLines(
        of batch: LineBatch, _ body: (Int, Outcome, Int, UnsafeBufferPointer<Float>) throws -> Void
    ) rethrows {
        makeValueStorageUnique()
        let storage = valueStorage
        let values = UnsafeBufferPointer(storage.buffer)
        try withExtendedLifetime(storage) {
            try batch.forEachLine { number, line in
                let outcome = parseLine(line)
                try body(number, outcome, streamIndex, values)
            }
        }
    }

    /// Parses the line in `line` (without its newline).
    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>) -> Outcome {
        makeValueStorageUnique()
        return parseLine(line)
    }

    /// Copy on write: a copy of this parser must not see this one's values change.
    private mutating func makeValueStorageUnique() {
        if !isKnownUniquelyReferenced(&valueStorage) { valueStorage = valueStorage.copy() }
    }

    private mutating func parseLine(_ line: UnsafeBufferPointer<UInt8>) -> Outcome {
        guard line.count <= maximumLineBytes else { return .rejected(.lineTooLong) }
        var start = 0, end = line.count
        if Self.mayHoldControlBytes(line) {
            for byte in line where byte < 0x20 && byte != 0x09 && byte != 0x0D || byte == 0x7F {
                return .rejected(.binaryGarbage)
            }
        }
        while start < end && Self.isSpace(line[start]) { start += 1 }
        while end > start && Self.isSpace(line[end - 1]) { end -= 1 }
        if start == end || line[start] == UInt8(ascii: "#") { return .skipped }
        if line[start] == UInt8(ascii: "{") {
            return parseJSON(UnsafeBufferPointer(rebasing: line[start..<end]))
        }
        return parseCSV(UnsafeBufferPointer(rebasing: line[start..<end]))
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D }

    /// Whether `line` may hold a byte below 0x20 or equal to 0x7F, eight bytes at a time: false proves
    /// there is none (the usual case), true sends the line to the exact byte-by-byte check.
    @inline(__always)
    static func mayHoldControlBytes(_ line: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = line.baseAddress else { return false }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        let count = line.count
        while i + 8 <= count {
            let word = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            // A byte below 0x20 (or at 0x80 and above, which UTF-8 text may hold: a false alarm only), or
            // a byte equal to 0x7F, sets its high bit here.
            let below = (word &- ones &* 0x20) & ~word & highs
            let delete = word ^ (ones &* 0x7F)
            let equal = (delete &- ones) & ~delete & highs
            if below | equal != 0 { return true }
            i += 8
        }
        while i < count {
            if base[i] < 0x20 || base[i] == 0x7F { return true }
            i += 1
        }
        return false
    }

    // MARK: CSV

    private mutating func parseCSV(_ line: UnsafeBufferPointer<UInt8>) -> Outcome {
        var field = 0
        var fieldStart = 0
        var timestamp = 0.0
        var failure: InputRejection?
        var index = 0
        while index <= line.count {
            if index == line.count || line[index] == UInt8(ascii: ",") {
                let range = fieldStart..<index
                if field == 0 {
                    switch number(line, range) {
                    case .value(let v): timestamp = v
                    case .notANumber:
                        if Self.isHeader(line, range) { return .skipped }
                        failure = failure ?? .nonNumeric
                    case .nonFinite: failure = failure ?? .nonFinite
                    }
                } else if field <= channels {
                    switch number(line, range) {
                    case .value(let v):
                        let f = Float(v)
                        if f.isFinite { valueStorage.buffer[field - 1] = f } else { failure = failure ?? .nonFinite }
                    case .notANumber: failure = failure ?? .nonNumeric
                    case .nonFinite: failure = failure ?? .nonFinite
                    }
                }
                field += 1
                fieldStart = index + 1
            }
            index += 1
        }
        // The channel count is checked first: a line with the wrong shape is that, whatever its fields hold.
        if field - 1 != channels { return .rejected(.wrongChannelCount) }
        if let failure { return .rejected(failure) }
        streamIndex = 0
        return .sample(timestamp: timestamp)
    }

    private static func isHeader(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        var start = range.lowerBound, end = range.upperBound
        while start < end && isSpace(line[start]) { start += 1 }
        while end > start && isSpace(line[end - 1]) { end -= 1 }
        let words: [[UInt8]] = [Array("timestamp".utf8), Array("ts".utf8), Array("time".utf8)]
        return words.contains { word in
            word.count == end - start && zip(word, line[start..<end]).allSatisfy { $0 == ($1 | 0x20) }
        }
    }

    enum Number { case value(Double), notANumber, nonFinite }

    /// Parses `line[range]` (surrounding spaces allowed) as a whole decimal number.
    private mutating func number(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Number {
        var start = range.lowerBound, end = range.upperBound
        while start < end && Self.isSpace(line[start]) { start += 1 }
        while end > start && Self.isSpace(line[end - 1]) { end -= 1 }
        let count = end - start
        guard count > 0, count <= Self.maximumFieldBytes else { return .notANumber }
        if let value = Self.plainDecimal(line, start, end) { return .value(value) }
        // strtod also takes hex floats and words such as "infinity"; only digits, sign, point and
        // exponent reach it, plus the NaN/Inf spellings that are reported as non-finite.
        var letters = 0
        for i in start..<end {
            let b = line[i]
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."): break
            case UInt8(ascii: "e"), UInt8(ascii: "E"): break
            default: letters += 1
            }
        }
        if letters > 0 {
            let lower = (start..<end).map { line[$0] | 0x20 }
            let body =
                lower.first == UInt8(ascii: "-") || lower.first == UInt8(ascii: "+") ? Array(lower.dropFirst()) : lower
            if body == Array("nan".utf8) || body == Array("inf".utf8) || body == Array("infinity".utf8) {
                return .nonFinite
            }
            return .notANumber
        }
        return scratch.withUnsafeMutableBufferPointer { s -> Number in
            guard let base = s.baseAddress else { return .notANumber }
            for i in 0..<count { base[i] = CChar(bitPattern: line[start + i]) }
            base[count] = 0
            var endPointer: UnsafeMutablePointer<CChar>?
            let value = strtod(base, &endPointer)
            guard let endPointer, endPointer - base == count else { return .notANumber }
            return value.isFinite ? .value(value) : .nonFinite
        }
    }

    /// 10^n for n in 0...15, each exact in a Double. A switch of literals rather than a table in a global:
    /// this runs for every value of every line, and a global costs a once-check per access.
    @inline(__always)
    static func exactPowerOfTen(_ n: Int) -> Double {
        switch n {
        case 0: 1
        case 1: 1e1
        case 2: 1e2
        case 3: 1e3
        case 4: 1e4
        case 5: 1e5
        case 6: 1e6
        case 7: 1e7
        case 8: 1e8
        case 9: 1e9
        case 10: 1e10
        case 11: 1e11
        case 12: 1e12
        case 13: 1e13
        case 14: 1e14
        default: 1e15
        }
    }

    /// The fast path for what sensors send: `[-+]digits[.digits]` with at most 15 significant digits (so the
    /// integer mantissa and the power of ten are both exact in a Double and the one division rounds
    /// correctly, as strtod would). Anything else (exponents, long mantissas, stray characters) is nil and
    /// goes to strtod.
    static func plainDecimal(_ line: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Double? {
        guard let (value, stop) = scanDecimal(line, start, end), stop == end else { return nil }
        return value
    }

    /// Reads `[-+]digits[.digits]` from `start`, stopping at the first other byte or `end`: the value (if
    /// it has 1 to 15 digits) and where it stopped. One loop serves CSV fields (which must end there) and
    /// JSON values (which must end at a delimiter).
    @inline(__always)
    static func scanDecimal(_ line: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (Double, Int)? {
        guard start < end else { return nil }
        var i = start
        var negative = false
        if line[i] == UInt8(ascii: "-") || line[i] == UInt8(ascii: "+") {
            negative = line[i] == UInt8(ascii: "-")
            i += 1
        }
        var mantissa: UInt64 = 0
        var digits = 0, fractionDigits = 0
        var seenPoint = false
        while i < end {
            let b = line[i]
            if b &- UInt8(ascii: "0") < 10 {
                mantissa = mantissa &* 10 &+ UInt64(b &- UInt8(ascii: "0"))
                digits += 1
                if seenPoint { fractionDigits += 1 }
            } else if b == UInt8(ascii: ".") && !seenPoint {
                seenPoint = true
            } else {
                break
            }
            i += 1
        }
        guard digits > 0, digits <= 15 else { return nil }
        let magnitude = Double(mantissa) / exactPowerOfTen(fractionDigits)
        return (negative ? -magnitude : magnitude, i)
    }

    // MARK: JSON

    private mutating func parseJSON(_ line: UnsafeBufferPointer<UInt8>) -> Outcome {
        var reader = JSONReader(line)
        var timestamp: Double?
        var valueCount = 0
        var sawValues = false
        var failure: InputRejection?
        var wrongStream = false
        var namedStream = 0
        guard reader.consume(UInt8(ascii: "{")) else { return .rejected(.malformedJSON) }
        if !reader.consume(UInt8(ascii: "}")) {
            while true {
                guard let key = reader.string(), reader.consume(UInt8(ascii: ":")) else {
                    return .rejected(.malformedJSON)
                }
                if reader.equals(key, "ts") || reader.equals(key, "timestamp") {
                    if let v = reader.plainDecimal() {
                        timestamp = v
                    } else if let range = reader.numberToken() {
                        switch number(line, range) {
                        case .value(let v): timestamp = v
                        case .notANumber: failure = failure ?? .nonNumeric
                        case .nonFinite: failure = failure ?? .nonFinite
                        }
                    } else {
                        guard reader.skipValue() else { return .rejected(.malformedJSON) }
                        failure = failure ?? .nonNumeric
                    }
                } else if reader.equals(key, "values") {
                    sawValues = true
                    valueCount = 0
                    if !reader.consume(UInt8(ascii: "[")) {
                        guard reader.skipValue() else { return .rejected(.malformedJSON) }
                        failure = failure ?? .nonNumeric
                    } else if !reader.consume(UInt8(ascii: "]")) {
                        while true {
                            if let v = reader.plainDecimal() {
                                // The common case in one pass; anything else takes the general path below.
                                if valueCount < channels { valueStorage.buffer[valueCount] = Float(v) }
                            } else if let range = reader.numberToken() {
                                switch number(line, range) {
                                case .value(let v):
                                    let f = Float(v)
                                    if !f.isFinite {
                                        failure = failure ?? .nonFinite
                                    } else if valueCount < channels {
                                        valueStorage.buffer[valueCount] = f
                                    }
                                case .notANumber: failure = failure ?? .nonNumeric
                                case .nonFinite: failure = failure ?? .nonFinite
                                }
                            } else {
                                // JSON has no NaN: writers that emit null or a string for a missing value get nonNumeric.
                                guard reader.skipValue() else { return .rejected(.malformedJSON) }
                                failure = failure ?? .nonNumeric
                            }
                            valueCount += 1
                            if reader.consume(UInt8(ascii: "]")) { break }
                            guard reader.consume(UInt8(ascii: ",")) else { return .rejected(.malformedJSON) }
                        }
                    }
                } else if reader.equals(key, "stream") {
                    if let name = reader.string() {
                        if !streamNameBytes.isEmpty {
                            if let i = streamIndex(named: UnsafeBufferPointer(rebasing: reader.bytes[name])) {
                                namedStream = i
                            } else {
                                wrongStream = true
                            }
                        }
                    } else {
                        guard reader.skipValue() else { return .rejected(.malformedJSON) }
                        wrongStream = true
                    }
                } else {
                    guard reader.skipValue() else { return .rejected(.malformedJSON) }
                }
                if reader.consume(UInt8(ascii: "}")) { break }
                guard reader.consume(UInt8(ascii: ",")) else { return .rejected(.malformedJSON) }
            }
        }
        reader.skipSpace()
        guard reader.atEnd else { return .rejected(.malformedJSON) }
        // Precedence: whose sample it is, then whether it is one at all, then its shape, then its contents.
        if wrongStream { return .rejected(.unknownStream) }
        guard sawValues, timestamp != nil || failure != nil else { return .rejected(.malformedJSON) }
        if valueCount != channels { return .rejected(.wrongChannelCount) }
        if let failure { return .rejected(failure) }
        guard let timestamp else { return .rejected(.malformedJSON) }
        streamIndex = namedStream
        return .sample(timestamp: timestamp)
    }
}

/// A forward-only scanner over one JSON line; every method returns nil/false instead of reading past the end.
extension SampleLineParser {
    /// FNV-1a over `bytes`, as a non-negative Int.
    static func nameHash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h & 0x7fff_ffff_ffff_ffff)
    }

    /// The index of the configured stream whose name is `name`, if any.
    func streamIndex(named name: UnsafeBufferPointer<UInt8>) -> Int? {
        let mask = nameTable.count - 1
        var i = Self.nameHash(name) & mask
        return nameTable.withUnsafeBufferPointer { table in
            while table[i] >= 0 {
                let k = Int(table[i])
                let matches = streamNameBytes[k].withUnsafeBufferPointer { candidate in
                    candidate.count == name.count
                        && (name.isEmpty || memcmp(candidate.baseAddress!, name.baseAddress!, name.count) == 0)
                }
                if matches { return k }
                i = (i + 1) & mask
            }
            return nil
        }
    }
}

struct JSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var atEnd: Bool { position >= bytes.count }

    mutating func skipSpace() {
        while position < bytes.count,
            bytes[position] == 0x20 || bytes[position] == 0x09 || bytes[position] == 0x0D || bytes[position] == 0x0A
        {
            position += 1
        }
    }

    /// Consumes `byte` after optional space.
    mutating func consume(_ byte: UInt8) -> Bool {
        skipSpace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// A string's raw contents (escapes left as written), after optional space.
    mutating func string() -> Range<Int>? {
        skipSpace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return nil }
        let start = position + 1
        var i = start
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if bytes[i] == UInt8(ascii: "\"") {
                position = i + 1
                return start..<i
            }
            i += 1
        }
        return nil
    }

    /// The next value if it is a plain decimal (`[-+]digits[.digits]`, at most 15 significant digits, as
    /// ``SampleLineParser/plainDecimal(_:_:_:)`` takes) ending at a delimiter, read in one pass; else nil
    /// and nothing consumed (exponents, long mantissas, words go through ``numberToken()``).
    mutating func plainDecimal() -> Double? {
        skipSpace()
        guard let (value, stop) = SampleLineParser.scanDecimal(bytes, position, bytes.count) else { return nil }
        if stop < bytes.count {
            switch bytes[stop] {
            case UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), 0x20, 0x09, 0x0D, 0x0A: break
            default: return nil
            }
        }
        position = stop
        return value
    }

    /// A run of number characters, if the next value is a number.
    mutating func numberToken() -> Range<Int>? {
        skipSpace()
        let start = position
        var i = start
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "e"), UInt8(ascii: "E"):
                i += 1
                continue
            default: break
            }
            break
        }
        guard i > start else { return nil }
        position = i
        return start..<i
    }

    /// Skips any one value (string, number, literal, array or object); false if it is not valid JSON.
    mutating func skipValue(depth: Int = 0) -> Bool {
        guard depth < 32 else { return false }
        skipSpace()
        guard position < bytes.count else { return false }
        switch bytes[position] {
        case UInt8(ascii: "\""): return string() != nil
        case UInt8(ascii: "{"):
            position += 1
            if consume(UInt8(ascii: "}")) { return true }
            while true {
                guard string() != nil, consume(UInt8(ascii: ":")), skipValue(depth: depth + 1) else { return false }
                if consume(UInt8(ascii: "}")) { return true }
                guard consume(UInt8(ascii: ",")) else { return false }
            }
        case UInt8(ascii: "["):
            position += 1
            if consume(UInt8(ascii: "]")) { return true }
            while true {
                guard skipValue(depth: depth + 1) else { return false }
                if consume(UInt8(ascii: "]")) { return true }
                guard consume(UInt8(ascii: ",")) else { return false }
            }
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            for word in ["true", "false", "null"] {
                let w = Array(word.utf8)
                if position + w.count <= bytes.count, zip(w, bytes[position..<(position + w.count)]).allSatisfy(==) {
                    position += w.count
                    return true
                }
            }
            return false
        default:
            return numberToken() != nil
        }
    }

    func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        let p = text.utf8Start
        for (k, i) in range.enumerated() where bytes[i] != p[k] { return false }
        return true
    }
}

/// The parser's value buffer: a class so that writing a value is a store, not an array's uniqueness check.
private final class ValueStorage: @unchecked Sendable {
    // Written only by the parser that holds the sole reference (it copies before writing otherwise).
    let buffer: UnsafeMutableBufferPointer<Float>

    init(count: Int) {
        buffer = .allocate(capacity: count)
        buffer.initialize(repeating: 0)
    }

    func copy() -> ValueStorage {
        let copy = ValueStorage(count: buffer.count)
        _ = copy.buffer.update(fromContentsOf: buffer)
        return copy
    }

    deinit { buffer.deallocate() }
}
