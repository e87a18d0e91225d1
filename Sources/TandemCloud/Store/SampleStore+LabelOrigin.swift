extension SampleStore {
    /// Who gave a ground-truth label, which decides what it may label.
    public enum LabelOrigin: Sendable, Equatable, Hashable {
        /// An operator (`POST /v1/labels` with the API token): any escalation id, stored or not yet.
        case `operator`
        /// A device, on its own `tandem/v1/{fleet}/{device}/labels` topic: only its own escalations. A label for
        /// an id not stored yet is kept but counts (for training, the retraining trigger and canary accuracy) only
        /// once an escalation of that id arrives from the same fleet and device.
        case device(fleet: String, device: String)
    }

    /// What became of one label given to ``EscalationStore/recordLabels(_:from:at:)``.
    public enum LabelOutcome: Sendable, Equatable {
        /// Stored; its escalation is stored and the label may label it.
        case matched
        /// Stored; no escalation of that id is stored yet, so it does not count until one arrives.
        case pending
        /// Not stored: the id is an escalation of another fleet or device.
        case otherDevice
        /// Not stored: an operator, or another device, labelled that id already; a device never replaces it.
        case labelledByOthers
    }
}
