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
        severityScale: Double, using rng: inout SeededGenerator
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
