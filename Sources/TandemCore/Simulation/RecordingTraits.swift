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

    init(using rng: inout SeededGenerator) {
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
