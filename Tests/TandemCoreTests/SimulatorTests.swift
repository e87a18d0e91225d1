import Foundation
import TandemTestSupport
import Testing

@testable import TandemCore

struct SimulatorTests {
    @Test("the same seed gives bit-identical streams and windows; another seed does not")
    func determinism() {
        let a = SensorSimulator(.init(seed: 7)).stream(durationSeconds: 3)
        let b = SensorSimulator(.init(seed: 7)).stream(durationSeconds: 3)
        let c = SensorSimulator(.init(seed: 8)).stream(durationSeconds: 3)
        #expect(a == b)
        #expect(a.samples != c.samples)
        #expect(SensorSimulator.windows(count: 20, seed: 3) == SensorSimulator.windows(count: 20, seed: 3))
        #expect(
            SensorSimulator.windows(count: 20, seed: 3).windows != SensorSimulator.windows(count: 20, seed: 4).windows)
    }

    @Test("the generator is xoshiro256** seeded by SplitMix64, bit for bit")
    func generatorReference() {
        // Reference values computed independently from the published algorithms, seed 42.
        var rng = SeededGenerator(seed: 42)
        #expect(rng.next() == 0x1578_0b2e_0c2e_c716)
        #expect(rng.next() == 0x6104_d986_6d11_3a7e)
        #expect(rng.next() == 0xae17_5332_39e4_99a1)
    }

    @Test("a generator gives the same samples however the recording is chunked")
    func generatorChunking() {
        let configuration = SensorSimulator.Configuration(seed: 13, segmentSeconds: 0.2...0.5, driftAtSeconds: 1.3)
        let whole = SensorSimulator(configuration).stream(durationSeconds: 3)
        var generator = SensorSimulator.Generator(configuration)
        var scalars: [Float] = []
        var labels: [Int] = []
        for chunk in [1, 999, 7, 493, 1500] {
            let part = generator.next(chunk)
            scalars += part.samples.scalars
            labels += part.labels
        }
        #expect(scalars == whole.samples.scalars)
        #expect(labels == whole.labels)
        #expect(generator.sampleIndex == 3000)
        let prefix = SensorSimulator(configuration).stream(durationSeconds: 1)
        #expect(Array(whole.samples.scalars[0..<4000]) == prefix.samples.scalars)
    }

    @Test("a stream has four channels, finite values, and every class within two minutes")
    func streamShape() {
        let stream = SensorSimulator(.init(seed: 2, sampleRateHz: 500)).stream(durationSeconds: 120)
        #expect(stream.samples.shape == [60_000, 4])
        #expect(stream.samples.scalars.allSatisfy { $0.isFinite })
        #expect(Set(stream.labels) == Set(0..<5))
        #expect(stream.channelNames == ["vib_x", "vib_y", "vib_z", "current"])
        #expect(abs(stream.timestamp(at: 500) - 1.0) < 1e-12)
    }

    @Test("balanced windows hold every class equally often")
    func balancedWindows() {
        let set = SensorSimulator.windows(count: 50, window: 64, seed: 1)
        #expect(set.windows.shape == [50, 64, 4])
        #expect(set.classCounts == [10, 10, 10, 10, 10])
        #expect(set.classNames == ["normal", "imbalance", "misalignment", "bearing_fault", "looseness"])
    }

    @Test("bearing faults put more vibration energy above 150 Hz than a healthy machine")
    func bearingFaultIsHighFrequency() {
        let set = SensorSimulator.windows(count: 100, window: 128, seed: 11, difficulty: 0.3)
        func meanShare(_ condition: MachineCondition) -> Double {
            let indices = set.labels.indices.filter { set.labels[$0] == condition.rawValue }
            let total = indices.reduce(0.0) {
                $0 + SpectralFeatures.highBandShare(set, window: $1, channel: 1, sampleRateHz: 1000, hertz: 150)
            }
            return total / Double(indices.count)
        }
        #expect(meanShare(.bearingFault) > meanShare(.normal) + 0.25)
    }

    @Test("misalignment shows more axial vibration than imbalance, relative to radial")
    func misalignmentIsAxial() {
        let set = SensorSimulator.windows(count: 100, window: 128, seed: 12, difficulty: 0.3)
        func axialRatio(_ condition: MachineCondition) -> Double {
            let indices = set.labels.indices.filter { set.labels[$0] == condition.rawValue }
            return indices.reduce(0.0) {
                $0 + SpectralFeatures.rms(set, window: $1, channel: 2)
                    / SpectralFeatures.rms(set, window: $1, channel: 0)
            } / Double(indices.count)
        }
        #expect(axialRatio(.misalignment) > 1.3 * axialRatio(.imbalance))
    }

    @Test("classes are separable by spectra but not trivially at the default difficulty")
    func nearestCentroidIsBetweenChanceAndPerfect() {
        let train = SensorSimulator.windows(count: 250, window: 64, seed: 21)
        let test = SensorSimulator.windows(count: 150, window: 64, seed: 22)
        let accuracy = SpectralFeatures.nearestCentroidAccuracy(train: train, test: test)
        #expect(accuracy > 0.45)
        #expect(accuracy < 0.97)
    }

    @Test("difficulty makes the problem harder")
    func difficultyMatters() {
        func accuracy(_ difficulty: Double) -> Double {
            SpectralFeatures.nearestCentroidAccuracy(
                train: SensorSimulator.windows(count: 200, window: 64, seed: 31, difficulty: difficulty),
                test: SensorSimulator.windows(count: 150, window: 64, seed: 32, difficulty: difficulty))
        }
        #expect(accuracy(0.0) > accuracy(1.0) + 0.1)
    }

    @Test("after the drift time the vibration spectrum moves: the bearing resonance drops")
    func driftChangesFeatures() {
        let stream = SensorSimulator(.init(seed: 5, driftAtSeconds: 60)).stream(durationSeconds: 120)
        let windows = stream.windows(window: 128, hop: 128)
        let bearing = MachineCondition.bearingFault.rawValue
        // Share of the 100–500 Hz vibration energy that lies above 250 Hz, over bearing-fault windows.
        func upperShare(_ range: Range<Int>) -> Double {
            var upper = 0.0, total = 0.0
            for i in range where windows.labels[i] == bearing {
                for (k, m) in SpectralFeatures.magnitudes(windows, window: i, channel: 1).enumerated() {
                    let hz = Double(k) * 1000 / 128
                    guard hz >= 100 else { continue }
                    total += m * m
                    if hz >= 250 { upper += m * m }
                }
            }
            return upper / total
        }
        let half = windows.count / 2
        let before = upperShare(0..<half), after = upperShare(half..<windows.count)
        #expect(before > after + 0.2)
        // The speed range rises too: the current's frequency follows the shaft.
        let beforeCurrent = (0..<half).map { SpectralFeatures.magnitudes(windows, window: $0, channel: 3) }
        let afterCurrent = (half..<windows.count).map { SpectralFeatures.magnitudes(windows, window: $0, channel: 3) }
        func meanPeak(_ spectra: [[Double]]) -> Double {
            spectra.reduce(0.0) { total, s in total + Double(s.indices.max { s[$0] < s[$1] }!) } / Double(spectra.count)
        }
        #expect(meanPeak(afterCurrent) > meanPeak(beforeCurrent) + 1)
    }

    @Test("a stream without drift is the same before the drift time as one with drift")
    func driftStartsAtItsTime() {
        let plain = SensorSimulator(.init(seed: 9)).stream(durationSeconds: 20)
        let drifting = SensorSimulator(.init(seed: 9, driftAtSeconds: 10)).stream(durationSeconds: 20)
        #expect(plain.labels == drifting.labels)
        #expect(Array(plain.samples.scalars[0..<100]) == Array(drifting.samples.scalars[0..<100]))
        #expect(plain.samples.scalars != drifting.samples.scalars)
    }

    @Test("write produces train and test CSV files that DataSource reads back with the same classes")
    func writesCSVSplits() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let report = try SensorSimulator(.init(seed: 4)).write(to: scratch.url, format: .csv, durationSeconds: 60)
        #expect(report.files.count == 2)
        #expect(FileManager.default.fileExists(atPath: report.metadataPath))
        #expect(report.files[0].rows == 45_000 && report.files[1].rows == 15_000)
        let split = try DataSource.load(path: scratch.url.path, window: 128, hop: 64)
        let test = try #require(split.test)
        #expect(split.train.classNames == test.classNames)
        #expect(split.channelNames == SensorSimulator.channelNames)
        #expect(split.sampleRateHz == 1000)
        #expect(split.hop == 64)
        #expect(split.train.count == (45_000 - 128) / 64 + 1)
        #expect(test.count == (15_000 - 128) / 64 + 1)
    }

    @Test("write produces .ts windows that read back equal to the stream's windows")
    func writesTSSplits() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let simulator = SensorSimulator(.init(seed: 6))
        try simulator.write(to: scratch.url, format: .ts, durationSeconds: 20, window: 100, hop: 50, problemName: "M")
        let train = try TSArchive.read(contentsOf: scratch.url.appendingPathComponent("M_TRAIN.ts"))
        var stream = simulator.stream(durationSeconds: 20)
        stream.samples.scalars = stream.samples.scalars.map { ($0 * 10_000).rounded() / 10_000 }
        let expected = stream.slice(0..<15_000).windows(window: 100, hop: 50)
        #expect(train.labels == expected.labels.map { train.classNames.firstIndex(of: expected.classNames[$0])! })
        #expect(zip(train.windows.scalars, expected.windows.scalars).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test("fixed-point formatting writes the shortest exact decimal")
    func fixedPointFormatting() {
        func format(_ value: Double, _ decimals: Int) -> String {
            var out = [UInt8]()
            SensorSimulator.appendFixed(value, decimals: decimals, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(format(0, 4) == "0")
        #expect(format(-0.00001, 4) == "0")
        #expect(format(1.5, 4) == "1.5")
        #expect(format(-12.03456, 4) == "-12.0346")
        #expect(format(0.0007, 4) == "0.0007")
        #expect(format(450.001, 6) == "450.001")
    }
}
