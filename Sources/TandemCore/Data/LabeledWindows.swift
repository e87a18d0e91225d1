/// A set of fixed-length multichannel windows with integer class labels.
///
/// This is what every reader (`.ts` archives, CSV streams, the simulator) produces and what
/// training and evaluation consume.
public struct LabeledWindows: Sendable, Equatable {
    /// Windows as `[count, length, channels]`, channels-last.
    public var windows: Tensor
    /// One class index per window, each in `0..<classNames.count`.
    public var labels: [Int]
    /// Class names; a label is an index into this array.
    public var classNames: [String]

    /// Creates a labeled set.
    ///
    /// - Precondition: `windows` has rank 3, one label per window, and every label names a class.
    public init(windows: Tensor, labels: [Int], classNames: [String]) {
        precondition(windows.rank == 3, "windows must be [count, length, channels], got \(windows.shape)")
        precondition(windows.shape[0] == labels.count, "\(windows.shape[0]) windows but \(labels.count) labels")
        precondition(
            labels.allSatisfy { $0 >= 0 && $0 < classNames.count }, "label outside \(classNames.count) classes")
        self.windows = windows
        self.labels = labels
        self.classNames = classNames
    }

    /// The number of windows.
    public var count: Int { labels.count }
    /// Samples per window.
    public var length: Int { windows.shape[1] }
    /// Channels per sample.
    public var channels: Int { windows.shape[2] }

    /// The windows at `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabeledWindows {
        LabeledWindows(windows: windows.gathering(indices), labels: indices.map { labels[$0] }, classNames: classNames)
    }
}
