/// A training set and, when the source has one, a test set with the same class list.
public struct DataSplit: Sendable, CustomStringConvertible {
    /// The training windows.
    public var train: LabeledWindows
    /// The test windows, if the source holds a separate test split.
    public var test: LabeledWindows?
    /// Channel names where the source names them (CSV headers, the simulator); else `channel0`, ….
    public var channelNames: [String]
    /// Samples per second, where the source tells it (CSV streams: 1 / the median time step);
    /// `nil` for `.ts` archives, which carry no time base.
    public var sampleRateHz: Double?
    /// Samples between window starts for windows cut from streams; `nil` for `.ts` archives.
    public var hop: Int?
    /// One line saying what was loaded, for logs and `--json` output.
    public var description: String

    /// Creates a split.
    public init(
        train: LabeledWindows, test: LabeledWindows?, channelNames: [String], sampleRateHz: Double? = nil,
        hop: Int? = nil, description: String
    ) {
        self.train = train
        self.test = test
        self.channelNames = channelNames
        self.sampleRateHz = sampleRateHz
        self.hop = hop
        self.description = description
    }
}
