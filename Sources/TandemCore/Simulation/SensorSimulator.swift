import Foundation

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

    private var synthesizer: MachineSynthesizer {
        MachineSynthesizer(sampleRateHz: configuration.sampleRateHz, difficulty: configuration.difficulty)
    }

    /// Simulates one continuous recording of `durationSeconds`, starting at time 0.
    ///
    /// Every class appears once the recording is long enough to hold several segments
    /// (about a minute at the default segment lengths).
    public func stream(durationSeconds: Double) -> SensorStream {
        let rate = configuration.sampleRateHz
        let total = max(0, Int((durationSeconds * rate).rounded()))
        let driftSample = configuration.driftAtSeconds.map { max(0, Int(($0 * rate).rounded())) } ?? Int.max
        var rng = SeededRandom(seed: configuration.seed)
        let draws = RecordingDraws(using: &rng)
        let synthesizer = synthesizer

        var segments: [SegmentPlan] = []
        var bag: [MachineCondition] = []
        var start = 0
        while start < total {
            let length = max(1, Int((rng.uniform(configuration.segmentSeconds) * rate).rounded()))
            // Conditions are drawn from shuffled bags holding every class once, so any stretch of
            // a few segments shows every class and the splits stay roughly balanced.
            if bag.isEmpty {
                bag = MachineCondition.allCases
                rng.shuffle(&bag)
            }
            let condition = bag.removeLast()
            let end = min(total, start + length)
            // Within a condition the drive moves to a new speed and load every 1–3 s. The pieces
            // share condition, severity and waveform shape.
            var cuts = [start]
            var next = start
            while true {
                next += max(1, Int((rng.uniform(1...3) * rate).rounded()))
                if next >= end { break }
                cuts.append(next)
            }
            cuts.append(end)
            var first: SegmentPlan?
            for k in 0..<(cuts.count - 1) {
                let piece = cuts[k]..<cuts[k + 1]
                let drifted = piece.lowerBound >= driftSample
                var plan = SegmentPlan(
                    condition: condition, range: piece,
                    regime: drifted ? configuration.driftedRegime : configuration.regime, drifted: drifted,
                    severityScale: synthesizer.severityScale, using: &rng)
                if let first { plan.keepSignature(of: first) }
                first = first ?? plan
                // A piece that straddles the drift time is cut there, without drawing anything new.
                if piece.contains(driftSample) && piece.lowerBound < driftSample {
                    var after = plan
                    plan.range = piece.lowerBound..<driftSample
                    after.range = driftSample..<piece.upperBound
                    after.retarget(regime: configuration.driftedRegime, drifted: true)
                    segments.append(plan)
                    segments.append(after)
                } else {
                    segments.append(plan)
                }
            }
            start = end
        }

        let standardTraits = RecordingTraits(draws, regime: configuration.regime, sampleRateHz: rate)
        let driftedTraits = RecordingTraits(draws, regime: configuration.driftedRegime, sampleRateHz: rate)
        var state = MachineState(
            speedHz: segments.first?.targetSpeedHz ?? 30, load: segments.first?.targetLoad ?? 0.5, using: &rng)
        var noise = rng.fork(salt: 1)
        var scalars = [Float](repeating: 0, count: total * MachineSynthesizer.channelCount)
        var labels = [Int](repeating: 0, count: total)
        scalars.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            for segment in segments {
                synthesizer.render(
                    segment, traits: segment.drifted ? driftedTraits : standardTraits, state: &state,
                    into: base + segment.range.lowerBound * MachineSynthesizer.channelCount, noise: &noise)
            }
        }
        for segment in segments {
            labels.replaceSubrange(
                segment.range, with: repeatElement(segment.condition.rawValue, count: segment.range.count))
        }
        return SensorStream(
            samples: Tensor(shape: [total, MachineSynthesizer.channelCount], scalars: scalars),
            labels: labels,
            startSeconds: 0,
            sampleRateHz: rate,
            classNames: Self.classNames,
            channelNames: Self.channelNames)
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
        var rng = SeededRandom(seed: seed)
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
                    segment, traits: traits, state: &state, into: base + i * window * channels, noise: &local)
            }
        }
        return LabeledWindows(
            windows: Tensor(shape: [count, window, channels], scalars: scalars),
            labels: labels,
            classNames: classNames)
    }
}
