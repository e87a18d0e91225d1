/// The operating envelope of the simulated machine and how its sensors are mounted.
///
/// A stream runs in `standard` until the configured drift time and in `drifted` after it: a
/// faster, more heavily loaded machine with a lower structural resonance and re-mounted
/// sensors, so a model trained only on the standard regime does worse after the change.
public struct OperatingRegime: Sendable, Equatable, Codable {
    /// Range of shaft speeds, in hertz (revolutions per second).
    public var shaftSpeedHz: ClosedRange<Double>
    /// Range of motor load, as a fraction of rated load.
    public var load: ClosedRange<Double>
    /// Range of the structural resonance that bearing impacts excite, in hertz.
    public var resonanceHz: ClosedRange<Double>
    /// Gain of each sensor channel's mounting (x, y, z, current), multiplied with the per-recording gain.
    public var mountingGain: [Double]
    /// Multiplier on the measurement noise.
    public var noiseScale: Double

    /// Creates a regime.
    public init(
        shaftSpeedHz: ClosedRange<Double>,
        load: ClosedRange<Double>,
        resonanceHz: ClosedRange<Double>,
        mountingGain: [Double],
        noiseScale: Double
    ) {
        precondition(mountingGain.count == SensorSimulator.channelNames.count, "one mounting gain per channel")
        self.shaftSpeedHz = shaftSpeedHz
        self.load = load
        self.resonanceHz = resonanceHz
        self.mountingGain = mountingGain
        self.noiseScale = noiseScale
    }

    /// The regime before any drift: 20–40 Hz shaft, 20–90 % load, resonance 280–360 Hz.
    public static let standard = OperatingRegime(
        shaftSpeedHz: 20...40,
        load: 0.2...0.9,
        resonanceHz: 280...360,
        mountingGain: [1, 1, 1, 1],
        noiseScale: 1
    )

    /// The regime after drift: 35–50 Hz shaft, 60–100 % load, resonance 170–230 Hz, sensors
    /// re-mounted (x weaker, y and axial stronger) and 30 % more noise.
    public static let drifted = OperatingRegime(
        shaftSpeedHz: 35...50,
        load: 0.6...1.0,
        resonanceHz: 170...230,
        mountingGain: [0.7, 1.3, 1.5, 1.1],
        noiseScale: 1.3
    )
}
