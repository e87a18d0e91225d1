/// An error reading or writing a dataset: what went wrong and where (file and line).
public struct DataError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure, for callers that react differently to each.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        /// The file or directory could not be read or written.
        case unreadable
        /// A header line (`@tag …`, CSV column names) is missing, unknown or inconsistent.
        case malformedHeader
        /// A data line appears before the header that must precede it (`@data`).
        case dataBeforeHeader
        /// A data line cannot be parsed (wrong number of fields or dimensions, non-numeric value).
        case malformedLine
        /// A value is missing (`?`) or not finite (NaN, infinity).
        case missingValue
        /// A class label is not among the declared ones, or a line has none.
        case unknownLabel
        /// Series of different lengths where equal length is required.
        case unequalLength
        /// A feature of the format Tandem does not support (time stamps, regression targets).
        case unsupported
        /// The data has no class labels but labels are needed.
        case unlabeled
        /// Timestamps do not increase.
        case outOfOrder
        /// No usable data: no series, or too few samples for one window.
        case empty
        /// An argument or a path does not name a usable dataset.
        case invalidArgument
    }

    /// The kind of failure.
    public var code: Code
    /// A human-readable explanation.
    public var message: String
    /// The file involved, if any.
    public var file: String?
    /// The 1-based line in `file`, if any.
    public var line: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, file: String? = nil, line: Int? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    /// `file:line: message`, with whatever location is known.
    public var description: String {
        switch (file, line) {
        case let (file?, line?): "\(file):\(line): \(message)"
        case let (file?, nil): "\(file): \(message)"
        case let (nil, line?): "line \(line): \(message)"
        case (nil, nil): message
        }
    }
}
