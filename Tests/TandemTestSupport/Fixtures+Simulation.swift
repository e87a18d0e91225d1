import Foundation
import TandemCore

/// Small simulated datasets for tests of training, evaluation and the CLI.
public enum SimulatedData {
    /// A class-balanced train and test set of independent simulated windows (four channels).
    ///
    /// Different seeds for train and test, so the test windows are new machines.
    public static func split(
        trainCount: Int = 100, testCount: Int = 50, window: Int = 64, seed: UInt64 = 1, difficulty: Double = 0.5
    ) -> (train: LabeledWindows, test: LabeledWindows) {
        (
            SensorSimulator.windows(count: trainCount, window: window, seed: seed, difficulty: difficulty),
            SensorSimulator.windows(count: testCount, window: window, seed: seed &+ 1_000_003, difficulty: difficulty)
        )
    }
}

extension ScratchDirectory {
    /// Writes a simulated `train.csv`/`test.csv` pair (or `.ts` pair) into this directory, as
    /// `tandem simulate` would, and returns the directory for `DataSource.load(path:)`.
    @discardableResult
    public func writeSimulation(
        durationSeconds: Double = 60, seed: UInt64 = 1, format: SensorSimulator.OutputFormat = .csv,
        driftAtSeconds: Double? = nil
    ) throws -> URL {
        try SensorSimulator(.init(seed: seed, driftAtSeconds: driftAtSeconds))
            .write(to: url, format: format, durationSeconds: durationSeconds)
        return url
    }
}
