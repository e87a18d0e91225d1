import Foundation
import TandemTestSupport
import Testing

@testable import TandemCore

struct CSVStreamTests {
    /// `count` lines at 10 ms steps, two channels (value = sample index and its negative), labels from `label`.
    func stream(_ count: Int, start: Int = 0, label: (Int) -> String = { _ in "a" }) -> String {
        (start..<(start + count)).map { i in "\(Double(i) / 100),\(i),\(-i),\(label(i))\n" }.joined()
    }

    func parse(_ text: String, window: Int, hop: Int, rule: WindowLabelRule = .lastSample, strict: Bool = false) throws
        -> CSVStreamResult
    {
        try CSVStream.parse(
            Array(text.utf8), fileName: "s.csv", window: window, hop: hop, labelRule: rule, strict: strict)
    }

    @Test("window and hop give floor((n - window) / hop) + 1 windows with the right samples")
    func windowCounts() throws {
        let result = try parse("timestamp,x,y,label\n" + stream(100), window: 10, hop: 5)
        #expect(result.windows.count == 19)
        #expect(result.channelNames == ["x", "y"])
        #expect(result.windows.windows.shape == [19, 10, 2])
        // Window 3 starts at sample 15: x = 15, y = -15.
        #expect(result.windows.windows.scalars[3 * 20] == 15)
        #expect(result.windows.windows.scalars[3 * 20 + 1] == -15)
        #expect(result.rejectedCount == 0)
        #expect(abs(result.medianStepSeconds - 0.01) < 1e-9)
    }

    @Test("a window takes its last sample's label by default, the majority on request")
    func labelRules() throws {
        // Samples 0...6 are "a", 7...9 "b": the last sample says b, the majority a.
        let text = "timestamp,x,y,label\n" + stream(10) { $0 < 7 ? "a" : "b" }
        let last = try parse(text, window: 10, hop: 10)
        let majority = try parse(text, window: 10, hop: 10, rule: .majority)
        #expect(last.windows.classNames[last.windows.labels[0]] == "b")
        #expect(majority.windows.classNames[majority.windows.labels[0]] == "a")
    }

    @Test("a gap of more than 1.5 median steps restarts windowing")
    func gapResetsWindow() throws {
        // 25 samples, a 1 s gap, 25 more: two runs of 25 hold 2 windows of 10 (hop 10) each, not 5.
        let text = "timestamp,x,y,label\n" + stream(25) + stream(25, start: 125)
        let result = try parse(text, window: 10, hop: 10)
        #expect(result.runCount == 2)
        #expect(result.windows.count == 4)
        #expect(result.windows.windows.scalars[2 * 20] == 125)
    }

    @Test("bad lines are counted per reason, reported with their line, and good windows survive")
    func badLinesCounted() throws {
        var lines = ["timestamp,x,y,label"]
        for i in 0..<40 { lines.append("\(Double(i) / 100),\(i),\(-i),a") }
        lines.insert("0.105,abc,1,a", at: 12)  // line 13: not a number
        lines.insert("0.205,1,2", at: 23)  // line 24: wrong field count
        lines.insert("0.255,nan,2,a", at: 29)  // line 30: non-finite
        lines.insert("0.01,1,2,a", at: 33)  // line 34: out of order
        lines.insert("0.305,1,2,", at: 35)  // line 36: empty label
        let result = try parse(lines.joined(separator: "\n") + "\n", window: 10, hop: 10)
        #expect(
            result.rejected == [.notANumber: 1, .wrongFieldCount: 1, .nonFinite: 1, .outOfOrder: 1, .missingLabel: 1])
        #expect(result.errors.map(\.line) == [13, 24, 30, 34, 36])
        #expect(result.errors[0].description.hasPrefix("s.csv:13: "))
        #expect(result.sampleCount == 40)
        #expect(result.windows.count == 4)
    }

    @Test("a line with an extra field is a field-count error, not a bad label or number")
    func extraFieldWins() throws {
        let result = try parse("t,x,label\n0,1,a\n1,zz,2,a\n2,1,a\n", window: 1, hop: 1)
        #expect(result.rejected == [.wrongFieldCount: 1])
        #expect(result.errors.first?.line == 3)
    }

    @Test("the majority rule breaks ties in favour of the most recent label")
    func majorityTie() throws {
        let text =
            "t,x,label\n"
            + stream(4) { $0 < 2 ? "a" : "b" }.split(separator: "\n").map { line in
                let parts = line.split(separator: ",")
                return "\(parts[0]),\(parts[1]),\(parts[3])"
            }.joined(separator: "\n") + "\n"
        let result = try parse(text, window: 4, hop: 4, rule: .majority)
        #expect(result.windows.classNames[result.windows.labels[0]] == "b")
    }

    @Test("strict mode throws at the first bad line")
    func strictThrows() throws {
        let text = "timestamp,x,y,label\n0,1,2,a\n0.01,1,x,a\n"
        let error = try #require(throws: DataError.self) { try parse(text, window: 1, hop: 1, strict: true) }
        #expect(error.code == .malformedLine)
        #expect(error.line == 3)
    }

    @Test("a file without a label column is read as unlabeled")
    func unlabeled() throws {
        let result = try parse("time,a,b,c\n0,1,2,3\n1,4,5,6\n", window: 2, hop: 1)
        #expect(!result.isLabeled)
        #expect(result.channelNames == ["a", "b", "c"])
        #expect(result.windows.count == 1)
    }

    @Test("class names are sorted numerically when they are integers, and can be fixed by the caller")
    func classNameOrder() throws {
        let text = "t,x,label\n0,1,10\n1,1,2\n2,1,1\n3,1,7\n"
        #expect(try parse(text, window: 1, hop: 1).windows.classNames == ["1", "2", "7", "10"])
        let fixed = try CSVStream.parse(
            Array(text.utf8), fileName: "s.csv", window: 1, hop: 1, classNames: ["10", "7", "2", "1", "5"])
        #expect(fixed.windows.labels == [0, 2, 3, 1])
        #expect(fixed.windows.classNames == ["10", "7", "2", "1", "5"])
        let unknown = try CSVStream.parse(Array(text.utf8), fileName: "s.csv", window: 1, hop: 1, classNames: ["1"])
        #expect(unknown.rejected == [.unknownLabel: 3])
    }

    @Test("a header with two label columns or no channel is rejected at its line")
    func badHeader() throws {
        let twoLabels = try #require(throws: DataError.self) {
            try parse("# comment\nt,label,x,Label\n", window: 1, hop: 1)
        }
        #expect(twoLabels.code == .malformedHeader && twoLabels.line == 2)
        let noChannel = try #require(throws: DataError.self) { try parse("t,label\n0,a\n", window: 1, hop: 1) }
        #expect(noChannel.code == .malformedHeader && noChannel.line == 1)
    }

    @Test("double-quoted header names and labels lose their quotes")
    func quotedNames() throws {
        let result = try parse("\"time\",\"x\",\"label\"\n0,1,\"worn out\"\n1,2,\"worn out\"\n", window: 2, hop: 1)
        #expect(result.channelNames == ["x"])
        #expect(result.windows.classNames == ["worn out"])
        #expect(result.windows.count == 1)
    }

    @Test("CRLF line ends, blank lines and comments are accepted")
    func lineEnds() throws {
        let result = try parse("t,x,label\r\n\r\n# note\r\n0,1,a\r\n1,2,a\r\n", window: 2, hop: 1)
        #expect(result.windows.count == 1)
        #expect(result.rejectedCount == 0)
    }
}
