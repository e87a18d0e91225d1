/// How a window cut from a labeled stream gets its label.
public enum WindowLabelRule: String, Sendable, Codable, CaseIterable {
    /// The label of the window's last sample: what an online classifier must say "now".
    case lastSample
    /// The most frequent label in the window; a tie goes to the label seen most recently.
    case majority
}
