import TandemCore
import TandemProtocol

/// Cuts one stream of samples into overlapping windows, incrementally, as samples arrive.
///
/// Window length and hop come from the model's ``InputSpec``; samples are standardized with the spec's
/// mean and std as they are stored, so an emitted window is ready for the model. Windows start every
/// `hop` samples from the first sample after a (re)start.
///
/// Storage is a ring of `window` samples, each value standardized and kept as IEEE binary16 (the precision
/// the escalation payload carries, so the cloud sees exactly the window the edge classified), plus the
/// timestamps that start windows: `2 × window × channels + 8 × ⌈window / hop⌉` bytes per stream, since an
/// agent may hold a thousand streams. Standardized values beyond ±65504 (binary16's largest) are clipped
/// to it. A completed window is copied out in order (``copyCurrentWindow(into:)``, into a buffer the
/// caller shares between its streams), once per `hop` samples. Appending a sample allocates nothing.
///
/// A timestamp step longer than `gapFactor` × the expected step (from `sampleRateHz` if the spec has
/// one, else the median of the last accepted steps) starts a new window sequence at that sample.
/// A timestamp equal to or earlier than the previous accepted sample is rejected; after
/// ``resynchronizeAfter`` such samples in a row the stream re-synchronizes on the next one instead (a new window
/// sequence, counted in ``resynchronizations``): one sample with a far-future timestamp — a bad clock, a corrupt
/// line, a spoofed datagram — must not make every later sample of the stream out of order until a restart.
public struct StreamWindower: Sendable {
    /// A window ready for classification, valid only inside the closure it is passed to.
    public struct Window {
        /// Timestamp of the first sample.
        public var start: Double
        /// Timestamp of the last sample.
        public var end: Double
        /// `[window × channels]` standardized values, sample-major.
        public var values: UnsafeBufferPointer<Float>
    }

    /// What happened to an appended sample.
    public enum Outcome: Sendable, Equatable {
        /// Stored; no window completed.
        case accepted
        /// Stored, and it completed a window (read it with ``withCurrentWindow(_:)``).
        case windowReady
        /// Not stored.
        case rejected(InputRejection)
    }

    /// Samples per window.
    public let window: Int
    /// Samples between window starts.
    public let hop: Int
    /// Channels per sample.
    public let channels: Int
    /// A step longer than this many expected steps is a gap.
    public let gapFactor: Double
    /// The nominal step in seconds, from the spec's sample rate, if it has one.
    public let nominalStep: Double?

    /// The ring: binary16 bit patterns of standardized values, sample-major.
    private var buffer: [UInt16]
    /// Timestamps of the samples that start a window: since the last reset, windows start every `hop`
    /// samples, and window `k` is served before the start of window `k + ⌈window / hop⌉` is recorded, so a
    /// ring of `⌈window / hop⌉` of them is enough (a thousand streams need not keep a timestamp per sample).
    private var windowStarts: [Double]
    /// Samples appended since the last reset (the ring holds `min(sinceReset, window)` of them).
    private var sinceReset = 0
    private var mean: [Float]
    private var scale: [Float]
    private var position = 0
    private var untilNextWindow: Int
    private var lastTimestamp = -Double.infinity
    private var steps: [Double]
    private var stepCount = 0
    /// The median of recent steps as last computed, and the step count it was computed at: recomputed
    /// every ``medianRefresh`` steps and before any step is called a gap against it.
    private var cachedMedian: Double?
    private var cachedMedianAt = -1

    /// Samples accepted since creation.
    public private(set) var acceptedSamples = 0
    /// Windows completed since creation.
    public private(set) var emittedWindows = 0
    /// Times a gap restarted the window sequence.
    public private(set) var gapResets = 0
    /// Times the stream re-synchronized after ``resynchronizeAfter`` out-of-order samples in a row.
    public private(set) var resynchronizations = 0
    /// Out-of-order samples in a row after which the stream takes the next one as its new timeline: two seconds
    /// of a 16 Hz stream, well beyond the odd sample a network reorders.
    public static let resynchronizeAfter = 32
    /// Out-of-order samples since the last accepted one.
    private var outOfOrderRun = 0

    /// How many recent steps the observed median is taken over.
    public static let stepHistory = 15
    /// Steps between recomputations of the cached median.
    static let medianRefresh = 8

    /// Creates a windower for the model input `spec`.
    ///
    /// - Throws: `ModelError.badInput` if the spec is not valid.
    public init(spec: InputSpec, gapFactor: Double = 1.5) throws {
        try spec.validate()
        window = spec.window
        hop = spec.hop
        channels = spec.channels
        self.gapFactor = gapFactor
        if let rate = spec.sampleRateHz, rate > 0, rate.isFinite { nominalStep = 1 / rate } else { nominalStep = nil }
        buffer = [UInt16](repeating: 0, count: spec.window * spec.channels)
        windowStarts = [Double](repeating: 0, count: (spec.window + spec.hop - 1) / spec.hop)
        mean = spec.mean.isEmpty ? [Float](repeating: 0, count: spec.channels) : spec.mean
        scale = spec.std.isEmpty ? [Float](repeating: 1, count: spec.channels) : spec.std.map { 1 / $0 }
        untilNextWindow = spec.window
        steps = [Double](repeating: 0, count: Self.stepHistory)
    }

    /// Switches to another standardization (a new model with the same input shape), converting the
    /// samples held so the next window is standardized throughout with the new statistics.
    ///
    /// Empty `mean`/`std` mean 0 and 1; arrays of another length than ``channels`` are ignored.
    public mutating func restandardize(mean newMean: [Float], std newStd: [Float]) {
        let c = channels
        let m = newMean.isEmpty ? [Float](repeating: 0, count: c) : newMean
        let s = newStd.isEmpty ? [Float](repeating: 1, count: c) : newStd.map { 1 / $0 }
        guard m.count == c, s.count == c else { return }
        for i in 0..<buffer.count {
            let k = i % c
            let raw = Float16Bits.decode(buffer[i]) / scale[k] + mean[k]
            buffer[i] = Self.half((raw - m[k]) * s[k])
        }
        mean = m
        scale = s
    }

    /// Forgets the samples held (the next sample starts a new window sequence); the step history stays.
    public mutating func reset() {
        sinceReset = 0
        untilNextWindow = window
    }

    /// Appends one sample of raw (not yet standardized) values.
    ///
    /// - Parameters:
    ///   - timestamp: Seconds, any origin; must increase from sample to sample.
    ///   - values: Exactly ``channels`` values.
    public mutating func append(timestamp: Double, values: UnsafeBufferPointer<Float>) -> Outcome {
        guard values.count == channels else { return .rejected(.wrongChannelCount) }
        guard timestamp.isFinite else { return .rejected(.nonFinite) }
        if timestamp == lastTimestamp { return .rejected(.duplicateTimestamp) }
        if timestamp < lastTimestamp {
            guard outOfOrderRun >= Self.resynchronizeAfter else {
                outOfOrderRun += 1
                return .rejected(.outOfOrder)
            }
            resynchronizations += 1
            reset()
            lastTimestamp = -Double.infinity
        }
        outOfOrderRun = 0
        if sinceReset > 0 {
            let step = timestamp - lastTimestamp
            if isGap(step) {
                gapResets += 1
                reset()
            }
            // Gaps enter the history too: the median shrugs off the odd one, and a stream whose every
            // step is a "gap" against the nominal rate still shows its real rate.
            steps[stepCount % Self.stepHistory] = step
            stepCount += 1
        }
        lastTimestamp = timestamp
        let w = window, c = channels
        buffer.withUnsafeMutableBufferPointer { b in
            mean.withUnsafeBufferPointer { m in
                scale.withUnsafeBufferPointer { s in
                    let first = position * c
                    for k in 0..<c { b[first + k] = Self.half((values[k] - m[k]) * s[k]) }
                }
            }
        }
        if sinceReset % hop == 0 { windowStarts[(sinceReset / hop) % windowStarts.count] = timestamp }
        sinceReset += 1
        position = position + 1 == w ? 0 : position + 1
        acceptedSamples += 1
        untilNextWindow -= 1
        if untilNextWindow == 0 {
            untilNextWindow = hop
            emittedWindows += 1
            return .windowReady
        }
        return .accepted
    }

    /// Appends one sample from an array (convenience for tests and slow paths).
    public mutating func append(timestamp: Double, values: [Float]) -> Outcome {
        values.withUnsafeBufferPointer { append(timestamp: timestamp, values: $0) }
    }

    /// Calls `body` with the window the last sample completed, oldest sample first: call it right after
    /// ``append(timestamp:values:)`` returned ``Outcome/windowReady``. A convenience:
    /// the window is decoded into a temporary buffer, so a hot path uses ``copyCurrentWindow(into:)``
    /// with a buffer of its own.
    ///
    /// - Returns: `body`'s result, or nil unless the last sample completed a window (only the timestamps
    ///   that start windows are kept).
    public func withCurrentWindow<R>(_ body: (Window) throws -> R) rethrows -> R? {
        guard justCompletedWindow else { return nil }
        let (start, end) = span
        return try withUnsafeTemporaryAllocation(of: Float.self, capacity: window * channels) { scratch in
            copySamples(into: scratch)
            return try body(Window(start: start, end: end, values: UnsafeBufferPointer(scratch)))
        }
    }

    /// Copies the window the last sample completed, oldest sample first, into `destination`
    /// (`window × channels` floats).
    ///
    /// - Returns: The window's start and end timestamps, or nil unless the last sample completed a window
    ///   or if `destination` is too small.
    public func copyCurrentWindow(into destination: UnsafeMutableBufferPointer<Float>) -> (start: Double, end: Double)?
    {
        guard justCompletedWindow, destination.count >= window * channels else { return nil }
        copySamples(into: destination)
        return span
    }

    /// Whether the last sample appended completed a window (the countdown to the next one just restarted).
    private var justCompletedWindow: Bool { sinceReset >= window && untilNextWindow == hop }

    /// First and last timestamp of the window that the last sample completed: window `k` since the reset
    /// spans samples `k·hop ..< k·hop + window`.
    private var span: (start: Double, end: Double) {
        let k = (sinceReset - window) / hop
        return (windowStarts[k % windowStarts.count], lastTimestamp)
    }

    /// The ring from `position` to its end, then from its start to `position`, decoded to `Float`.
    private func copySamples(into destination: UnsafeMutableBufferPointer<Float>) {
        guard let target = destination.baseAddress else { return }
        buffer.withUnsafeBufferPointer { b in
            guard let source = b.baseAddress else { return }
            let older = (window - position) * channels, newer = position * channels
            for i in 0..<older { target[i] = Float16Bits.decode(source[newer + i]) }
            for i in 0..<newer { target[older + i] = Float16Bits.decode(source[i]) }
        }
    }

    /// `value` as binary16, clipped to its finite range (±65504).
    @inline(__always)
    private static func half(_ value: Float) -> UInt16 {
        Float16Bits.encode(Swift.min(Swift.max(value, -65504), 65504))
    }

    /// The step a gap is measured against: nominal if known, else the median of recent steps
    /// (none until three steps were seen).
    public var expectedStep: Double? {
        nominalStep ?? medianOfRecentSteps()
    }

    /// The median of the last ``stepHistory`` steps between accepted samples (gaps included), after at
    /// least three; independent of the nominal rate, so callers can compare the two.
    public func observedMedianStep() -> Double? {
        medianOfRecentSteps()
    }

    /// Whether `step` is a gap. Against the observed median, the cached value answers the common case
    /// (a step well inside it); a step it would call a gap is checked against a fresh median first.
    private mutating func isGap(_ step: Double) -> Bool {
        if let nominalStep { return step > gapFactor * nominalStep }
        if cachedMedian == nil || stepCount - cachedMedianAt >= Self.medianRefresh {
            refreshMedian()
        }
        guard let median = cachedMedian, step > gapFactor * median else { return false }
        if cachedMedianAt != stepCount { refreshMedian() }
        guard let fresh = cachedMedian else { return false }
        return step > gapFactor * fresh
    }

    private mutating func refreshMedian() {
        cachedMedian = medianOfRecentSteps()
        cachedMedianAt = stepCount
    }

    private func medianOfRecentSteps() -> Double? {
        let n = min(stepCount, Self.stepHistory)
        guard n >= 3 else { return nil }
        // Insertion sort of at most `stepHistory` values in a stack buffer: no allocation.
        return steps.withUnsafeBufferPointer { steps in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: Self.stepHistory) { scratch in
                for i in 0..<n { scratch[i] = steps[i] }
                for i in 1..<n {
                    let x = scratch[i]
                    var j = i - 1
                    while j >= 0 && scratch[j] > x {
                        scratch[j + 1] = scratch[j]
                        j -= 1
                    }
                    scratch[j + 1] = x
                }
                return n % 2 == 1 ? scratch[n / 2] : (scratch[n / 2 - 1] + scratch[n / 2]) / 2
            }
        }
    }
}
