import Foundation
import TandemCore
import Testing

@testable import TandemTraining

/// A batch split across threads gives what one call on the whole batch gives.
struct BatchClassifierTests {
    static let layers = FullModelQuantizationTests.fcnShape

    static func float() throws -> FloatModel {
        try randomFloatModel(layers, window: 32, channels: 2, classes: 3, seed: 5)
    }

    @Test("float32: parts on 1, 2, 3 and 8 threads match the whole batch, for batch sizes that do not divide evenly")
    func floatPartsMatchTheWholeBatch() throws {
        let model = try Self.float()
        for count in [1, 7, 9, 37, 64] {
            let windows = gaussianWindows(count, window: 32, channels: 2, seed: UInt64(count))
            let whole = try model.probabilities(for: windows)
            for threads in [1, 2, 3, 8] {
                let split = try BatchClassifier(engine: .float(model), threads: threads, minimumPart: 4)
                    .probabilities(for: windows)
                #expect(split.shape == [count, 3])
                let worst = zip(split.scalars, whole.scalars).map { abs($0 - $1) }.max() ?? 0
                #expect(worst <= 1e-5, "\(count) windows on \(threads) threads: off by \(worst)")
            }
        }
    }

    @Test("int8: parts on separate engines give exactly the sequential engine's probabilities")
    func int8PartsMatchOneEngine() throws {
        let quantized = try PostTrainingQuantizer().quantize(
            try Self.float(), calibration: gaussianWindows(64, window: 32, channels: 2, seed: 9))
        let windows = gaussianWindows(45, window: 32, channels: 2, seed: 10)
        let sequential = try Int8Engine(model: quantized).classify(windows: windows).probabilities
        for threads in [1, 2, 4] {
            let split = try BatchClassifier(engine: .int8(quantized), threads: threads).probabilities(for: windows)
            #expect(split.scalars == sequential.scalars, "\(threads) threads")
        }
    }

    @Test("a bad window fails the batch with the part's error; wrong sizes are refused before any work")
    func failures() throws {
        let model = try Self.float()
        let quantized = try PostTrainingQuantizer().quantize(
            model, calibration: gaussianWindows(32, window: 32, channels: 2, seed: 11))
        var windows = gaussianWindows(16, window: 32, channels: 2, seed: 12)
        windows.scalars[15 * 64 + 3] = .nan  // the last window, in the second part
        #expect(throws: QuantizationError.self) {
            try BatchClassifier(engine: .int8(quantized), threads: 2).probabilities(for: windows)
        }
        let classifier = BatchClassifier(engine: .float(model), threads: 2)
        #expect(throws: ModelError.self) {
            try classifier.probabilities(for: gaussianWindows(4, window: 16, channels: 2, seed: 1))
        }
        var output = [Float](repeating: 0, count: 5)
        #expect(throws: ModelError.self) {
            try [Float](repeating: 0, count: 128).withUnsafeBufferPointer { x in
                try output.withUnsafeMutableBufferPointer { try classifier.probabilities(x, count: 2, into: $0) }
            }
        }
        #expect(classifier.precision == .float && classifier.threads == 2 && classifier.classes == 3)
    }
}
