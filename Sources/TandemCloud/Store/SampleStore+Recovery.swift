extension SampleStore {
    /// Why a stored escalation will never be answered. A terminal row is kept (its window is still a hard example
    /// if it decodes) but never claimed again.
    public enum TerminalReason: String, Sendable, CaseIterable {
        /// The stored payload no longer decodes.
        case undecodable
        /// Its window is not of the shape the full model takes.
        case wrongShape
        /// It was claimed the most times allowed and is still unanswered (the broker refused its verdict, say).
        case gaveUp
        /// Its edge's last use of a verdict had passed when a worker came to answer it (the payload's `lastUse`): kept
        /// for training, not answered.
        case expired
    }

    /// What ``SampleStore/claimStale(worker:staleSeconds:now:limit:maximumClaims:)`` found: rows to answer now,
    /// and rows given up by this call.
    public struct Claim: Sendable, Equatable {
        /// Claimed for the caller to answer.
        public var escalations: [Escalation] = []
        /// Marked terminal (`gaveUp`) by this call: claimed too often already.
        public var givenUp: [Escalation] = []

        /// Creates a claim.
        public init(escalations: [Escalation] = [], givenUp: [Escalation] = []) {
            self.escalations = escalations
            self.givenUp = givenUp
        }
    }
}
