import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import TandemCore
import TandemFleet
import TandemMQTT
import TandemProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem demo`: the live half of scripts/demo.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Feed simulated machines to running edge agents, play the operator, show the fleet live, report.",
        discussion: """
            The live part of scripts/demo, which starts the broker, the cloud worker and one tandem-edge per \
            device first. Every subdirectory of --agents is a device: tandem-edge reads samples.fifo as its \
            standard input (CSV lines, channel layout of `tandem simulate`) and writes its records (stdout sink) \
            to records.jsonl. The devices watch identical machines (the type simulated with --seed, as the \
            training data was), each from its own point of the recording (--start-at, then --device-spacing \
            seconds apart), sampled at --rate in real time; after --drift-at seconds every machine moves to a \
            new operating regime.

            Like an operator with a clipboard, the demo sends the true condition of --label-fraction of the \
            windows the cloud answered as ground-truth labels on tandem/v1/{fleet}/{device}/labels. It scores \
            every record against the simulator's truth and shows, once a second, devices, windows/s, escalation \
            rate, cascade accuracy, model versions, the rollout state (from --data-dir) and the trainer's last \
            lines (from --cloud-log). When the stream ends with a drift but no update promoted since, it goes on \
            (and says so) until one is promoted and --after-promotion seconds more have passed, at most \
            --extend-until-promoted seconds. At the end, or on Ctrl-C, it writes report.txt, timeline.csv and \
            report.svg to --report and prints the summary.
            """)

    @OptionGroup var cloud: CloudOptions

    @Option(
        help: ArgumentHelp(
            "Directory with one subdirectory per device (samples.fifo, records.jsonl).", valueName: "dir"))
    var agents: String

    @Option(help: "Seconds of stream to feed.")
    var seconds = 300.0

    @Option(
        help: "Seconds into the stream at which every machine drifts to a new operating regime; negative: no drift.")
    var driftAt = 150.0

    @Option(help: "Samples per second per channel (the models' input rate).")
    var rate = 1000.0

    @Option(help: "Seed of the simulated machine type (the seed its training data was simulated with).")
    var seed: UInt64 = 7

    @Option(
        help:
            "Where in the machine's recording the first device starts, in seconds (after the training data's end, so devices see new data)."
    )
    var startAt = 200.0

    @Option(help: "Seconds of recording between one device's starting point and the next one's.")
    var deviceSpacing = 47.0

    @Option(help: "Share of the windows the cloud answered that the operator labels with the truth (0…1).")
    var labelFraction = 0.25

    @Option(help: ArgumentHelp("The cloud worker's log, whose trainer and rollout lines are shown.", valueName: "path"))
    var cloudLog: String?

    @Option(help: ArgumentHelp("Directory for report.txt, timeline.csv and report.svg.", valueName: "dir"))
    var report = "out/demo/report"

    @Option(help: "Seconds of stream per point of the timeline.")
    var bucketSeconds = 5.0

    @Option(
        help:
            "Most seconds the stream goes on past --seconds while no update was promoted after the drift (0: never).")
    var extendUntilPromoted = 180.0

    @Option(help: "Seconds the stream goes on after an update promoted during that extension.")
    var afterPromotion = 60.0

    func validate() throws {
        guard seconds > 0, rate > 0, bucketSeconds > 0, startAt >= 0, deviceSpacing >= 0 else {
            throw ValidationError(
                "--seconds, --rate and --bucket-seconds must be positive, --start-at and --device-spacing not negative")
        }
        guard (0...1).contains(labelFraction) else { throw ValidationError("--label-fraction must be in 0…1") }
        guard extendUntilPromoted >= 0, afterPromotion >= 0 else {
            throw ValidationError("--extend-until-promoted and --after-promotion must not be negative")
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGINT) { _ in demoStopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in demoStopRequested.store(true, ordering: .relaxed) }
        let directory = URL(fileURLWithPath: agents)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
            FileManager.default.fileExists(atPath: directory.appendingPathComponent("\($0)/samples.fifo").path)
        }.sorted()
        guard !names.isEmpty else { throw DemoError("\(agents): no device directories with a samples.fifo") }
        var machines: [DemoMachine] = []
        for (k, name) in names.enumerated() {
            let start = startAt + Double(k) * deviceSpacing
            var simulation = SensorSimulator.Configuration(seed: seed, sampleRateHz: rate)
            simulation.driftAtSeconds = driftAt >= 0 ? start + driftAt : nil
            machines.append(
                try DemoMachine(
                    device: name, directory: directory.appendingPathComponent(name), simulation: simulation,
                    startSeconds: start, waitSeconds: 60))
        }
        let client = try await cloud.connect()
        let monitor = try await FleetMonitor(client: client, fleet: cloud.fleet)
        var live = DemoLive(
            fleet: cloud.fleet, machines: machines, ledger: DemoLedger(bucketSeconds: bucketSeconds),
            seconds: seconds, driftAt: driftAt >= 0 ? driftAt : nil, labelFraction: labelFraction,
            dataDirectory: URL(fileURLWithPath: cloud.dataDir), cloudLog: cloudLog.map { URL(fileURLWithPath: $0) })
        let interactive = isatty(STDOUT_FILENO) != 0
        let start = ContinuousClock.now
        var lastScreen = -1.0
        var fed = 0.0
        // The stream's end: --seconds, moved on (once) while the drift waits for a promoted update.
        var end = seconds
        var overtime: DemoExtension?
        while !demoStopRequested.load(ordering: .relaxed) {
            let elapsed = (ContinuousClock.now - start).seconds
            if elapsed >= end, overtime == nil, let driftAt = live.driftAt, driftAt < seconds,
                extendUntilPromoted > 0, live.promotion(after: driftAt) == nil
            {
                overtime = DemoExtension(limit: seconds + extendUntilPromoted)
                end = seconds + extendUntilPromoted
                live.extend(to: end)
                show(
                    "\ndemo: no update promoted since the drift at \(Int(driftAt)) s; streaming on until one is (at most \(Int(extendUntilPromoted)) s more)\n"
                )
            }
            if var running = overtime, running.promotedAt == nil, let driftAt = live.driftAt,
                let promoted = live.promotion(after: driftAt)
            {
                running.promotedAt = promoted
                overtime = running
                end = min(running.limit, max(promoted + afterPromotion, seconds))
                live.extend(to: end)
                show("\ndemo: update promoted at \(Int(promoted)) s; streaming \(Int(end - promoted)) s more\n")
            }
            let now = min(elapsed, end)
            fed = now
            for machine in machines { machine.feed(until: now) }
            live.collect(publishingWith: client)
            if elapsed - lastScreen >= (interactive ? 1 : 15) {
                lastScreen = elapsed
                live.watchCloud(now: now)
                let screen = live.screen(now: now, monitor: monitor)
                show(interactive ? "\u{1B}[H\u{1B}[2J" + screen : screen + "\n")
            }
            if elapsed >= end { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        // The end of the stream: each agent reads its pipe to the end, classifies what is left, waits for the
        // verdicts in flight and exits (reporting itself offline). Its last records arrive meanwhile.
        for machine in machines { machine.finish() }
        let ending = ContinuousClock.now
        while ContinuousClock.now - ending < .seconds(30) {
            try? await Task.sleep(for: .milliseconds(250))
            live.collect(publishingWith: client)
            let statuses = monitor.statuses
            if names.allSatisfy({ statuses[$0]?.state == .offline }) { break }
        }
        live.collect(publishingWith: client)
        live.watchCloud(now: fed)
        let versions = DemoLive.versions(monitor)
        monitor.stop()
        await client.disconnect()
        let summary = DemoReport(
            ledger: live.ledger, events: live.events, seconds: fed, driftAt: live.driftAt,
            devices: machines.count, labelsSent: live.labelsSent, finalVersions: versions, plannedSeconds: seconds,
            extensionLimit: overtime?.limit)
        let out = URL(fileURLWithPath: report)
        try summary.write(to: out)
        show("\n" + summary.text)
        show(
            "report: \(out.appendingPathComponent("report.txt").path), \(out.appendingPathComponent("report.svg").path)\n"
        )
    }
}

/// The stream going on past its planned end while the drift waits for a promoted update.
struct DemoExtension {
    /// The latest the stream may end, in stream seconds.
    var limit: Double
    /// When the update was promoted, once it was.
    var promotedAt: Double?
}

/// Writes `text` to standard output at once (not through stdio's buffer, so the screen never lags).
private func show(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Set by SIGINT or SIGTERM: the demo stops feeding and writes its report with what it has.
let demoStopRequested = Atomic<Bool>(false)
