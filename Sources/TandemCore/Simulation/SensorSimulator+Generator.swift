extension SensorSimulator {
    /// Produces one endless recording chunk by chunk, for live sources and long runs.
    ///
    /// Segments are planned as they are needed, so memory stays flat however long it runs.
    /// The samples do not depend on how they are chunked: `next(100)` then `next(50)` gives the
    /// same 150 samples as `next(150)`, and as ``SensorSimulator/stream(durationSeconds:)``.
    public struct Generator: Sendable {
        /// The configuration simulated.
        public let configuration: Configuration
        /// The index of the next sample; its time is `sampleIndex / sampleRateHz` seconds.
        public private(set) var sampleIndex = 0

        private let synthesizer: MachineSynthesizer
        private let standardTraits: RecordingTraits
        private let driftedTraits: RecordingTraits
        private let driftSample: Int
        private var planner: SeededGenerator
        private var noise: SeededGenerator
        private var state: MachineState
        private var bag: [MachineCondition] = []
        private var pending: [SegmentPlan] = []
        private var plannedUntil = 0

        /// Starts a recording at time 0.
        public init(_ configuration: Configuration) {
            precondition(configuration.sampleRateHz > 0, "sample rate must be positive")
            precondition((0...1).contains(configuration.difficulty), "difficulty must be in 0...1")
            precondition(configuration.segmentSeconds.lowerBound > 0, "segments must last a positive time")
            self.configuration = configuration
            let rate = configuration.sampleRateHz
            synthesizer = MachineSynthesizer(sampleRateHz: rate, difficulty: configuration.difficulty)
            driftSample = configuration.driftAtSeconds.map { max(0, Int(($0 * rate).rounded())) } ?? Int.max
            var rng = SeededGenerator(seed: configuration.seed)
            let draws = RecordingDraws(using: &rng)
            standardTraits = RecordingTraits(draws, regime: configuration.regime, sampleRateHz: rate)
            driftedTraits = RecordingTraits(draws, regime: configuration.driftedRegime, sampleRateHz: rate)
            noise = rng.fork(salt: 1)
            var phases = rng.fork(salt: 2)
            planner = rng
            state = MachineState(speedHz: 30, load: 0.5, using: &phases)
            planSegment()
            // The drive starts at the first set-point rather than spinning up.
            state.speedHz = pending[0].targetSpeedHz
            state.load = pending[0].targetLoad
        }

        /// The next `count` samples of the recording.
        public mutating func next(_ count: Int) -> SensorStream {
            precondition(count >= 0, "cannot produce a negative number of samples")
            let channels = MachineSynthesizer.channelCount
            let start = sampleIndex
            var scalars = [Float](repeating: 0, count: count * channels)
            var labels = [Int](repeating: 0, count: count)
            var produced = 0
            scalars.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                while produced < count {
                    while pending.isEmpty || pending[0].range.upperBound <= sampleIndex {
                        if !pending.isEmpty { pending.removeFirst() }
                        if pending.isEmpty { planSegment() }
                    }
                    let piece = pending[0]
                    let n = min(piece.range.upperBound - sampleIndex, count - produced)
                    synthesizer.render(
                        piece, count: n, traits: piece.drifted ? driftedTraits : standardTraits, state: &state,
                        into: base + produced * channels, noise: &noise)
                    for i in produced..<(produced + n) { labels[i] = piece.condition.rawValue }
                    produced += n
                    sampleIndex += n
                }
            }
            return SensorStream(
                samples: Tensor(shape: [count, channels], scalars: scalars),
                labels: labels,
                startSeconds: Double(start) / configuration.sampleRateHz,
                sampleRateHz: configuration.sampleRateHz,
                classNames: SensorSimulator.classNames,
                channelNames: SensorSimulator.channelNames)
        }

        /// Plans the next segment: one condition for 4–10 s (by default), in pieces of 1–3 s with
        /// their own speed and load set-points, cut at the drift time if it falls inside.
        private mutating func planSegment() {
            let rate = configuration.sampleRateHz
            let start = plannedUntil
            let end = start + max(1, Int((planner.uniform(configuration.segmentSeconds) * rate).rounded()))
            // Conditions come from shuffled bags holding every class once, so any stretch of a
            // few segments shows every class and the splits stay roughly balanced.
            if bag.isEmpty {
                bag = MachineCondition.allCases
                planner.shuffle(&bag)
            }
            let condition = bag.removeLast()
            var cuts = [start]
            var next = start
            while true {
                next += max(1, Int((planner.uniform(1...3) * rate).rounded()))
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
                    severityScale: synthesizer.severityScale, using: &planner)
                if let first { plan.keepSignature(of: first) }
                first = first ?? plan
                // A piece that straddles the drift time is cut there, without drawing anything new,
                // so a drifting recording equals a non-drifting one up to the drift time.
                if piece.lowerBound < driftSample && piece.upperBound > driftSample {
                    var after = plan
                    plan.range = piece.lowerBound..<driftSample
                    after.range = driftSample..<piece.upperBound
                    after.retarget(regime: configuration.driftedRegime, drifted: true)
                    pending.append(plan)
                    pending.append(after)
                } else {
                    pending.append(plan)
                }
            }
            plannedUntil = end
        }
    }
}
