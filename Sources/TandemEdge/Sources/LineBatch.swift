#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Lines read from a source in one go: one byte buffer and the range of each line in it.
///
/// Sources hand lines over in batches so the per-line cost is a range, not an allocation.
public struct LineBatch: Sendable {
    /// The bytes of the lines (with or without the newlines between them: ``lines`` says where each is).
    public var bytes: [UInt8] = []
    /// Each line's range in ``bytes``.
    public var lines: [Range<Int>] = []
    /// Lines the source discarded because they exceeded its line limit (each counts as `lineTooLong`).
    public var overlongLines = 0
    /// Datagrams a UDP source dropped because their sender is not on its allow-list (each counts as
    /// `senderNotAllowed`).
    public var refusedDatagrams = 0
    /// The source's number (1-based) of the first line in this batch, for messages.
    public var firstLineNumber = 1

    /// Creates an empty batch.
    public init() {}

    /// Appends one line.
    public mutating func append(_ line: UnsafeRawBufferPointer) {
        let start = bytes.count
        bytes.append(contentsOf: line)
        lines.append(start..<bytes.count)
    }

    /// Appends one line given as text (tests and slow paths).
    public mutating func append(_ line: String) {
        var copy = line
        copy.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Whether the batch holds no lines and no overlong-line count.
    public var isEmpty: Bool { lines.isEmpty && overlongLines == 0 && refusedDatagrams == 0 }

    /// Calls `body` with each line's number and bytes.
    public func forEachLine(_ body: (Int, UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
        try bytes.withUnsafeBufferPointer { all in
            for (i, range) in lines.enumerated() {
                try body(firstLineNumber + i, UnsafeBufferPointer(rebasing: all[range]))
            }
        }
    }
}

/// Splits a byte stream into lines, discarding (and counting) lines longer than a limit without
/// holding them in memory.
public struct LineSplitter: Sendable {
    /// Lines longer than this many bytes are discarded and counted.
    public let maximumLineBytes: Int
    private var partial: [UInt8] = []
    private var discarding = false

    /// Creates a splitter.
    public init(maximumLineBytes: Int) {
        self.maximumLineBytes = max(maximumLineBytes, 1)
        partial.reserveCapacity(min(self.maximumLineBytes, 1 << 16))
    }

    /// Whether part of a line is waiting for its newline.
    public var hasPartialLine: Bool { !partial.isEmpty }

    /// Splits `chunk` into complete lines appended to `batch`; an unfinished last line waits for the next chunk.
    ///
    /// The chunk's complete lines are copied into the batch in one piece (their newlines stay between the
    /// line ranges), so a line costs a range, not a copy of its own.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, into batch: inout LineBatch) {
        let count = chunk.count
        guard let base = chunk.baseAddress, count > 0 else { return }
        var start = 0
        if discarding || !partial.isEmpty {
            // The rest of a line begun in an earlier chunk.
            guard let newline = memchr(base, 0x0A, count) else {
                continueLine(chunk, into: &batch)
                return
            }
            let end = UnsafeRawPointer(newline) - base
            endLine(UnsafeRawBufferPointer(rebasing: chunk[0..<end]), into: &batch)
            start = end + 1
        }
        var last = count - 1
        while last >= start && chunk[last] != 0x0A { last -= 1 }
        if last >= start {
            let offset = batch.bytes.count - start
            batch.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start...last]))
            var lineStart = start
            while lineStart <= last {
                // memchr scans a word or a vector at a time; a newline at `last` ends the search.
                let end =
                    memchr(base + lineStart, 0x0A, last + 1 - lineStart).map { UnsafeRawPointer($0) - base } ?? last
                if end - lineStart > maximumLineBytes {
                    batch.overlongLines += 1
                } else {
                    batch.lines.append((lineStart + offset)..<(end + offset))
                }
                lineStart = end + 1
            }
            start = last + 1
        }
        if start < count { continueLine(UnsafeRawBufferPointer(rebasing: chunk[start..<count]), into: &batch) }
    }

    /// The end of a line whose start is in `partial` (or is being discarded): the line joins the batch,
    /// or counts as over-long.
    private mutating func endLine(_ segment: UnsafeRawBufferPointer, into batch: inout LineBatch) {
        if discarding {
            discarding = false
        } else if partial.count + segment.count > maximumLineBytes {
            batch.overlongLines += 1
        } else {
            partial.append(contentsOf: segment)
            partial.withUnsafeBytes { batch.append($0) }
        }
        partial.removeAll(keepingCapacity: true)
    }

    /// More of an unfinished line: kept in `partial` until its newline, or dropped (and counted once) as
    /// soon as it is over-long.
    private mutating func continueLine(_ segment: UnsafeRawBufferPointer, into batch: inout LineBatch) {
        guard !discarding else { return }
        if partial.count + segment.count > maximumLineBytes {
            batch.overlongLines += 1
            discarding = true
            partial.removeAll(keepingCapacity: true)
        } else {
            partial.append(contentsOf: segment)
        }
    }

    /// Ends the stream: an unfinished last line becomes a line of its own.
    public mutating func finish(into batch: inout LineBatch) {
        if !discarding && !partial.isEmpty { partial.withUnsafeBytes { batch.append($0) } }
        partial.removeAll(keepingCapacity: true)
        discarding = false
    }

    /// Drops any unfinished line (after a file was truncated under it).
    public mutating func discardPartialLine() {
        partial.removeAll(keepingCapacity: true)
        discarding = false
    }
}
