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
