/// A payload could not be decoded: what is wrong and at which byte.
public struct PayloadError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable, CaseIterable {
        /// The bytes end before a field the layout promises.
        case truncated
        /// The payload does not start with the magic bytes.
        case badMagic
        /// The payload's version is not one this build reads.
        case unsupportedVersion
        /// The CRC-32 at the end does not match the bytes before it.
        case checksumMismatch
        /// A field breaks the layout's rules (a length, a count, text that is not UTF-8, bytes left over).
        case malformed
    }

    /// The kind of failure.
    public var code: Code
    /// What is wrong, naming the field.
    public var message: String
    /// The byte offset of the field, if known.
    public var offset: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    /// `code at byte N: message`.
    public var description: String {
        if let offset { return "\(code.rawValue) at byte \(offset): \(message)" }
        return "\(code.rawValue): \(message)"
    }
}
