/// What ``CSVStream`` read: the windows, the channel names and the bad lines it skipped.
public struct CSVStreamResult: Sendable, Equatable {
    /// The windows with their labels; an unlabeled stream has the single class `unlabeled`.
    public var windows: LabeledWindows
    /// Channel names from the header, in channel order.
    public var channelNames: [String]
    /// Whether the file had a `label` column.
    public var isLabeled: Bool
    /// Data lines seen (blank and `#` comment lines excluded).
    public var lineCount: Int
    /// Lines accepted as samples.
    public var sampleCount: Int
    /// Stretches of samples without a timestamp gap; windows never span two of them.
    public var runCount: Int
    /// The median time step of the accepted samples, in seconds.
    public var medianStepSeconds: Double
    /// Rejected lines per reason.
    public var rejected: [CSVStream.Reason: Int]
    /// The first rejected lines (at most ``CSVStream/keptErrorMessages``), with file and line.
    public var errors: [DataError]

    /// The number of rejected lines.
    public var rejectedCount: Int { rejected.values.reduce(0, +) }
}
