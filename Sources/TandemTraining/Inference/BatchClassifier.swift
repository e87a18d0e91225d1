import Dispatch
import Foundation
import TandemCore

/// Class probabilities for batches of windows, with a float32 or an int8 model, each batch split across threads.
///
/// A batch of `n` windows is cut into at most ``threads`` contiguous parts of at least ``minimumPart`` windows, and
/// the parts run at once (`DispatchQueue.concurrentPerform`). Each part is independent: a float part is one
/// ``FloatModel/probabilities(for:)`` call (its own scratch buffers; OpenBLAS should then run one thread per call,
/// see ``Kernels/setFloatThreads(_:)``), an int8 part runs on an ``Int8Engine`` of its own. Unlike one multi-threaded
/// sgemm, whose threads meet at a barrier after every block, a part whose core is taken by another process for a
/// moment delays only itself.
///
/// The int8 engines hold scratch buffers, so one batch runs at a time: ``probabilities(_:count:into:)`` takes a
/// lock for the whole batch.
public final class BatchClassifier: @unchecked Sendable {
    /// The numerics a classifier runs.
    public enum Precision: String, Sendable, CaseIterable {
        /// The float32 model (OpenBLAS sgemm).
        case float
        /// The int8 model (Tandem's integer kernels).
        case int8
    }

    /// The numerics.
    public let precision: Precision
    /// Samples per window.
    public let window: Int
    /// Channels per sample.
    public let channels: Int
    /// Output classes.
    public let classes: Int
    /// Most parts a batch is split into.
    public let threads: Int
    /// Fewest windows a part gets (a float part's sgemm works on 8 windows at a time).
    public let minimumPart: Int

    private let float: FloatModel?
    private let engines: [Int8Engine]
    private let lock = NSLock()

    /// A classifier for `engine` that splits a batch across up to `threads` threads.
    ///
    /// - Parameter minimumPart: Fewest windows per part; nil: 8 for float, 1 for int8.
    public init(engine: VerifiedModel.Engine, threads: Int, minimumPart: Int? = nil) {
        self.threads = max(1, min(threads, 64))
        switch engine {
        case .float(let model):
            precision = .float
            float = model
            engines = []
            (window, channels, classes) = (model.window, model.channels, model.classes)
            self.minimumPart = max(1, minimumPart ?? 8)
        case .int8(let model):
            precision = .int8
            float = nil
            engines = (0..<self.threads).map { _ in Int8Engine(model: model) }
            (window, channels, classes) = (model.window, model.channels, model.classes)
            self.minimumPart = max(1, minimumPart ?? 1)
        }
    }

    /// The threads a batch would use by default: the CPUs this process may run on, at most 8.
    public static var defaultThreads: Int { max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8)) }

    /// Probabilities for `count` normalized windows.
    ///
    /// - Parameters:
    ///   - windows: `count · window · channels` floats, channels-last.
    ///   - output: Receives `count · classes` probabilities, row by row.
    /// - Throws: ``ModelError`` or ``QuantizationError`` naming the first part that failed (a wrong element count,
    ///   a sample that is not finite for int8).
    public func probabilities(
        _ windows: UnsafeBufferPointer<Float>, count: Int, into output: UnsafeMutableBufferPointer<Float>
    ) throws {
        let size = window * channels
        guard count >= 0, windows.count >= count * size, output.count >= count * classes else {
            throw ModelError(
                .badInput,
                "\(windows.count) floats for \(count) windows of \(window)×\(channels), room for \(output.count) "
                    + "probabilities")
        }
        guard count > 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        let parts = max(1, min(threads, count / minimumPart))
        let failures = FailureSlots(parts)
        // Each part reads and writes only its own rows of the two buffers, which outlive the parts.
        nonisolated(unsafe) let windows = windows
        nonisolated(unsafe) let output = output
        let run: @Sendable (Int) -> Void = { part in
            let start = count * part / parts
            let end = count * (part + 1) / parts
            do {
                try self.classify(
                    UnsafeBufferPointer(rebasing: windows[(start * size)..<(end * size)]),
                    count: end - start, part: part,
                    into: UnsafeMutableBufferPointer(rebasing: output[(start * self.classes)..<(end * self.classes)]))
            } catch {
                failures.set(part, error)
            }
        }
        if parts == 1 {
            run(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: parts, execute: run)
        }
        if let error = failures.first { throw error }
    }

    /// Probabilities for a batch `[count, window, channels]`, as `[count, classes]`.
    public func probabilities(for windows: Tensor) throws -> Tensor {
        guard windows.rank == 3, windows.shape[1] == window, windows.shape[2] == channels else {
            throw ModelError(
                .badInput, "windows have shape \(windows.shape), the model takes [n, \(window), \(channels)]")
        }
        let count = windows.shape[0]
        var output = Tensor(shape: [count, classes])
        try windows.scalars.withUnsafeBufferPointer { x in
            try output.scalars.withUnsafeMutableBufferPointer { try probabilities(x, count: count, into: $0) }
        }
        return output
    }

    /// One part, on the calling thread.
    private func classify(
        _ windows: UnsafeBufferPointer<Float>, count: Int, part: Int, into output: UnsafeMutableBufferPointer<Float>
    ) throws {
        if let float {
            let p = try float.probabilities(
                for: Tensor(shape: [count, window, channels], scalars: Array(windows)))
            p.scalars.withUnsafeBufferPointer { output.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            return
        }
        let engine = engines[part]
        let size = window * channels
        for i in 0..<count {
            _ = try engine.classify(
                UnsafeBufferPointer(rebasing: windows[(i * size)..<((i + 1) * size)]),
                probabilities: UnsafeMutableBufferPointer(rebasing: output[(i * classes)..<((i + 1) * classes)]))
        }
    }
}

/// The error each part of a batch ended with, written from the part's own thread.
private final class FailureSlots: @unchecked Sendable {
    private var errors: [(any Error)?]
    private let lock = NSLock()

    init(_ count: Int) { errors = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ error: any Error) { lock.withLock { errors[index] = error } }

    /// The error of the first part that failed.
    var first: (any Error)? { lock.withLock { errors.compactMap { $0 }.first } }
}
