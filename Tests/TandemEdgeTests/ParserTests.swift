import Foundation
import TandemCore
import Testing

@testable import TandemEdge

struct ParserTests {
    static let cases: [(String, InputRejection?)] = [
        ("1.5,2,3", nil),
        ("  1.5 , 2 ,3  ", nil),
        ("1e3,-2.5e-1,+3", nil),
        ("1,abc,3", .nonNumeric),
        ("x,2,3", .nonNumeric),
        ("1,0x10,3", .nonNumeric),
        ("1,,3", .nonNumeric),
        ("1,2", .wrongChannelCount),
        ("1,2,3,4", .wrongChannelCount),
        ("1,abc", .wrongChannelCount),
        ("1,nan,3", .nonFinite),
        ("1,2,-inf", .nonFinite),
        ("inf,2,3", .nonFinite),
        ("1,1e40,3", .nonFinite),
        ("1,2\u{0},3", .binaryGarbage),
        ("\u{1B}[31m1,2,3", .binaryGarbage),
        ("{\"ts\":1,\"values\":[2,3]}", nil),
        ("{ \"values\" : [2, 3], \"stream\": \"s\", \"ts\": 1.25, \"extra\": {\"a\": [1, true, null]} }", nil),
        ("{\"ts\":1,\"values\":[2,3]", .malformedJSON),
        ("{\"ts\":1,\"values\":[2,3]}}", .malformedJSON),
        ("{\"ts\":1}", .malformedJSON),
        ("{ts:1,values:[2,3]}", .malformedJSON),
        ("{\"ts\":1,\"values\":[2]}", .wrongChannelCount),
        ("{\"ts\":1,\"values\":[2,null]}", .nonNumeric),
        ("{\"ts\":\"x\",\"values\":[2,3]}", .nonNumeric),
        ("{\"ts\":1,\"values\":[2,1e39]}", .nonFinite),
        ("{\"ts\":1,\"values\":[2,3],\"stream\":\"other\"}", .unknownStream),
    ]

    @Test("each kind of bad line is rejected with its reason; good lines parse", arguments: cases)
    func reasons(line: String, reason: InputRejection?) {
        var parser = SampleLineParser(channels: 2, streamName: "s", maximumLineBytes: 200)
        let outcome = parser.parse(Array(line.utf8))
        if let reason {
            #expect(outcome == .rejected(reason), "\(line)")
        } else {
            guard case .sample = outcome else {
                Issue.record("\(line) → \(outcome)")
                return
            }
        }
    }

    @Test("values and timestamp of a good line")
    func values() {
        var parser = SampleLineParser(channels: 3)
        #expect(parser.parse(Array("7.5,1,-2,3.25".utf8)) == .sample(timestamp: 7.5))
        #expect(parser.values == [1, -2, 3.25])
        #expect(parser.parse(Array("{\"values\":[4,5,6],\"ts\":8}".utf8)) == .sample(timestamp: 8))
        #expect(parser.values == [4, 5, 6])
    }

    @Test("JSON numbers read in one pass equal strtod's, and the general forms still parse")
    func jsonNumberForms() {
        var parser = SampleLineParser(channels: 4)
        let forms = [
            "0.1", "-12.625", "+3", "7.", "123456789012345", "1234567890.12345", "1e3", "-2.5E-1",
            "1234567890123456789", "0.30000000000000004",
        ]
        for form in forms {
            let line = "{\"ts\":\(form),\"values\":[\(form), \(form) ,\(form),\(form)]}"
            let expected = strtod(form, nil)
            #expect(parser.parse(Array(line.utf8)) == .sample(timestamp: expected), "\(line)")
            #expect(parser.values == [Float](repeating: Float(expected), count: 4), "\(line)")
        }
        for bad in ["1.2.3", "1-2", "--1", "."] {
            let line = "{\"ts\":1,\"values\":[\(bad),1,2,3]}"
            #expect(parser.parse(Array(line.utf8)) == .rejected(.nonNumeric), "\(line)")
        }
        // Not a number token at all: the line is not JSON.
        #expect(parser.parse(Array("{\"ts\":1,\"values\":[12a,1,2,3]}".utf8)) == .rejected(.malformedJSON))
    }

    @Test("a copy of a parser keeps its values while the original parses on")
    func copiesKeepTheirValues() {
        var parser = SampleLineParser(channels: 2)
        #expect(parser.parse(Array("1,2,3".utf8)) == .sample(timestamp: 1))
        let copy = parser
        var batch = LineBatch()
        batch.append("4,5,6")
        var seen = [[Float]]()
        parser.parseLines(of: batch) { _, _, _, values in seen.append(Array(values)) }
        #expect(seen == [[5, 6]] && parser.values == [5, 6])
        #expect(copy.values == [2, 3])
    }

    @Test("the word-at-a-time control-byte screen never misses one")
    func controlByteScreen() {
        var generator = SeededGenerator(seed: 20_261_123)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...40, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
            if length > 0 && Bool.random(using: &generator) {
                bytes[Int.random(in: 0..<length, using: &generator)] = [0x00, 0x01, 0x09, 0x0D, 0x1F, 0x7F, 0xC3]
                    .randomElement(using: &generator)!
            }
            let exact = bytes.contains { $0 < 0x20 || $0 == 0x7F }
            let screened = bytes.withUnsafeBufferPointer { SampleLineParser.mayHoldControlBytes($0) }
            if exact { #expect(screened, "\(bytes)") }
            if !bytes.contains(where: { $0 >= 0x80 }) && !exact { #expect(!screened, "\(bytes)") }
        }
    }

    @Test("blank lines, comments and a header are skipped, an over-long line is rejected")
    func skipped() {
        var parser = SampleLineParser(channels: 1, maximumLineBytes: 32)
        for line in ["", "   ", "# comment", "timestamp,x", "TS, a"] {
            #expect(parser.parse(Array(line.utf8)) == .skipped, "\(line)")
        }
        #expect(parser.parse(Array(String(repeating: "1", count: 33).utf8)) == .rejected(.lineTooLong))
    }

    @Test("the rate-limited log writes N per interval, then reports how many it suppressed")
    func rateLimit() {
        var log = RateLimitedLog(limit: 3, intervalSeconds: 10)
        let first = (0..<10).map { log.decide(now: Double($0) * 0.1) }
        #expect(first.filter { $0 == .write }.count == 3)
        #expect(first.filter { $0 == .suppress }.count == 7)
        #expect(log.decide(now: 10.5) == .writeAfterSuppressed(7))
        #expect(log.decide(now: 10.6) == .write)
    }

    @Test("counters keep a count per reason per stream and snapshot them")
    func counters() {
        let counters = InputErrorCounters(streams: ["a", "b"])
        counters.record(.nonFinite, stream: 0)
        counters.record(.nonFinite, stream: 0)
        counters.record(.lineTooLong, stream: 1, count: 5)
        counters.record(.lineTooLong, stream: 7)
        let s = counters.snapshot()
        #expect(s.byStream == ["a": [.nonFinite: 2], "b": [.lineTooLong: 5]])
        #expect(s.total == 7)
    }
}

struct NumberFastPathTests {
    @Test("the plain-decimal fast path gives strtod's bits on 200,000 random decimals and leaves the rest to strtod")
    func matchesStrtod() {
        var generator = SeededGenerator(seed: 21)
        for _ in 0..<200_000 {
            let digits = Int.random(in: 1...15, using: &generator)
            var text = (0..<digits).map { _ in String(Int.random(in: 0...9, using: &generator)) }.joined()
            let point = Int.random(in: 0...digits, using: &generator)
            if point < digits { text.insert(".", at: text.index(text.startIndex, offsetBy: point)) }
            if Bool.random(using: &generator) { text = "-" + text }
            let bytes = Array(text.utf8)
            let fast = bytes.withUnsafeBufferPointer { SampleLineParser.plainDecimal($0, 0, $0.count) }
            let reference = strtod(text, nil)
            #expect(fast?.bitPattern == reference.bitPattern, "\(text)")
            if fast?.bitPattern != reference.bitPattern { return }
        }
        for text in ["1e3", "1234567890123456", "0x10", "1.2.3", "", "-", "."] {
            let bytes = Array(text.utf8)
            #expect(bytes.withUnsafeBufferPointer { SampleLineParser.plainDecimal($0, 0, $0.count) } == nil, "\(text)")
        }
    }
}
