import Foundation
import Testing

@testable import TandemCore

struct StandardizationTests {
    @Test("after fitting, every channel of the training data has mean 0 and std 1")
    func fitsPerChannel() {
        let set = SensorSimulator.windows(count: 30, window: 64, seed: 1)
        let standardization = Standardization.fit(set.windows)
        let x = standardization.applied(to: set.windows)
        let channels = 4, rows = x.count / channels
        for c in 0..<channels {
            var sum = 0.0, squares = 0.0
            for r in 0..<rows { sum += Double(x.scalars[r * channels + c]) }
            let mean = sum / Double(rows)
            for r in 0..<rows { squares += pow(Double(x.scalars[r * channels + c]) - mean, 2) }
            #expect(abs(mean) < 1e-4)
            #expect(abs((squares / Double(rows)).squareRoot() - 1) < 1e-3)
        }
    }

    @Test("apply then invert gives back the input, within 1e-5 relative")
    func roundTrip() {
        let original = SensorSimulator.windows(count: 10, window: 32, seed: 2).windows
        let standardization = Standardization.fit(original)
        var x = original
        standardization.apply(to: &x)
        standardization.invert(&x)
        for (a, b) in zip(x.scalars, original.scalars) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
    }

    @Test("a constant channel is centred, not divided by zero")
    func constantChannel() {
        let t = Tensor(shape: [3, 2], scalars: [5, 1, 5, 2, 5, 3])
        let standardization = Standardization.fit(t)
        #expect(standardization.std[0] == 1)
        let y = standardization.applied(to: t)
        #expect(y.scalars.allSatisfy { $0.isFinite })
        #expect(y.scalars[0] == 0 && y.scalars[2] == 0)
    }

    @Test("it survives a JSON round trip, as it does inside a model manifest")
    func codable() throws {
        let standardization = Standardization(mean: [0.5, -1], std: [2, 0.25])
        let decoded = try JSONDecoder().decode(
            Standardization.self, from: JSONEncoder().encode(standardization))
        #expect(decoded == standardization)
    }

    @Test("a large offset does not spoil the variance")
    func largeOffset() {
        let values: [Float] = (0..<10_000).map { 10_000 + Float($0 % 2) }
        let standardization = Standardization.fit(Tensor(shape: [10_000, 1], scalars: values))
        #expect(abs(standardization.mean[0] - 10_000.5) < 1e-3)
        #expect(abs(standardization.std[0] - 0.5) < 1e-4)
    }
}
