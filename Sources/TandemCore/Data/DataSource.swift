#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

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
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError(.unreadable, "no such file or directory", file: path)
        }
        let window = window ?? defaultWindow
        let hop = hop ?? max(1, window / 2)
        if isDirectory {
            return try loadDirectory(url, window: window, hop: hop, lengthPolicy: lengthPolicy, labelRule: labelRule)
        }
        switch url.pathExtension.lowercased() {
        case "ts":
            let train = try TSArchive.read(contentsOf: url, lengthPolicy: lengthPolicy)
            return DataSplit(
                train: train, test: nil, channelNames: genericChannelNames(train.channels),
                description: "\(url.lastPathComponent): \(summary(train))")
        case "csv":
            let part = try readCSV(url, window: window, hop: hop, labelRule: labelRule)
            return DataSplit(
                train: part.windows, test: nil, channelNames: part.channelNames, sampleRateHz: part.sampleRateHz,
                hop: hop,
                description:
                    "\(url.lastPathComponent): \(summary(part.windows)), window \(window) hop \(hop)\(part.note)")
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
            throw DataError(.unreadable, "cannot list directory: \(describe(error))", file: directory.path)
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
            var train = try TSArchive.read(
                contentsOf: directory.appendingPathComponent(trainTS[0]), lengthPolicy: lengthPolicy)
            guard let testName else {
                return DataSplit(
                    train: train, test: nil, channelNames: genericChannelNames(train.channels),
                    description: "\(problem) (UCR/UEA): train \(summary(train)); no test file")
            }
            var test = try TSArchive.read(
                contentsOf: directory.appendingPathComponent(testName), lengthPolicy: lengthPolicy)
            if lengthPolicy == .padToLongest && train.length != test.length {
                // "Longest" must mean longest over both files, or train and test windows differ.
                let length = max(train.length, test.length)
                train = train.paddedRepeatingLastSample(to: length)
                test = test.paddedRepeatingLastSample(to: length)
            }
            try checkCompatible(train, test, file: directory.appendingPathComponent(testName).path)
            let unified = LabeledWindows.unifyingClasses(train: train, test: test)
            test = unified.test
            return DataSplit(
                train: unified.train, test: test, channelNames: genericChannelNames(train.channels),
                description: "\(problem) (UCR/UEA): train \(summary(unified.train)); test \(summary(test))")
        }
        if names.contains("train.csv") {
            let train = try readCSV(
                directory.appendingPathComponent("train.csv"), window: window, hop: hop, labelRule: labelRule)
            guard names.contains("test.csv") else {
                return DataSplit(
                    train: train.windows, test: nil, channelNames: train.channelNames,
                    sampleRateHz: train.sampleRateHz, hop: hop,
                    description:
                        "train.csv: \(summary(train.windows))\(train.note), window \(window) hop \(hop); no test.csv")
            }
            let testURL = directory.appendingPathComponent("test.csv")
            let test = try readCSV(testURL, window: window, hop: hop, labelRule: labelRule)
            guard test.channelNames == train.channelNames else {
                throw DataError(
                    .malformedHeader, "channels \(test.channelNames) differ from train.csv's \(train.channelNames)",
                    file: testURL.path)
            }
            let unified = LabeledWindows.unifyingClasses(train: train.windows, test: test.windows)
            return DataSplit(
                train: unified.train, test: unified.test, channelNames: train.channelNames,
                sampleRateHz: train.sampleRateHz, hop: hop,
                description:
                    "train.csv: \(summary(unified.train))\(train.note); test.csv: \(summary(unified.test))\(test.note); "
                    + "window \(window) hop \(hop)"
            )
        }
        throw DataError(
            .invalidArgument, "directory holds neither NAME_TRAIN.ts/NAME_TEST.ts nor train.csv/test.csv",
            file: directory.path)
    }

    private struct CSVPart {
        var windows: LabeledWindows
        var channelNames: [String]
        var sampleRateHz: Double?
        var note: String
    }

    private static func readCSV(_ url: URL, window: Int, hop: Int, labelRule: WindowLabelRule) throws -> CSVPart {
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
        // Timestamps carry rounding noise; a rate to a thousandth of a hertz is all anyone means.
        let rate = result.medianStepSeconds > 0 ? ((1 / result.medianStepSeconds) * 1000).rounded() / 1000 : nil
        return CSVPart(windows: result.windows, channelNames: result.channelNames, sampleRateHz: rate, note: note)
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
