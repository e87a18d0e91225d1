#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A seeded simulator of a rotating machine's 3-axis vibration and motor current.
///
/// Four channels (`vib_x`, `vib_y` radial and `vib_z` axial acceleration in g, `current` in A)
/// sampled at `sampleRateHz`. The machine's condition changes in segments of a few seconds, each
/// a random class of ``MachineCondition``, while shaft speed and load wander between set-points.
/// Every recording has its own sensor gains and offsets, residual imbalance, bearing geometry and
/// resonance. `difficulty` scales fault severity down and noise up. With `driftAtSeconds` the
/// machine moves into ``OperatingRegime/drifted`` at that time.
///
/// Output depends only on the configuration: the same seed gives bit-identical data.
public struct SensorSimulator: Sendable {
    /// What to simulate.
    public struct Configuration: Sendable, Equatable, Codable {
        /// Seed of every random choice.
        public var seed: UInt64
        /// Samples per second per channel.
        public var sampleRateHz: Double
        /// 0 (severe faults, little noise) … 1 (mild faults, heavy noise); 0.5 by default.
        public var difficulty: Double
        /// How long the machine stays in one condition, in seconds.
        public var segmentSeconds: ClosedRange<Double>
        /// Time at which the machine moves to ``driftedRegime``; `nil` for no drift.
        public var driftAtSeconds: Double?
        /// The operating regime before drift.
        public var regime: OperatingRegime
        /// The operating regime after `driftAtSeconds`.
        public var driftedRegime: OperatingRegime

        /// Creates a configuration; every argument has a sensible default.
        public init(
            seed: UInt64 = 1,
            sampleRateHz: Double = 1000,
            difficulty: Double = 0.5,
            segmentSeconds: ClosedRange<Double> = 4...10,
            driftAtSeconds: Double? = nil,
            regime: OperatingRegime = .standard,
            driftedRegime: OperatingRegime = .drifted
        ) {
            self.seed = seed
            self.sampleRateHz = sampleRateHz
            self.difficulty = difficulty
            self.segmentSeconds = segmentSeconds
            self.driftAtSeconds = driftAtSeconds
            self.regime = regime
            self.driftedRegime = driftedRegime
        }
    }

    /// Channel names, in channel order.
    public static let channelNames = ["vib_x", "vib_y", "vib_z", "current"]
    /// Class names, in label order (see ``MachineCondition``).
    public static let classNames = MachineCondition.classNames

    /// The configuration this simulator runs.
    public let configuration: Configuration

    /// Creates a simulator.
    ///
    /// - Precondition: a positive sample rate, difficulty in `0...1`, positive segment lengths.
    public init(_ configuration: Configuration = Configuration()) {
        precondition(configuration.sampleRateHz > 0, "sample rate must be positive")
        precondition((0...1).contains(configuration.difficulty), "difficulty must be in 0...1")
        precondition(configuration.segmentSeconds.lowerBound > 0, "segments must last a positive time")
        self.configuration = configuration
    }

    /// Simulates one continuous recording of `durationSeconds`, starting at time 0.
    ///
    /// Every class appears once the recording holds a few segments (under a minute at the
    /// default segment lengths). A shorter recording is a prefix of a longer one with the same
    /// configuration, and equals what a ``Generator`` delivers in any chunking.
    public func stream(durationSeconds: Double) -> SensorStream {
        var generator = Generator(configuration)
        return generator.next(Int((max(0, durationSeconds) * configuration.sampleRateHz).rounded()))
    }

    /// A class-balanced set of independent windows, each from its own simulated recording.
    ///
    /// Every window draws its own machine (gains, offsets, bearing, resonance), operating point
    /// and fault severity, so the set covers the simulator's whole variety. Window `i` has class
    /// `i % 5` before a seeded shuffle; `count` need not be a multiple of five.
    ///
    /// - Parameters:
    ///   - count: The number of windows.
    ///   - window: Samples per window.
    ///   - seed: Seed of every random choice.
    ///   - difficulty: As in ``Configuration/difficulty``.
    ///   - sampleRateHz: Samples per second.
    ///   - regime: The operating regime, ``OperatingRegime/standard`` unless testing drift.
    public static func windows(
        count: Int,
        window: Int = 128,
        seed: UInt64 = 1,
        difficulty: Double = 0.5,
        sampleRateHz: Double = 1000,
        regime: OperatingRegime = .standard
    ) -> LabeledWindows {
        precondition(count >= 0 && window > 0, "need a non-negative count and a positive window")
        precondition((0...1).contains(difficulty), "difficulty must be in 0...1")
        let synthesizer = MachineSynthesizer(sampleRateHz: sampleRateHz, difficulty: difficulty)
        let classCount = MachineCondition.allCases.count
        var rng = SeededGenerator(seed: seed)
        var labels = (0..<count).map { $0 % classCount }
        rng.shuffle(&labels)
        let channels = MachineSynthesizer.channelCount
        var scalars = [Float](repeating: 0, count: count * window * channels)
        scalars.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            for (i, label) in labels.enumerated() {
                var local = rng.fork(salt: UInt64(i))
                let draws = RecordingDraws(using: &local)
                let traits = RecordingTraits(draws, regime: regime, sampleRateHz: sampleRateHz)
                let segment = SegmentPlan(
                    condition: MachineCondition(rawValue: label)!, range: 0..<window, regime: regime, drifted: false,
                    severityScale: synthesizer.severityScale, using: &local)
                // Start near the set-point, so some windows still show the drive settling.
                var state = MachineState(
                    speedHz: segment.targetSpeedHz * local.uniform(0.95...1.05), load: segment.targetLoad,
                    using: &local)
                synthesizer.render(
                    segment, count: window, traits: traits, state: &state, into: base + i * window * channels,
                    noise: &local)
            }
        }
        return LabeledWindows(
            windows: Tensor(shape: [count, window, channels], scalars: scalars),
            labels: labels,
            classNames: classNames)
    }
}
