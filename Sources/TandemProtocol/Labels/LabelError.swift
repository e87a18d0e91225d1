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
        /// The message is larger than allowed.
        case tooLarge
        /// The store could not record it.
        case store
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
