/// The retained status message an agent publishes on `…/status` (docs/EDGE.md lists the fields).
struct StatusMessage: Encodable {
    /// The durable outbox's counters; present when the agent has a broker link.
    struct Outbox: Encodable {
        var pending: Int
        var delivered: Int
        var dropped: Int
        var refused: Int
        var journalBytes: Int
    }

    var device: String
    var modelVersion: String
    var windows: Int
    var escalations: Int
    var cappedEscalations: Int
    var verdictsInTime: Int
    var corrections: Int
    var sampleRateMismatchHz: [String: Double]
    var escalationRate: Double
    var meanConfidence: Double
    var threshold: Double
    var inputErrors: [String: [String: Int]]
    var uptimeSeconds: Double
    var rssBytes: Int
    var state: String
    var modelUpdate: String
    var outbox: Outbox? = nil
    var badVerdicts: Int? = nil
    var connected: Bool? = nil
}
