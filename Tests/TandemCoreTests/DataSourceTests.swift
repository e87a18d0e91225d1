import Foundation
import TandemTestSupport
import Testing

@testable import TandemCore

struct DataSourceTests {
    static func archive(_ labels: [String], rows: [String]) -> String {
        """
        @problemName P
        @univariate true
        @equalLength true
        @classLabel true \(labels.joined(separator: " "))
        @data
        \(rows.joined(separator: "\n"))

        """
    }

    @Test("a UCR directory loads train and test with one class list, whatever order each file declares")
    func ucrDirectory() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try scratch.write(Self.archive(["a", "b"], rows: ["1,2:a", "3,4:b"]), named: "P_TRAIN.ts")
        try scratch.write(Self.archive(["b", "a", "c"], rows: ["5,6:a", "7,8:c", "9,9:b"]), named: "P_TEST.ts")
        let split = try DataSource.load(path: scratch.url.path)
        let test = try #require(split.test)
        #expect(split.train.classNames == ["a", "b", "c"])
        #expect(test.classNames == ["a", "b", "c"])
        #expect(split.train.labels == [0, 1])
        #expect(test.labels == [0, 2, 1])
        #expect(split.description.contains("P (UCR/UEA)"))
    }

    @Test("padding to the longest series pads train and test to one length")
    func padToLongestAcrossFiles() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try scratch.write(
            Self.archive(["a"], rows: ["1,2:a", "1,2,3:a"]).replacingOccurrences(
                of: "@equalLength true", with: "@equalLength false"), named: "P_TRAIN.ts")
        try scratch.write(
            Self.archive(["a"], rows: ["4,5,6,7,8:a"]).replacingOccurrences(
                of: "@equalLength true", with: "@equalLength false"), named: "P_TEST.ts")
        let split = try DataSource.load(path: scratch.url.path, lengthPolicy: .padToLongest)
        #expect(split.train.length == 5 && split.test?.length == 5)
        #expect(split.train.windows.scalars == [1, 2, 2, 2, 2, 1, 2, 3, 3, 3])
        #expect(split.test?.windows.scalars == [4, 5, 6, 7, 8])
    }

    @Test("train.csv and test.csv unify classes too, and window/hop default to 128/64")
    func csvDirectory() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        func csv(_ labels: (Int) -> String, count: Int) -> String {
            "timestamp,x,label\n" + (0..<count).map { "\(Double($0) / 100),\($0),\(labels($0))\n" }.joined()
        }
        try scratch.write(csv({ $0 < 150 ? "ok" : "worn" }, count: 256), named: "train.csv")
        try scratch.write(csv({ _ in "broken" }, count: 192), named: "test.csv")
        let split = try DataSource.load(path: scratch.url.path)
        let test = try #require(split.test)
        #expect(split.train.classNames == ["ok", "worn", "broken"])
        #expect(test.classNames == split.train.classNames)
        #expect(split.train.count == 3 && split.train.length == 128)
        #expect(test.labels == [2, 2])
        #expect(split.channelNames == ["x"])
    }

    @Test("a single .csv or .ts file loads as a training set without test split")
    func singleFiles() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let ts = try scratch.write(Self.archive(["a"], rows: ["1,2:a"]), named: "one.ts")
        let csv = try scratch.write("t,x,y,label\n0,1,2,a\n1,1,2,a\n2,1,2,a\n", named: "one.csv")
        #expect(try DataSource.load(path: ts.path).test == nil)
        let split = try DataSource.load(path: csv.path, window: 2, hop: 1)
        #expect(split.train.count == 2 && split.test == nil)
    }

    @Test("a simulated .ts directory loads with the simulator's class order")
    func simulatedArchive() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try scratch.writeSimulation(durationSeconds: 20, seed: 3, format: .ts)
        let split = try DataSource.load(path: scratch.url.path)
        #expect(split.train.classNames == SensorSimulator.classNames)
        #expect(split.train.length == 128 && split.train.channels == 4)
        #expect(try #require(split.test).count == (5_000 - 128) / 64 + 1)
    }

    @Test("paths that hold no dataset, unlabeled CSV and too-short streams are clear errors")
    func errors() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let missing = try #require(throws: DataError.self) { try DataSource.load(path: scratch.url.path + "/nope") }
        #expect(missing.code == .unreadable)
        let empty = try #require(throws: DataError.self) { try DataSource.load(path: scratch.url.path) }
        #expect(empty.code == .invalidArgument)
        let unlabeled = try scratch.write("t,x\n0,1\n1,2\n", named: "u.csv")
        #expect(throws: DataError.self) { try DataSource.load(path: unlabeled.path, window: 1, hop: 1) }
        let short = try scratch.write("t,x,label\n0,1,a\n", named: "s.csv")
        let tooShort = try #require(throws: DataError.self) { try DataSource.load(path: short.path, window: 4, hop: 1) }
        #expect(tooShort.code == .empty)
    }
}
