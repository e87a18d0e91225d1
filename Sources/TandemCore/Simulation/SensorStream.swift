/// A continuous multichannel recording with one class label per sample.
public struct SensorStream: Sendable, Equatable {
    /// Samples as `[count, channels]`, one row per time step.
    public var samples: Tensor
    /// The class index of every sample.
    public var labels: [Int]
    /// Time of the first sample, in seconds.
    public var startSeconds: Double
    /// Samples per second.
    public var sampleRateHz: Double
    /// Class names; a label indexes this array.
    public var classNames: [String]
    /// Channel names, in column order.
    public var channelNames: [String]

    /// Creates a stream.
    ///
    /// - Precondition: `samples` is `[count, channels]` with one label per row and one name per channel.
    public init(
        samples: Tensor, labels: [Int], startSeconds: Double, sampleRateHz: Double,
        classNames: [String], channelNames: [String]
    ) {
        precondition(samples.rank == 2 && samples.shape[0] == labels.count, "one label per sample row")
        precondition(samples.shape[1] == channelNames.count, "one name per channel")
        self.samples = samples
        self.labels = labels
        self.startSeconds = startSeconds
        self.sampleRateHz = sampleRateHz
        self.classNames = classNames
        self.channelNames = channelNames
    }

    /// The number of samples (time steps).
    public var count: Int { labels.count }

    /// The time of sample `index`, in seconds.
    public func timestamp(at index: Int) -> Double {
        // Dividing the integer sample number keeps timestamps exact in their shortest decimal form.
        startSeconds + Double(index) / sampleRateHz
    }

    /// The time of every sample, in seconds.
    public var timestamps: [Double] { (0..<count).map(timestamp(at:)) }

    /// Samples `range`, keeping their timestamps.
    public func slice(_ range: Range<Int>) -> SensorStream {
        SensorStream(
            samples: samples.slice(range), labels: Array(labels[range]),
            startSeconds: timestamp(at: range.lowerBound), sampleRateHz: sampleRateHz,
            classNames: classNames, channelNames: channelNames)
    }

    /// Cuts the stream into windows of `window` samples every `hop` samples.
    ///
    /// - Parameter labelRule: Which label a window gets; by default that of its last sample.
    public func windows(window: Int, hop: Int, labelRule: WindowLabelRule = .lastSample) -> LabeledWindows {
        let cut = samples.scalars.withUnsafeBufferPointer { buffer in
            WindowCutter.cut(
                samples: buffer, channels: channelNames.count, runs: [0..<count], labels: labels,
                classCount: classNames.count, window: window, hop: hop, labelRule: labelRule)
        }
        return LabeledWindows(windows: cut.windows, labels: cut.labels, classNames: classNames)
    }
}
