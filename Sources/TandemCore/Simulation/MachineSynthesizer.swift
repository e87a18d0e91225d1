import Foundation

/// Random draws made once per recording: how one machine and its sensors differ from another.
///
/// They are kept raw (fractions, jitters) so that the same machine can be mapped into two
/// operating regimes: a drifting stream keeps its machine and changes only the regime.
struct RecordingDraws {
    var gainJitter: SIMD4<Double>
    var offset: SIMD4<Double>
    var residualImbalanceG: Double
    var bearingDefectRatio: Double
    var resonanceFraction: Double
    var radialAnisotropy: Double

    init(using rng: inout SeededRandom) {
        gainJitter = SIMD4(
            rng.uniform(0.92...1.08), rng.uniform(0.92...1.08), rng.uniform(0.92...1.08), rng.uniform(0.95...1.05))
        offset = SIMD4(
            rng.uniform(-0.03...0.03), rng.uniform(-0.03...0.03), rng.uniform(-0.03...0.03), rng.uniform(-0.05...0.05))
        residualImbalanceG = rng.uniform(0.05...0.15)
        // Ball-pass frequency of the inner race over shaft frequency, typical of deep-groove bearings.
        bearingDefectRatio = rng.uniform(4.9...5.5)
        resonanceFraction = rng.unit()
        radialAnisotropy = rng.uniform(0.7...1.0)
    }
}

/// The constants the synthesizer needs for one recording in one regime.
struct RecordingTraits {
    var gain: SIMD4<Double>
    var offset: SIMD4<Double>
    var residualImbalanceG: Double
    var bearingDefectRatio: Double
    var resonanceHz: Double
    var radialAnisotropy: Double
    var noiseScale: Double

    init(_ draws: RecordingDraws, regime: OperatingRegime, sampleRateHz: Double) {
        let mounting = SIMD4(
            regime.mountingGain[0], regime.mountingGain[1], regime.mountingGain[2], regime.mountingGain[3])
        gain = draws.gainJitter * mounting
        offset = draws.offset
        residualImbalanceG = draws.residualImbalanceG
        bearingDefectRatio = draws.bearingDefectRatio
        let span = regime.resonanceHz.upperBound - regime.resonanceHz.lowerBound
        // A sensor sampled too slowly cannot see the resonance; keep it below Nyquist rather than alias it.
        resonanceHz = min(regime.resonanceHz.lowerBound + span * draws.resonanceFraction, 0.4 * sampleRateHz)
        radialAnisotropy = draws.radialAnisotropy
        noiseScale = regime.noiseScale
    }
}

/// One stretch of time in which the machine keeps its condition and heads for one operating point.
struct SegmentPlan {
    var condition: MachineCondition
    var range: Range<Int>
    var drifted: Bool
    var severity: Double
    var targetSpeedHz: Double
    var targetLoad: Double
    /// Where the operating point lies in its regime's speed and load ranges, in `0...1`.
    var speedFraction: Double
    var loadFraction: Double
    /// Phases of the 1×…6×, ½× and 1½× components on the x and y axes and on the axial axis.
    var phaseX: SIMD8<Double>
    var phaseY: SIMD8<Double>
    var phaseZ: SIMD8<Double>
    /// Relative amplitudes of the same components for looseness.
    var harmonicWeights: SIMD8<Double>
    /// Where a loose machine's motion is stopped, as a fraction of the summed harmonic amplitude.
    var clipFraction: Double

    init(
        condition: MachineCondition, range: Range<Int>, regime: OperatingRegime, drifted: Bool,
        severityScale: Double, using rng: inout SeededRandom
    ) {
        self.condition = condition
        self.range = range
        self.drifted = drifted
        severity = severityScale * rng.uniform(0.4...1.0)
        speedFraction = rng.unit()
        loadFraction = rng.unit()
        targetSpeedHz = 0
        targetLoad = 0
        var x = SIMD8<Double>(), y = SIMD8<Double>(), z = SIMD8<Double>(), w = SIMD8<Double>()
        for k in 0..<8 {
            x[k] = rng.uniform(0...(2 * Double.pi))
            // The y axis lags x by roughly a quarter turn, as for a rotating force on an anisotropic support.
            y[k] = x[k] - Double.pi / 2 + rng.uniform(-0.3...0.3)
            z[k] = rng.uniform(0...(2 * Double.pi))
        }
        for k in 0..<6 { w[k] = rng.uniform(0.6...1.4) / Double(k + 1).squareRoot() }
        w[6] = rng.uniform(0.3...0.6)  // ½×
        w[7] = rng.uniform(0.2...0.4)  // 1½×
        phaseX = x
        phaseY = y
        phaseZ = z
        harmonicWeights = w
        clipFraction = rng.uniform(0.35...0.6)
        retarget(regime: regime, drifted: drifted)
    }

    /// Maps the operating point into `regime`: the same random draw lands at the same relative
    /// place in either regime, so a drifting stream consumes exactly the random numbers a
    /// non-drifting one does and the two agree up to the drift time.
    mutating func retarget(regime: OperatingRegime, drifted: Bool) {
        self.drifted = drifted
        targetSpeedHz =
            regime.shaftSpeedHz.lowerBound + speedFraction
            * (regime.shaftSpeedHz.upperBound - regime.shaftSpeedHz.lowerBound)
        targetLoad = regime.load.lowerBound + loadFraction * (regime.load.upperBound - regime.load.lowerBound)
    }

    /// Takes over another piece's severity and waveform shape, keeping this piece's operating point,
    /// so a condition looks the same while speed and load move.
    mutating func keepSignature(of other: SegmentPlan) {
        severity = other.severity
        phaseX = other.phaseX
        phaseY = other.phaseY
        phaseZ = other.phaseZ
        harmonicWeights = other.harmonicWeights
        clipFraction = other.clipFraction
    }
}

/// The machine's dynamic state, carried from one segment to the next so signals stay continuous.
struct MachineState {
    var speedHz: Double
    var load: Double
    var shaftPhase: Double
    var halfPhase: Double
    var electricalPhase: Double
    var wobblePhase: Double
    var bearingCycle: Double
    var impactAmplitude: Double
    var ringPhase: Double
    var ringEnvelope: Double

    init(speedHz: Double, load: Double, using rng: inout SeededRandom) {
        self.speedHz = speedHz
        self.load = load
        shaftPhase = rng.uniform(0...(2 * Double.pi))
        halfPhase = rng.uniform(0...(2 * Double.pi))
        electricalPhase = rng.uniform(0...(2 * Double.pi))
        wobblePhase = rng.uniform(0...(2 * Double.pi))
        bearingCycle = rng.unit()
        impactAmplitude = 0
        ringPhase = 0
        ringEnvelope = 0
    }
}

/// Renders samples of the four channels (x, y, z vibration in g, motor current in A).
///
/// All amplitudes are in g (vibration) and amperes (current). The model is deliberately simple
/// physics: sinusoids locked to the integrated shaft phase, impacts that ring a damped resonance,
/// one-sided truncation for looseness, and a motor current whose frequency follows the shaft
/// with load-dependent slip and whose amplitude follows load, with fault sidebands.
struct MachineSynthesizer {
    static let channelCount = 4
    let sampleRateHz: Double
    let difficulty: Double

    /// Fault severities shrink as difficulty grows, so mild faults sit close to a healthy machine.
    var severityScale: Double { 1.1 - 0.8 * difficulty }
    /// Vibration noise in g (before the regime's noise multiplier).
    var vibrationNoiseG: Double { 0.035 + 0.14 * difficulty }
    /// Current noise in amperes (before the regime's noise multiplier).
    var currentNoiseA: Double { 0.035 + 0.14 * difficulty }

    /// Writes `segment.range.count` samples, four interleaved channels each, starting at `out`.
    func render(
        _ segment: SegmentPlan, traits: RecordingTraits, state: inout MachineState,
        into out: UnsafeMutablePointer<Float>, noise rng: inout SeededRandom
    ) {
        let dt = 1 / sampleRateHz
        let twoPi = 2 * Double.pi
        let nyquistGuard = 0.45 * sampleRateHz
        let speedFollow = dt / 1.5  // the drive reaches a new set-point with a 1.5 s time constant
        let loadFollow = dt / 2.0
        let ringDecay = exp(-dt / 0.006)  // the resonance rings down in about 6 ms
        let vibrationNoise = vibrationNoiseG * traits.noiseScale
        let currentNoise = currentNoiseA * traits.noiseScale
        let severity = segment.severity
        let anisotropy = traits.radialAnisotropy
        let weights = segment.harmonicWeights
        let px = segment.phaseX, py = segment.phaseY, pz = segment.phaseZ
        let imbalancePhase = 0.25 * (px[2] - Double.pi)
        var s = state

        for n in 0..<segment.range.count {
            s.speedHz += (segment.targetSpeedHz - s.speedHz) * speedFollow
            s.load += (segment.targetLoad - s.load) * loadFollow
            s.wobblePhase += twoPi * 0.3 * dt
            if s.wobblePhase >= twoPi { s.wobblePhase -= twoPi }
            let f = s.speedHz * (1 + 0.008 * sin(s.wobblePhase))
            s.shaftPhase += twoPi * f * dt
            if s.shaftPhase >= twoPi { s.shaftPhase -= twoPi }
            s.halfPhase += Double.pi * f * dt
            if s.halfPhase >= twoPi { s.halfPhase -= twoPi }
            let slip = 0.01 + 0.03 * s.load
            s.electricalPhase += twoPi * f / (1 - slip) * dt
            if s.electricalPhase >= twoPi { s.electricalPhase -= twoPi }
            let theta = s.shaftPhase
            let relativeSpeed = f / 30
            let centrifugal = relativeSpeed * relativeSpeed

            // Every machine has some residual imbalance and a trace of 2×.
            let residual = traits.residualImbalanceG * centrifugal
            var x = residual * cos(theta + px[0]) + 0.25 * residual * cos(2 * theta + px[1])
            var y = anisotropy * (residual * cos(theta + py[0]) + 0.25 * residual * cos(2 * theta + py[1]))
            var z = 0.15 * residual * cos(theta + pz[0])
            var currentModulation = 0.005
            var currentModulationPhase = theta

            switch segment.condition {
            case .normal:
                break
            case .imbalance:
                let a = 0.45 * severity * centrifugal
                // The added mass sits near the residual heavy spot (phases within about ±45°),
                // so it adds to the residual imbalance instead of balancing it out.
                x += a * cos(theta + px[0] + imbalancePhase)
                y += anisotropy * a * cos(theta + py[0] + imbalancePhase)
                z += 0.1 * a * cos(theta + pz[0] + imbalancePhase)
                currentModulation += 0.02 * severity
            case .misalignment:
                let a = 0.35 * severity * relativeSpeed
                x += a * cos(2 * theta + px[1]) + 0.3 * a * cos(theta + px[0])
                y += anisotropy * (a * cos(2 * theta + py[1]) + 0.3 * a * cos(theta + py[0]))
                z += 0.7 * a * cos(theta + pz[0]) + 0.85 * a * cos(2 * theta + pz[1])
                currentModulation += 0.03 * severity
                currentModulationPhase = 2 * theta
            case .bearingFault:
                s.bearingCycle += traits.bearingDefectRatio * f * dt
                if s.bearingCycle >= 1 {
                    // Rolling elements slip a little, so impacts are not perfectly periodic.
                    s.bearingCycle -= 1 + rng.uniform(-0.04...0.04)
                    // The defect passes through the load zone once per turn: amplitude modulation at 1×.
                    s.impactAmplitude = 0.6 * severity * rng.uniform(0.7...1.3) * (1 + 0.6 * cos(theta))
                    s.ringEnvelope = 1
                    s.ringPhase = 0
                }
                let ring = s.impactAmplitude * s.ringEnvelope * sin(s.ringPhase)
                s.ringPhase += twoPi * traits.resonanceHz * dt
                if s.ringPhase >= twoPi { s.ringPhase -= twoPi }
                s.ringEnvelope *= ringDecay
                x += 0.6 * ring
                y += ring
                z += 0.3 * ring
                currentModulation += 0.02 * severity
                currentModulationPhase = twoPi * s.bearingCycle
            case .looseness:
                let base = 0.25 * severity * relativeSpeed
                var lx = 0.0, ly = 0.0, total = 0.0
                for k in 0..<6 where Double(k + 1) * f < nyquistGuard {
                    let a = base * weights[k]
                    let angle = Double(k + 1) * theta
                    lx += a * cos(angle + px[k])
                    ly += a * cos(angle + py[k])
                    total += a
                }
                let half = s.halfPhase
                lx += base * weights[6] * cos(half + px[6]) + base * weights[7] * cos(theta + half + px[7])
                ly += base * weights[6] * cos(half + py[6]) + base * weights[7] * cos(theta + half + py[7])
                total += base * (weights[6] + weights[7])
                // The loose part hits a stop: the waveform is truncated on one side.
                let stop = segment.clipFraction * total
                x += min(lx, stop)
                y += anisotropy * min(ly, stop)
                z += 0.2 * min(lx, stop)
                currentModulation += 0.04 * severity
            }

            let amplitudeA = 4 * (0.3 + 0.7 * s.load)
            let e = s.electricalPhase
            let current =
                amplitudeA * (sin(e) + 0.03 * sin(3 * e))
                + amplitudeA * currentModulation * (sin(e + currentModulationPhase) + sin(e - currentModulationPhase))

            let base = out + n * Self.channelCount
            base[0] = Float(traits.gain[0] * (x + vibrationNoise * rng.gaussian()) + traits.offset[0])
            base[1] = Float(traits.gain[1] * (y + vibrationNoise * rng.gaussian()) + traits.offset[1])
            base[2] = Float(traits.gain[2] * (z + vibrationNoise * rng.gaussian()) + traits.offset[2])
            base[3] = Float(traits.gain[3] * (current + currentNoise * rng.gaussian()) + traits.offset[3])
        }
        state = s
    }
}
