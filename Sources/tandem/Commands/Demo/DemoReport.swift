import Foundation

/// Something that happened during the demo, at a stream time in seconds.
struct DemoEvent: Equatable {
    enum Kind: String {
        case drift, round, canary, promoted, rolledBack = "rolled back", cloudModel = "cloud model"
    }
    var time: Double
    var kind: Kind
    var text: String
}

/// The end-of-demo report: the timeline as CSV, a text summary by phase, and an SVG plot of escalation rate
/// and cascade accuracy over time with the drift and the model updates marked.
struct DemoReport {
    var ledger: DemoLedger
    var events: [DemoEvent]
    var seconds: Double
    var driftAt: Double?
    var devices: Int
    var labelsSent: Int
    var finalVersions: [String: Int]
    /// The stream's planned length; `seconds` is longer when it went on waiting for a promotion.
    var plannedSeconds: Double? = nil
    /// The latest the stream could have ended when it went on waiting for a promotion.
    var extensionLimit: Double? = nil

    /// The phases the summary compares: before the drift, after it, and after each model promoted since.
    var phases: [(name: String, from: Double, to: Double)] {
        var cuts: [(name: String, at: Double)] = [(driftAt == nil ? "whole run" : "before the drift", 0)]
        if let driftAt, driftAt < seconds { cuts.append(("after the drift", driftAt)) }
        for (n, event) in events.filter({ $0.kind == .promoted }).enumerated() {
            cuts.append((n == 0 ? "after the promotion" : "after update \(n + 1)", event.time))
        }
        cuts.sort { $0.at < $1.at }
        var phases: [(String, Double, Double)] = []
        for (i, cut) in cuts.enumerated() {
            let end = i + 1 < cuts.count ? cuts[i + 1].at : seconds
            // A phase shorter than a bucket holds no windows of its own.
            guard end - cut.at >= ledger.bucketSeconds else { continue }
            phases.append((cut.name, cut.at, end))
        }
        return phases
    }

    /// The summary table and the events, as printed at the end and written to report.txt.
    var text: String {
        var lines = [
            "Tandem demo report: \(devices) devices, \(Int(seconds)) s of stream\(driftAt.flatMap { $0 < seconds ? ", drift at \(Int($0)) s" : nil } ?? "")",
            "",
            pad("phase", 30) + pad("windows", 10, right: true) + pad("escalated", 12, right: true)
                + pad("cascade accuracy", 19, right: true),
        ]
        for phase in phases {
            let total = ledger.total(from: phase.from, to: phase.to)
            lines.append(
                pad("\(phase.name) (\(Int(phase.from))–\(Int(phase.to)) s)", 30)
                    + pad("\(total.windows)", 10, right: true)
                    + pad(percent(total.escalationRate), 12, right: true)
                    + pad(percent(total.accuracy), 19, right: true))
        }
        let all = ledger.total()
        lines.append(
            pad("all", 30) + pad("\(all.windows)", 10, right: true) + pad(percent(all.escalationRate), 12, right: true)
                + pad(percent(all.accuracy), 19, right: true))
        // Where the fleet settled: the stream's last minute, from the start of the bucket it begins in.
        if seconds > 60 {
            let from = ((seconds - 60) / ledger.bucketSeconds).rounded(.down) * ledger.bucketSeconds
            let last = ledger.total(from: from, to: seconds)
            lines.append(
                pad("last \(Int((seconds - from).rounded())) s (\(Int(from))–\(Int(seconds)) s)", 30)
                    + pad("\(last.windows)", 10, right: true) + pad(percent(last.escalationRate), 12, right: true)
                    + pad(percent(last.accuracy), 19, right: true))
        }
        lines.append("")
        lines.append(
            "uplink: \(all.escalated) of \(all.windows) windows left the devices (\(percent(all.escalationRate))); "
                + "\(labelsSent) ground-truth labels sent by the operator; \(ledger.corrections) late corrections")
        let versions = finalVersions.sorted { $0.key < $1.key }.map { "\($0.key) on \($0.value)" }
        lines.append("devices at the end: \(versions.isEmpty ? "no status seen" : versions.joined(separator: ", "))")
        if let planned = plannedSeconds, let limit = extensionLimit {
            let promoted = events.first { $0.kind == .promoted && $0.time >= (driftAt ?? 0) }
            lines.append(
                promoted.map {
                    "stream extended from \(Int(planned)) s to \(Int(seconds)) s: no update was promoted after the drift by then; one was at \(Int($0.time)) s"
                }
                    ?? "stream extended from \(Int(planned)) s to \(Int(seconds)) s (at most \(Int(limit)) s): no update was promoted after the drift"
            )
        }
        if let driftAt, let promoted = events.first(where: { $0.kind == .promoted && $0.time >= driftAt }) {
            lines.append("promotion \(Int(promoted.time - driftAt)) s after the drift")
        }
        lines.append("")
        lines.append("events:")
        var update = 0
        for event in events {
            if event.kind == .promoted {
                update += 1
                lines.append("  \(pad("\(Int(event.time)) s", 7, right: true))  update \(update): \(event.text)")
                continue
            }
            lines.append("  \(pad("\(Int(event.time)) s", 7, right: true))  \(event.text)")
        }
        if events.isEmpty { lines.append("  none") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One row per bucket: start second, windows, escalation rate, cascade accuracy, edge model versions.
    var csv: String {
        var out = "start_s,windows,escalated,correct,escalation_rate,cascade_accuracy,edge_models\n"
        for (i, bucket) in ledger.buckets.enumerated() {
            let models = bucket.edgeModels.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
            out +=
                "\(Double(i) * ledger.bucketSeconds),\(bucket.windows),\(bucket.escalated),\(bucket.correct),"
                + "\(bucket.escalationRate.map { String(format: "%.4f", $0) } ?? ""),"
                + "\(bucket.accuracy.map { String(format: "%.4f", $0) } ?? ""),\(models.joined(separator: " "))\n"
        }
        return out
    }

    /// The plot: escalation rate and cascade accuracy per bucket, events as vertical lines.
    var svg: String {
        let width = 900.0, height = 440.0
        let left = 60.0, right = 20.0, top = 40.0, bottom = 70.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let span = max(seconds, ledger.bucketSeconds)
        func x(_ t: Double) -> Double { left + plotWidth * min(max(t / span, 0), 1) }
        func y(_ fraction: Double) -> Double { top + plotHeight * (1 - min(max(fraction, 0), 1)) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(left))\" y=\"22\" font-size=\"15\">Tandem demo: escalation rate and cascade accuracy, \(devices) devices</text>",
        ]
        for step in stride(from: 0.0, through: 1.0, by: 0.2) {
            svg.append(
                "<line x1=\"\(f(left))\" y1=\"\(f(y(step)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(step)))\" stroke=\"#ddd\"/>"
            )
            svg.append(
                "<text x=\"\(f(left - 8))\" y=\"\(f(y(step) + 4))\" text-anchor=\"end\">\(Int((step * 100).rounded())) %</text>"
            )
        }
        let tick = span > 600 ? 120.0 : span > 240 ? 60.0 : 30.0
        for t in stride(from: 0.0, through: span, by: tick) {
            svg.append(
                "<text x=\"\(f(x(t)))\" y=\"\(f(top + plotHeight + 18))\" text-anchor=\"middle\">\(Int(t)) s</text>")
        }
        svg.append(
            "<line x1=\"\(f(left))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(width - right))\" y2=\"\(f(top + plotHeight))\" stroke=\"#333\"/>"
        )
        let colors: [DemoEvent.Kind: String] = [
            .drift: "#c0392b", .round: "#7f8c8d", .canary: "#e67e22", .promoted: "#27ae60", .rolledBack: "#8e44ad",
            .cloudModel: "#16a085",
        ]
        // The phases of the summary as shaded bands under everything else, each named at its foot.
        var bands: [String] = []
        for (i, phase) in phases.enumerated() {
            let shade = ["#f4f6f7", "#fdedec", "#e9f7ef", "#eaf2f8"][min(i, 3)]
            bands.append(
                "<rect x=\"\(f(x(phase.from)))\" y=\"\(f(top))\" width=\"\(f(max(0, x(phase.to) - x(phase.from))))\" height=\"\(f(plotHeight))\" fill=\"\(shade)\"/>"
            )
            bands.append(
                "<text x=\"\(f((x(phase.from) + x(phase.to)) / 2))\" y=\"\(f(top + plotHeight - 6))\" text-anchor=\"middle\" fill=\"#555\">\(escaped(phase.name))</text>"
            )
        }
        // After the background and the title, before the grid.
        svg.insert(contentsOf: bands, at: 3)
        for (i, event) in events.enumerated() where event.kind != .round {
            let color = colors[event.kind] ?? "#333"
            svg.append(
                "<line x1=\"\(f(x(event.time)))\" y1=\"\(f(top))\" x2=\"\(f(x(event.time)))\" y2=\"\(f(top + plotHeight))\" stroke=\"\(color)\" stroke-dasharray=\"5,4\"/>"
            )
            svg.append(
                "<text x=\"\(f(x(event.time) + 3))\" y=\"\(f(top + 12 + Double(i % 4) * 13))\" fill=\"\(color)\">\(escaped(event.kind.rawValue))</text>"
            )
        }
        func polyline(_ value: (DemoLedger.Bucket) -> Double?, color: String) -> String {
            var points: [String] = []
            for (i, bucket) in ledger.buckets.enumerated() {
                guard let v = value(bucket) else { continue }
                points.append("\(f(x((Double(i) + 0.5) * ledger.bucketSeconds))),\(f(y(v)))")
            }
            return
                "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>"
        }
        svg.append(polyline({ $0.escalationRate }, color: "#2c6fbb"))
        svg.append(polyline({ $0.accuracy }, color: "#1e8449"))
        let legendY = height - 22
        svg.append(
            "<line x1=\"\(f(left))\" y1=\"\(f(legendY))\" x2=\"\(f(left + 24))\" y2=\"\(f(legendY))\" stroke=\"#2c6fbb\" stroke-width=\"2\"/>"
        )
        svg.append("<text x=\"\(f(left + 30))\" y=\"\(f(legendY + 4))\">escalation rate</text>")
        svg.append(
            "<line x1=\"\(f(left + 150))\" y1=\"\(f(legendY))\" x2=\"\(f(left + 174))\" y2=\"\(f(legendY))\" stroke=\"#1e8449\" stroke-width=\"2\"/>"
        )
        svg.append(
            "<text x=\"\(f(left + 180))\" y=\"\(f(legendY + 4))\">cascade accuracy (against the simulator's truth)</text>"
        )
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// Writes report.txt, timeline.csv and report.svg into `directory`.
    func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try text.write(to: directory.appendingPathComponent("report.txt"), atomically: true, encoding: .utf8)
        try csv.write(to: directory.appendingPathComponent("timeline.csv"), atomically: true, encoding: .utf8)
        try svg.write(to: directory.appendingPathComponent("report.svg"), atomically: true, encoding: .utf8)
    }

    private func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}

/// "12.3 %", or "–" for no value.
func percent(_ value: Double?) -> String {
    guard let value else { return "–" }
    return String(format: "%.1f %%", value * 100)
}

/// `text` padded with spaces to `width` characters (on the left when `right`).
func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return right ? fill + text : text + fill
}
