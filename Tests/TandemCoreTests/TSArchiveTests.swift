import Foundation
import TandemTestSupport
import Testing

@testable import TandemCore

struct TSArchiveTests {
    static let univariate = """
        # A two-class univariate problem.
        @problemName Tiny
        @timeStamps false
        @missing false
        @univariate true
        @equalLength true
        @seriesLength 4
        @classLabel true up down
        @data
        1,2,3,4:up
        4,3,2,1:down
        0.5,1.5,2.5,3.5:up

        """

    static let multivariate = """
        @problemName TinyMulti
        @timeStamps false
        @univariate false
        @dimensions 2
        @equalLength true
        @seriesLength 3
        @classLabel true a b c
        @data
        1,2,3:10,20,30:b
        4,5,6:40,50,60:c

        """

    /// The archive with one data line replaced; line numbers of the header stay the same.
    static func unequal(_ lines: [String]) -> String {
        """
        @problemName Ragged
        @univariate true
        @equalLength false
        @classLabel true x y
        @data
        \(lines.joined(separator: "\n"))

        """
    }

    func parse(_ text: String, _ policy: TSArchive.LengthPolicy = .requireEqual) throws -> LabeledWindows {
        try TSArchive.parse(text, fileName: "t.ts", lengthPolicy: policy)
    }

    func failure(_ text: String, _ policy: TSArchive.LengthPolicy = .requireEqual) throws -> DataError {
        try #require(throws: DataError.self) { try parse(text, policy) }
    }

    @Test("a univariate archive reads into [series, length, 1] with labels in @classLabel order")
    func readsUnivariate() throws {
        let set = try parse(Self.univariate)
        #expect(set.windows.shape == [3, 4, 1])
        #expect(set.windows.scalars == [1, 2, 3, 4, 4, 3, 2, 1, 0.5, 1.5, 2.5, 3.5])
        #expect(set.labels == [0, 1, 0])
        #expect(set.classNames == ["up", "down"])
    }

    @Test("% lines are comments too, as in aeon's UnitTest files")
    func percentComments() throws {
        let set = try parse("%# A cut-down problem\n%\n" + Self.univariate)
        #expect(set.windows.shape == [3, 4, 1])
        #expect(set.labels == [0, 1, 0])
    }

    @Test("a multivariate archive puts dimensions on the channel axis")
    func readsMultivariate() throws {
        let set = try parse(Self.multivariate)
        #expect(set.windows.shape == [2, 3, 2])
        #expect(Array(set.windows.scalars[0..<6]) == [1, 10, 2, 20, 3, 30])
        #expect(set.labels == [1, 2])
        #expect(set.classNames == ["a", "b", "c"])
    }

    @Test("a file on disk reads the same as its text, CRLF and tag case notwithstanding")
    func readsFile() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let text = Self.univariate.replacingOccurrences(of: "@classLabel", with: "@CLASSLABEL")
            .replacingOccurrences(of: "\n", with: "\r\n")
        let url = try scratch.write(text, named: "Tiny_TRAIN.ts")
        #expect(try TSArchive.read(contentsOf: url) == (try parse(Self.univariate)))
    }

    @Test("write then read gives the same windows, labels and classes")
    func roundTrip() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let set = SensorSimulator.windows(count: 12, window: 16, seed: 3)
        let url = scratch.url.appendingPathComponent("Sim_TRAIN.ts")
        try TSArchive.write(set, to: url, problemName: "Sim")
        #expect(try TSArchive.read(contentsOf: url) == set)
        let univariate = try parse(Self.univariate)
        #expect(try parse(TSArchive.text(of: univariate, problemName: "Tiny")) == univariate)
    }

    @Test("a class name the format cannot hold is refused when writing")
    func refusesBadClassName() throws {
        let set = LabeledWindows(
            windows: Tensor(shape: [1, 2, 1], scalars: [1, 2]), labels: [0], classNames: ["two words"])
        let error = try #require(throws: DataError.self) { try TSArchive.text(of: set, problemName: "P") }
        #expect(error.code == .invalidArgument)
    }

    @Test("unequal lengths fail without a policy, naming the line and the way out")
    func unequalWithoutPolicy() throws {
        let error = try failure(Self.unequal(["1,2,3:x", "1,2:y"]))
        #expect(error.code == .unequalLength)
        #expect(error.line == 7)
        #expect(error.message.contains("length policy"))
    }

    @Test("padding repeats the last value; padTo refuses longer series")
    func padding() throws {
        let text = Self.unequal(["1,2,3:x", "5,6:y"])
        let longest = try parse(text, .padToLongest)
        #expect(longest.windows.scalars == [1, 2, 3, 5, 6, 6])
        let four = try parse(text, .padTo(4))
        #expect(four.windows.scalars == [1, 2, 3, 3, 5, 6, 6, 6])
        let tooShort = try failure(text, .padTo(2))
        #expect(tooShort.code == .unequalLength && tooShort.line == 6)
    }

    @Test("resampling interpolates linearly and keeps both ends")
    func resampling() throws {
        let set = try parse(Self.unequal(["0,10:x", "0,1,2,3,4:y"]), .resample(to: 3))
        #expect(set.windows.shape == [2, 3, 1])
        for (value, expected) in zip(set.windows.scalars, [0, 5, 10, 0, 2, 4] as [Float]) {
            #expect(abs(value - expected) < 1e-6)
        }
    }

    @Test("a missing value is rejected with its line, dimension and position", arguments: ["?", "NaN"])
    func missingValue(_ token: String) throws {
        let error = try failure(Self.multivariate.replacingOccurrences(of: "40,50,60", with: "40,\(token),60"))
        #expect(error.code == .missingValue)
        #expect(error.line == 10)
        #expect(error.message.contains("dimension 2 at position 2"))
        #expect(error.description.hasPrefix("t.ts:10: "))
    }

    @Test("a line with the wrong number of dimensions fails at that line")
    func wrongDimensionCount() throws {
        let error = try failure(Self.multivariate.replacingOccurrences(of: "4,5,6:40,50,60:c", with: "4,5,6:c"))
        #expect(error.code == .malformedLine)
        #expect(error.line == 10)
        #expect(error.message.contains("1 dimensions, expected 2"))
    }

    @Test("a non-numeric value fails at its line")
    func nonNumeric() throws {
        let error = try failure(Self.univariate.replacingOccurrences(of: "4,3,2,1", with: "4,3,two,1"))
        #expect(error.code == .malformedLine)
        #expect(error.line == 11)
        #expect(error.message.contains("'two'"))
    }

    @Test("a label outside @classLabel fails at its line")
    func unknownLabel() throws {
        let error = try failure(Self.univariate.replacingOccurrences(of: "4,3,2,1:down", with: "4,3,2,1:sideways"))
        #expect(error.code == .unknownLabel)
        #expect(error.line == 11)
    }

    @Test("a second @classLabel line is refused, not left to index labels of the first (a fuzzing crash)")
    func classLabelTwice() throws {
        // Found by the `ts` fuzz target (Fuzz/Regressions/ts/): the label index kept `down` → 1 from the first list
        // while the class names became the second list's one name, and LabeledWindows trapped.
        let text = Self.univariate.replacingOccurrences(
            of: "@data\n", with: "@classLabel true up\n@data\n")
        let error = try failure(text)
        #expect(error.code == .malformedHeader)
        #expect(error.message.contains("@classLabel appears twice"))
    }

    @Test("a data line before @data fails at its line")
    func dataBeforeHeader() throws {
        let error = try failure(
            Self.univariate.replacingOccurrences(of: "@seriesLength 4\n", with: "@seriesLength 4\n1,2,3,4:up\n"))
        #expect(error.code == .dataBeforeHeader)
        #expect(error.line == 8)
    }

    @Test("time stamps, regression targets and unlabeled archives are refused clearly")
    func unsupported() throws {
        let stamped = try failure(
            Self.univariate.replacingOccurrences(of: "@timeStamps false", with: "@timeStamps true"))
        #expect(stamped.code == .unsupported && stamped.line == 3)
        #expect(stamped.message.contains("@timeStamps true"))
        let stampedData = try failure(
            Self.univariate.replacingOccurrences(
                of: "1,2,3,4:up", with: "(2020-01-01 00:00:00,1),(2020-01-01 00:00:01,2):up"))
        #expect(stampedData.code == .unsupported && stampedData.line == 10)
        let regression = try failure(
            Self.univariate.replacingOccurrences(of: "@classLabel true up down", with: "@targetLabel true"))
        #expect(regression.code == .unsupported)
        let unlabeled = try failure(
            Self.univariate.replacingOccurrences(of: "@classLabel true up down", with: "@classLabel false"))
        #expect(unlabeled.code == .unlabeled && unlabeled.line == 8)
    }

    @Test("a declared series length that the data breaks is an error at the line")
    func seriesLengthMismatch() throws {
        let error = try failure(Self.univariate.replacingOccurrences(of: "@seriesLength 4", with: "@seriesLength 5"))
        #expect(error.code == .unequalLength && error.line == 10)
    }

    @Test("an archive with no series after @data is empty")
    func emptyArchive() throws {
        let text = Self.univariate.components(separatedBy: "@data")[0] + "@data\n"
        #expect(try failure(text).code == .empty)
    }
}
