#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

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

    /// Writes the next `count` samples of `segment`, four interleaved channels each, starting at `out`.
    ///
    /// All continuity lives in `state` and `rng`, so rendering a segment in several calls gives
    /// exactly the samples one call would.
    func render(
        _ segment: SegmentPlan, count: Int, traits: RecordingTraits, state: inout MachineState,
        into out: UnsafeMutablePointer<Float>, noise rng: inout SeededGenerator
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

        for n in 0..<count {
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
