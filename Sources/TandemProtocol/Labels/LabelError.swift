/// Why a ground-truth label message was refused.
public struct LabelError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of refusal; also the `reason` label of the rejection counter.
    public enum Code: String, Sendable, CaseIterable {
        /// The payload is not JSON, or not an object (or, over HTTP, an array of objects).
        case malformed
        /// `escalationId` is missing or not a UUID string.
        case badEscalationId
        /// `label` is missing or not a string.
        case badLabel
        /// `label` is not a class name of the full model.
        case unknownClass
        /// A time-range label's device, stream, fleet, start or end is missing or invalid.
        case badRange
        /// The message is larger than allowed.
        case tooLarge
        /// The store could not record it.
        case store
        /// The device whose topic it came on is over its rate limit.
        case rateLimited
        /// A device labelled an escalation of another fleet or device (a device labels only its own).
        case otherDevice
        /// A device labelled an escalation an operator (or, for another device's escalation, that device) labelled
        /// already; a device never replaces such a label.
        case labelledByOthers
    }

    /// The kind of refusal.
    public var code: Code
    /// What was wrong, naming the field (and the element of an array).
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
