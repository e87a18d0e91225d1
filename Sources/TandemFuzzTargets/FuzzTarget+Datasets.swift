import TandemCore

extension FuzzTarget {
    /// A UCR/UEA `.ts` archive through the reader, under each length policy, then the per-channel standardization a
    /// training run fits on it, and the archive written back.
    ///
    /// Input: a byte choosing the length policy, then the file. Checks: the windows are finite (the reader refuses
    /// missing values), labels index the class names, the standardization is finite, and an archive written from
    /// the windows reads back to the same shape and labels.
    static let tsArchive = FuzzTarget(
        name: "ts",
        summary: "TSArchive.parse (every length policy) → Standardization.fit/apply → TSArchive.text read back"
    ) { bytes in
        var input = FuzzInput(bytes)
        let policies: [TSArchive.LengthPolicy] = [.requireEqual, .padToLongest, .padTo(16), .resample(to: 12)]
        let policy = policies[input.choose(policies.count)]
        let windows: LabeledWindows
        do {
            windows = try TSArchive.parse(bytes: Array(input.rest), fileName: "fuzz.ts", lengthPolicy: policy)
        } catch {
            return .refused
        }
        DatasetFixture.check(windows, source: ".ts")
        if let text = try? TSArchive.text(of: windows, problemName: "fuzz") {
            do {
                let reread = try TSArchive.parse(text, fileName: "written.ts")
                FuzzCheck.require(
                    reread.windows.shape == windows.windows.shape && reread.labels == windows.labels,
                    "a written archive reads back as \(reread.windows.shape), not \(windows.windows.shape)")
            } catch {
                FuzzCheck.require(false, "an archive written from read windows does not read back: \(error)")
            }
        }
        return .accepted
    }

    /// A long-format CSV stream through the reader and windowing (strict or counting, given class names or
    /// found ones, both label rules), then the standardization a training run fits.
    ///
    /// Input: a byte of options, a byte each for window and hop, then the file. Checks: the windows are finite,
    /// labels index the class names, the counts add up, and the standardization is finite.
    static let csvStream = FuzzTarget(
        name: "csv",
        summary: "CSVStream.parse (window, hop, label rule, strict) → Standardization.fit/apply"
    ) { bytes in
        var input = FuzzInput(bytes)
        let options = input.byte()
        let window = 1 + input.choose(16)
        let hop = 1 + input.choose(16)
        let result: CSVStreamResult
        do {
            result = try CSVStream.parse(
                Array(input.rest), fileName: "fuzz.csv", window: window, hop: hop,
                labelRule: options & 1 == 0 ? .lastSample : .majority,
                classNames: options & 2 == 0 ? nil : ["normal", "fault", "7"], strict: options & 4 != 0)
        } catch {
            return .refused
        }
        FuzzCheck.require(result.rejectedCount >= 0 && result.sampleCount >= 0, "negative counts in \(result)")
        guard result.windows.count > 0 else { return .refused }
        FuzzCheck.require(result.windows.length == window, "windows of \(result.windows.length) samples, not \(window)")
        DatasetFixture.check(result.windows, source: "CSV")
        return .accepted
    }
}

enum DatasetFixture {
    /// What training relies on of any data set read: finite values, labels within the classes, and a
    /// standardization that maps the windows to finite values.
    static func check(_ set: LabeledWindows, source: String) {
        FuzzCheck.require(set.windows.scalars.allSatisfy(\.isFinite), "a \(source) data set holds non-finite values")
        FuzzCheck.require(
            set.labels.allSatisfy { set.classNames.indices.contains($0) },
            "a \(source) label is outside its \(set.classNames.count) classes")
        guard set.count > 0 else { return }
        let standardization = Standardization.fit(set.windows)
        FuzzCheck.require(
            standardization.mean.allSatisfy(\.isFinite) && standardization.std.allSatisfy { $0.isFinite && $0 > 0 },
            "a \(source) data set standardizes to mean \(standardization.mean), std \(standardization.std)")
        let standardized = standardization.applied(to: set.windows)
        FuzzCheck.require(
            standardized.scalars.allSatisfy(\.isFinite), "a \(source) data set standardizes to non-finite values")
    }
}
