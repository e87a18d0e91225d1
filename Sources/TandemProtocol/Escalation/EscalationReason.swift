/// Why the edge escalated a window: the byte at offset 3 of an escalation of version 3.
///
/// Versions 1 and 2 carry no reason; they decode as ``uncertain``, the only reason an edge of those versions had.
public enum EscalationReason: UInt8, Sendable, Equatable, CaseIterable, Codable {
    /// The model's confidence was below the policy's threshold.
    case uncertain = 0
    /// The model was confident, but the window's waveform statistics lie far from those of the predicted class on
    /// the training windows (novelty score above the threshold recorded in the artifact).
    case novel = 1
    /// A confident, familiar window picked at random (`policy.auditShare`) so the cloud can estimate the edge
    /// model's accuracy without the bias of escalating only the hard windows.
    case audit = 2

    /// The name used in records, metrics and labels: `uncertain`, `novel` or `audit`.
    public var name: String {
        switch self {
        case .uncertain: "uncertain"
        case .novel: "novel"
        case .audit: "audit"
        }
    }
}
