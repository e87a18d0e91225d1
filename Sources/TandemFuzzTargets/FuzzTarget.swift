#if canImport(Glibc)
    import Glibc
#endif

/// One fuzz target: bytes from outside through the decoder that first reads them and on through what the receiver
/// does next, exactly as the product does it.
///
/// The same entry function runs under libFuzzer (`Fuzz/`, `scripts/fuzz`) and in `swift test`, which replays the
/// committed seed corpus and every input that once crashed (`Fuzz/Corpus/<name>/`, `Fuzz/Regressions/<name>/`).
/// A refused input is an ordinary outcome; the function traps only when the code under test does (an overflow,
/// an index out of range, a sanitizer report) or when an invariant the target checks is broken
/// (``FuzzCheck/require(_:_:file:line:)``), which libFuzzer records as a crash.
public struct FuzzTarget: Sendable {
    /// What became of one input.
    public enum Outcome: Sendable, Equatable {
        /// The receiver took it (decoded and handled, as the target's ``summary`` says).
        case accepted
        /// The receiver refused it with an error, as it must refuse bad input.
        case refused
    }

    /// The name `scripts/fuzz` and the corpus directories use.
    public let name: String
    /// What the target feeds and what it checks.
    public let summary: String
    private let body: @Sendable (UnsafeRawBufferPointer) -> Outcome

    /// Creates a target.
    package init(name: String, summary: String, body: @escaping @Sendable (UnsafeRawBufferPointer) -> Outcome) {
        self.name = name
        self.summary = summary
        self.body = body
    }

    /// Runs one input through the target.
    ///
    /// - Returns: Whether the receiver accepted or refused it.
    /// - Important: Traps when the code under test traps or a checked invariant breaks: that is the finding.
    @discardableResult
    public func run(_ input: UnsafeRawBufferPointer) -> Outcome {
        body(input)
    }

    /// Runs one input held in an array.
    @discardableResult
    public func run(_ input: [UInt8]) -> Outcome {
        input.withUnsafeBytes { run($0) }
    }

    /// The targets that need no cloud server: the edge's inputs, the protocol messages the edge reads, model
    /// artifacts, the outbox journal and the data set readers. ``TandemCloudFuzzTargets`` has the cloud's.
    public static let standalone: [FuzzTarget] = [
        .assignment, .policy, .verdict, .yaml, .artifact, .outbox, .sampleLines, .tsArchive, .csvStream,
    ]
}

/// Invariant checks inside fuzz targets.
package enum FuzzCheck {
    /// Traps with `message` unless `condition` holds: an invariant of the code under test broke, which is a
    /// finding even though nothing crashed by itself.
    package static func require(
        _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID,
        line: UInt = #line
    ) {
        guard !condition() else { return }
        fatalError("fuzz invariant broken: \(message())", file: file, line: line)
    }
}

/// Reads parameters for a target from the front of its input (as libFuzzer's `FuzzedDataProvider` does), so a
/// mutation can change a setting as well as the bytes under test. Past the end every read gives zero.
package struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    package private(set) var position = 0

    package init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The next byte, or 0 past the end.
    package mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// A number in `0..<count` from the next byte (`count` at most 256).
    package mutating func choose(_ count: Int) -> Int {
        Int(byte()) % max(count, 1)
    }

    /// The next bit pattern as a flag.
    package mutating func flag() -> Bool {
        byte() & 1 == 1
    }

    /// The bytes not read yet.
    package var rest: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[min(position, bytes.count)...])
    }
}
