import ArgumentParser
import Foundation
import TandemCore

/// `tandem simulate`: writes labeled rotating-machine sensor data (see docs/DATA.md).
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Write simulated rotating-machine sensor data: a train and a test split.",
        discussion: """
            Simulates one machine's 3-axis vibration (vib_x, vib_y radial, vib_z axial, in g) and motor \
            current (A). Its condition changes every 4-10 s among normal, imbalance, misalignment, \
            bearing_fault and looseness while speed (20-40 Hz shaft) and load wander. The first \
            --train-fraction of the timeline becomes the training split, the rest the test split.

            csv: OUT/train.csv and OUT/test.csv, columns timestamp,vib_x,vib_y,vib_z,current,label.
            ts:  OUT/NAME_TRAIN.ts and OUT/NAME_TEST.ts, windows of --window samples every --hop.
            Both also write OUT/simulation.json with the configuration. The same seed gives the same files.
            """
    )

    @Option(help: ArgumentHelp("Directory to write into (created if missing).", valueName: "path"))
    var out: String

    @Option(help: "File format: csv (streams) or ts (UCR/UEA windows).")
    var format: SensorSimulator.OutputFormat = .csv

    @Option(help: ArgumentHelp("Length of the whole simulated timeline, in seconds.", valueName: "seconds"))
    var duration: Double = 600

    @Option(help: ArgumentHelp("Share of the timeline written as the training split.", valueName: "fraction"))
    var trainFraction: Double = 0.75

    @Option(help: ArgumentHelp("Samples per second per channel.", valueName: "hz"))
    var rate: Double = 1000

    @Option(help: "Random seed; the same seed writes the same data.")
    var seed: UInt64 = 1

    @Option(
        help: ArgumentHelp("0 = severe faults and little noise ... 1 = mild faults and heavy noise.", valueName: "x"))
    var difficulty: Double = 0.5

    @Option(
        help: ArgumentHelp(
            "Seconds into the timeline at which the machine moves to a new operating regime (faster, more load, "
                + "lower resonance, re-mounted sensors). Default: no drift.",
            valueName: "seconds"))
    var driftAt: Double?

    @Option(help: ArgumentHelp("Samples per window (ts format).", valueName: "samples"))
    var window: Int = 128

    @Option(help: ArgumentHelp("Samples between window starts (ts format).", valueName: "samples"))
    var hop: Int = 64

    @Option(help: "Problem name of the .ts files, and their file-name prefix.")
    var problemName: String = "TandemMachine"

    @Flag(help: "Print a machine-readable JSON report on stdout.")
    var json = false

    func validate() throws {
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard trainFraction > 0 && trainFraction < 1 else {
            throw ValidationError("--train-fraction must be in (0, 1)")
        }
        guard rate > 0 else { throw ValidationError("--rate must be positive") }
        guard (0...1).contains(difficulty) else { throw ValidationError("--difficulty must be in 0...1") }
        guard window > 0, hop > 0 else { throw ValidationError("--window and --hop must be positive") }
        if let driftAt, driftAt < 0 { throw ValidationError("--drift-at must not be negative") }
    }

    func run() throws {
        let simulator = SensorSimulator(
            SensorSimulator.Configuration(
                seed: seed, sampleRateHz: rate, difficulty: difficulty, driftAtSeconds: driftAt))
        let report = try simulator.write(
            to: URL(fileURLWithPath: out), format: format, durationSeconds: duration, trainFraction: trainFraction,
            window: window, hop: hop, problemName: problemName)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        let unit = format == .csv ? "samples" : "windows"
        for file in report.files {
            let classes = report.classNames.map { "\($0) \(file.classCounts[$0] ?? 0)" }.joined(separator: ", ")
            print(
                "wrote \(file.path): \(file.rows) \(unit), t = \(file.startSeconds)–\(file.endSeconds) s (\(classes))")
        }
        let drift = driftAt.map { ", drift at \($0) s" } ?? ""
        print("seed \(seed), \(rate) Hz, difficulty \(difficulty)\(drift); configuration in \(report.metadataPath)")
    }
}

extension SensorSimulator.OutputFormat: ExpressibleByArgument {}
