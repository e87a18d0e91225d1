import Foundation
import TandemFleet
import TandemMQTT
import TandemProtocol

/// The demo's running state: the machines, the score so far, what the cloud did, and the screen.
struct DemoLive {
    let fleet: String
    let machines: [DemoMachine]
    private(set) var ledger: DemoLedger
    /// Where the stream ends now (moved on while the drift waits for a promoted update).
    private(set) var seconds: Double
    let driftAt: Double?
    let labelFraction: Double
    let dataDirectory: URL
    let cloudLog: URL?
    private(set) var events: [DemoEvent] = []
    private(set) var labelsSent = 0
    private var windowsSeen = 0
    private var throughputSamples: [(time: ContinuousClock.Instant, windows: Int)] = []
    private var cloudLines: [String] = []
    private var cloudLogOffset: UInt64 = 0
    private var rolloutKey: String?
    private var rolloutLine = "none yet"

    init(
        fleet: String, machines: [DemoMachine], ledger: DemoLedger, seconds: Double, driftAt: Double?,
        labelFraction: Double, dataDirectory: URL, cloudLog: URL?
    ) {
        self.fleet = fleet
        self.machines = machines
        self.ledger = ledger
        self.seconds = seconds
        self.driftAt = driftAt
        self.labelFraction = labelFraction
        self.dataDirectory = dataDirectory
        self.cloudLog = cloudLog
    }

    /// Moves the stream's end (for the screen).
    mutating func extend(to end: Double) { seconds = end }

    /// When the first edge update after `time` was promoted, if one was.
    func promotion(after time: Double) -> Double? {
        events.first { $0.kind == .promoted && $0.time >= time }?.time
    }

    /// Scores every new record and sends the operator's labels for the sampled share of cloud answers.
    mutating func collect(publishingWith client: MQTTClient) {
        for machine in machines {
            for record in machine.newRecords() {
                let truth = machine.truth(at: record.windowEnd)
                ledger.add(record, truth: truth)
                if !record.isCorrection { windowsSeen += 1 }
                guard !record.isCorrection, record.fromCloud, let id = record.escalationId, let truth,
                    Self.sampled(id, fraction: labelFraction)
                else { continue }
                let label = GroundTruthLabel(escalationId: id, label: truth)
                let message = MQTTMessage(
                    topic: DeviceTopics(fleet: fleet, device: machine.device).labels, payload: label.encoded(),
                    qos: .atLeastOnce)
                if (try? client.publish(message)) != nil { labelsSent += 1 }
            }
        }
        let now = ContinuousClock.now
        throughputSamples.append((now, windowsSeen))
        throughputSamples.removeAll { now - $0.time > .seconds(5) }
    }

    /// Whether the operator labels escalation `id`: decided by the id's random bits, so the same share
    /// of every device's answers is labelled.
    static func sampled(_ id: UUID, fraction: Double) -> Bool {
        let bits = UInt16(id.uuid.0) << 8 | UInt16(id.uuid.1)
        return Double(bits) < fraction * 65536
    }

    /// Notes the drift, rollout changes (from the cloud's rollout state file) and the trainer's log lines.
    mutating func watchCloud(now: Double) {
        if let driftAt, now >= driftAt, !events.contains(where: { $0.kind == .drift }) {
            events.append(
                DemoEvent(time: driftAt, kind: .drift, text: "drift: every machine moves to a new operating regime"))
        }
        let stateFile = dataDirectory.appendingPathComponent("rollout-\(fleet).json")
        if let rollout = try? Rollout.read(from: stateFile) {
            let key = "\(rollout.version) \(rollout.phase.rawValue)"
            if key != rolloutKey {
                let firstSight = rolloutKey == nil
                rolloutKey = key
                switch rollout.phase {
                case .canary:
                    events.append(
                        DemoEvent(
                            time: now, kind: .canary,
                            text:
                                "canary: \(rollout.version) on \(rollout.cohort.count) of \(rollout.cohort.count + rollout.others.count) devices"
                        ))
                case .promoted where !firstSight:
                    events.append(DemoEvent(time: now, kind: .promoted, text: "\(rollout.version) promoted"))
                case .rolledBack where !firstSight:
                    events.append(
                        DemoEvent(
                            time: now, kind: .rolledBack,
                            text: "\(rollout.version) rolled back: \(rollout.endReason ?? "no reason recorded")"))
                default: break
                }
            }
            var line = "\(rollout.version) \(rollout.phase.rawValue)"
            if rollout.phase == .canary, let observation = rollout.lastObservation {
                line +=
                    " on \(rollout.cohort.count) devices: canary \(percent(observation.canaryEscalationRate)) vs "
                    + "baseline \(percent(observation.baselineEscalationRate)) escalated"
                if let waiting = observation.waitingFor { line += " (waiting for \(waiting))" }
            } else if let reason = rollout.endReason {
                line += ": \(reason)"
            }
            rolloutLine = line
        }
        readCloudLog(now: now)
    }

    private mutating func readCloudLog(now: Double) {
        guard let cloudLog, let handle = try? FileHandle(forReadingFrom: cloudLog) else { return }
        defer { try? handle.close() }
        // A log that was truncated or replaced is read again from its start.
        if let size = try? handle.seekToEnd(), size < cloudLogOffset { cloudLogOffset = 0 }
        guard (try? handle.seek(toOffset: cloudLogOffset)) != nil, let data = try? handle.readToEnd() else { return }
        guard let end = data.lastIndex(of: UInt8(ascii: "\n")) else { return }
        cloudLogOffset += UInt64(end - data.startIndex + 1)
        for line in String(decoding: data[data.startIndex...end], as: UTF8.self).split(separator: "\n") {
            let interesting = ["trainer", "round", "rollout", "register", "canary", "promot", "gate", "full model"]
            guard interesting.contains(where: { line.contains($0) }) else { continue }
            let text = Self.shortened(line)
            cloudLines.append(text)
            if line.contains("round: gate:") {
                events.append(DemoEvent(time: now, kind: .round, text: text))
            } else if line.contains("full model: ") && line.contains(" promoted (was ") {
                events.append(DemoEvent(time: now, kind: .cloudModel, text: text))
            } else if line.contains("round: phases: ") {
                events.append(DemoEvent(time: now, kind: .round, text: text))
            }
        }
        cloudLines = Array(cloudLines.suffix(4))
    }

    /// A worker log line without its time, level, label, metadata and source (`… tandem-cloud: worker=1
    /// [TandemCloud] `) and the service's name, at most 140 characters.
    static func shortened(_ line: Substring) -> String {
        var text = line
        if let label = text.range(of: " tandem-cloud:"),
            let source = text[label.upperBound...].range(of: " [TandemCloud] ")
        {
            text = text[source.upperBound...]
        }
        if text.hasPrefix("trainer: ") { text = text.dropFirst("trainer: ".count) }
        return text.count > 140 ? String(text.prefix(139)) + "…" : String(text)
    }

    /// How many devices report each edge model version.
    static func versions(_ monitor: FleetMonitor) -> [String: Int] {
        var versions: [String: Int] = [:]
        for status in monitor.statuses.values { versions[status.modelVersion ?? "?", default: 0] += 1 }
        return versions
    }

    /// The one-screen summary.
    func screen(now: Double, monitor: FleetMonitor) -> String {
        let statuses = monitor.statuses.values
        let online = statuses.filter { $0.state == .online }.count
        let versionText = Self.versions(monitor).sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(
            separator: ", ")
        var rate = 0.0
        if let first = throughputSamples.first, let last = throughputSamples.last, last.time > first.time {
            rate = Double(last.windows - first.windows) / (last.time - first.time).seconds
        }
        // The last ten seconds of complete buckets (records lag their windows by up to the verdict deadline).
        let settled = now - 1
        let recent = ledger.total(from: max(0, settled - 10 - ledger.bucketSeconds), to: settled - ledger.bucketSeconds)
        let all = ledger.total()
        let regime = driftAt.map { now >= $0 ? "drifted at \(Int($0)) s" : "drift at \(Int($0)) s" } ?? "no drift"
        var lines = [
            "Tandem live demo · fleet \(fleet) · \(machines.count) devices · \(Int(now)) s of \(Int(seconds)) s · \(regime)",
            "",
            "devices     \(online) online, \(statuses.count - online) offline or unseen\(statuses.isEmpty ? "" : "; edge models: \(versionText)")",
            "throughput  \(Int(rate.rounded())) windows/s; \(all.windows) windows scored so far",
            "escalation  \(percent(recent.escalationRate)) of windows in the last 10 s (\(percent(all.escalationRate)) overall); \(labelsSent) operator labels sent",
            "accuracy    \(percent(recent.accuracy)) cascade accuracy in the last 10 s (\(percent(all.accuracy)) overall)",
            "rollout     \(rolloutLine)",
            "",
            "cloud (last trainer and rollout lines):",
        ]
        lines += cloudLines.isEmpty ? ["  waiting for the trainer"] : cloudLines.map { "  " + $0 }
        lines += ["", "events:"]
        lines +=
            events.isEmpty
            ? ["  none yet"] : events.suffix(6).map { "  \(pad("\(Int($0.time)) s", 6, right: true))  \($0.text)" }
        lines += ["", "timeline     windows  escalated  cascade accuracy  edge models"]
        let shown = max(0, ledger.buckets.count - 8)
        for (i, bucket) in ledger.buckets.enumerated().dropFirst(shown) {
            let models = bucket.edgeModels.sorted { $0.key < $1.key }.map(\.key).joined(separator: ", ")
            lines.append(
                "  \(pad("\(Int(Double(i) * ledger.bucketSeconds)) s", 7, right: true))  \(pad("\(bucket.windows)", 9, right: true))  \(pad(percent(bucket.escalationRate), 9, right: true))  \(pad(percent(bucket.accuracy), 16, right: true))  \(models)"
            )
        }
        if machines.contains(where: { $0.droppedSamples > 0 }) {
            let dropped = machines.reduce(0) { $0 + $1.droppedSamples }
            lines.append("")
            lines.append("warning: \(dropped) samples dropped because an agent stopped reading its pipe")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
