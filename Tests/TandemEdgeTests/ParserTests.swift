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
