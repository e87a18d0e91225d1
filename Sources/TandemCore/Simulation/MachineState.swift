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

    init(speedHz: Double, load: Double, using rng: inout SeededGenerator) {
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
