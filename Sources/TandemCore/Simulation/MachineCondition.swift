/// The condition of the simulated rotating machine: the class a window is labeled with.
public enum MachineCondition: Int, CaseIterable, Sendable, Codable {
    /// A healthy machine: small residual imbalance, broadband noise.
    case normal
    /// Mass imbalance: a strong radial component at the shaft frequency (1×), rising with speed².
    case imbalance
    /// Shaft misalignment: strong 2× radial and strong axial 1×/2× components.
    case misalignment
    /// An outer-race bearing defect: periodic impacts at the defect frequency ringing a
    /// high-frequency structural resonance, amplitude-modulated by the load zone.
    case bearingFault
    /// Mechanical looseness: many harmonics and a ½× sub-harmonic, with a truncated waveform.
    case looseness

    /// The class name written to files (`normal`, `imbalance`, `misalignment`, `bearing_fault`, `looseness`).
    public var className: String {
        switch self {
        case .normal: "normal"
        case .imbalance: "imbalance"
        case .misalignment: "misalignment"
        case .bearingFault: "bearing_fault"
        case .looseness: "looseness"
        }
    }

    /// The class names of all conditions, in label order.
    public static let classNames: [String] = allCases.map(\.className)
}
