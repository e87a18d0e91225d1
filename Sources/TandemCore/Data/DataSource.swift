import Foundation

/// A training set and, when the source has one, a test set with the same class list.
public struct DataSplit: Sendable, CustomStringConvertible {
    /// The training windows.
    public var train: LabeledWindows
    /// The test windows, if the source holds a separate test split.
    public var test: LabeledWindows?
    /// Channel names where the source names them (CSV headers, the simulator); else `channel0`, ….
    public var channelNames: [String]
    /// One line saying what was loaded, for logs and `--json` output.
    public var description: String

    /// Creates a split.
    public init(train: LabeledWindows, test: LabeledWindows?, channelNames: [String], description: String) {
        self.train = train
        self.test = test
        self.channelNames = channelNames
        self.description = description
    }
}

/// Loads a dataset from a path, whatever its layout.
///
/// `path` may be:
/// - a `.ts` file (UCR/UEA archive format): its series are the windows; no test split;
/// - a `.csv` file (long-format stream, see ``CSVStream``): windowed by `window`/`hop`; no test split;
/// - a directory holding `NAME_TRAIN.ts` and `NAME_TEST.ts` (the UCR/UEA layout), or
///   `train.csv` and `test.csv` (what `tandem simulate` writes). The test file is optional.
///
/// Class names of train and test are unified: the same name has the same index in both.
public enum DataSource {
    /// Windows of CSV streams when the caller gives none.
    public static let defaultWindow = 128

    /// Loads the dataset at `path`.
    ///
    /// - Parameters:
    ///   - path: A `.ts` file, a `.csv` file or a directory (see ``DataSource``).
    ///   - window: Samples per window for CSV streams (default ``defaultWindow``); ignored for `.ts`,
    ///     whose series already are windows.
    ///   - hop: Samples between window starts for CSV streams (default half a window).
    ///   - lengthPolicy: How `.ts` series of unequal length are brought to one length.
    ///   - labelRule: Which label a CSV window gets.
    /// - Throws: ``DataError`` if the path holds no recognised dataset, a file is malformed,
    ///   the data is unlabeled, or no window can be cut.
    public static func load(
        path: String,
        window: Int? = nil,
        hop: Int? = nil,
        lengthPolicy: TSArchive.LengthPolicy = .requireEqual,
        labelRule: WindowLabelRule = .lastSample
    ) throws -> DataSplit {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError(.unreadable, "no such file or directory", file: path)
        }
        let window = window ?? defaultWindow
        let hop = hop ?? max(1, window / 2)
        if isDirectory.boolValue {
            return try loadDirectory(url, window: window, hop: hop, lengthPolicy: lengthPolicy, labelRule: labelRule)
        }
        switch url.pathExtension.lowercased() {
        case "ts":
            let train = try TSArchive.read(contentsOf: url, lengthPolicy: lengthPolicy)
            return DataSplit(
                train: train, test: nil, channelNames: genericChannelNames(train.channels),
                description: "\(url.lastPathComponent): \(summary(train))")
        case "csv":
            let (train, channels, note) = try readCSV(url, window: window, hop: hop, labelRule: labelRule)
            return DataSplit(
                train: train, test: nil, channelNames: channels,
                description: "\(url.lastPathComponent): \(summary(train)), window \(window) hop \(hop)\(note)")
        default:
            throw DataError(.invalidArgument, "not a .ts or .csv file or a directory", file: path)
        }
    }

    private static func loadDirectory(
        _ directory: URL, window: Int, hop: Int, lengthPolicy: TSArchive.LengthPolicy, labelRule: WindowLabelRule
    ) throws -> DataSplit {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        } catch {
            throw DataError(.unreadable, "cannot list directory: \(error.localizedDescription)", file: directory.path)
        }
        let trainTS = names.filter { $0.uppercased().hasSuffix("_TRAIN.TS") }
        if !trainTS.isEmpty {
            guard trainTS.count == 1 else {
                throw DataError(
                    .invalidArgument, "several UCR/UEA training files (\(trainTS.joined(separator: ", "))); name one",
                    file: directory.path)
            }
            let problem = String(trainTS[0].dropLast("_TRAIN.ts".count))
            let testName = names.first { $0.uppercased() == (problem + "_TEST.ts").uppercased() }
            let train = try TSArchive.read(
                contentsOf: directory.appendingPathComponent(trainTS[0]), lengthPolicy: lengthPolicy)
            guard let testName else {
                return DataSplit(
                    train: train, test: nil, channelNames: genericChannelNames(train.channels),
                    description: "\(problem) (UCR/UEA): train \(summary(train)); no test file")
            }
            var test = try TSArchive.read(
                contentsOf: directory.appendingPathComponent(testName), lengthPolicy: lengthPolicy)
            try checkCompatible(train, test, file: directory.appendingPathComponent(testName).path)
            let unified = LabeledWindows.unifyingClasses(train: train, test: test)
            test = unified.test
            return DataSplit(
                train: unified.train, test: test, channelNames: genericChannelNames(train.channels),
                description: "\(problem) (UCR/UEA): train \(summary(unified.train)); test \(summary(test))")
        }
        if names.contains("train.csv") {
            let (train, channels, trainNote) = try readCSV(
                directory.appendingPathComponent("train.csv"), window: window, hop: hop, labelRule: labelRule)
            guard names.contains("test.csv") else {
                return DataSplit(
                    train: train, test: nil, channelNames: channels,
                    description: "train.csv: \(summary(train))\(trainNote), window \(window) hop \(hop); no test.csv")
            }
            let testURL = directory.appendingPathComponent("test.csv")
            let (test, testChannels, testNote) = try readCSV(testURL, window: window, hop: hop, labelRule: labelRule)
            guard testChannels == channels else {
                throw DataError(
                    .malformedHeader, "channels \(testChannels) differ from train.csv's \(channels)", file: testURL.path
                )
            }
            let unified = LabeledWindows.unifyingClasses(train: train, test: test)
            return DataSplit(
                train: unified.train, test: unified.test, channelNames: channels,
                description:
                    "train.csv: \(summary(unified.train))\(trainNote); test.csv: \(summary(unified.test))\(testNote); window \(window) hop \(hop)"
            )
        }
        throw DataError(
            .invalidArgument, "directory holds neither NAME_TRAIN.ts/NAME_TEST.ts nor train.csv/test.csv",
            file: directory.path)
    }

    private static func readCSV(
        _ url: URL, window: Int, hop: Int, labelRule: WindowLabelRule
    ) throws -> (LabeledWindows, [String], String) {
        let result = try CSVStream.read(contentsOf: url, window: window, hop: hop, labelRule: labelRule)
        guard result.isLabeled else {
            throw DataError(.unlabeled, "no 'label' column; training and evaluation need labels", file: url.path)
        }
        guard result.windows.count > 0 else {
            throw DataError(
                .empty,
                "no window of \(window) samples: \(result.sampleCount) samples accepted in \(result.runCount) runs",
                file: url.path)
        }
        let note = result.rejectedCount == 0 ? "" : ", \(result.rejectedCount) bad lines skipped"
        return (result.windows, result.channelNames, note)
    }

    private static func checkCompatible(_ train: LabeledWindows, _ test: LabeledWindows, file: String) throws {
        guard train.length == test.length, train.channels == test.channels else {
            throw DataError(
                .unequalLength,
                "test series are \(test.length)×\(test.channels) but training series \(train.length)×\(train.channels); use the same length policy",
                file: file)
        }
    }

    private static func genericChannelNames(_ count: Int) -> [String] {
        (0..<count).map { "channel\($0)" }
    }

    private static func summary(_ set: LabeledWindows) -> String {
        "\(set.count) windows of \(set.length)×\(set.channels), \(set.classNames.count) classes"
    }
}
