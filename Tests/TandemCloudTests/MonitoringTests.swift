import Foundation
import TandemProtocol
import TandemTestSupport
import Testing

@testable import TandemCloud
@testable import TandemFleet

/// The figures behind the alert rules and the dashboard, and the shipped files themselves
/// (`cloud-config/prometheus`, `cloud-config/grafana`), checked with Prometheus's own `promtool`.
struct MonitoringTests {
    static let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("cloud-config")
    static let rules = config.appendingPathComponent("prometheus/tandem-alerts.yml")
    static let dashboard = config.appendingPathComponent("grafana/tandem-fleet.json")

    static func device(_ name: String, fleet: String = "f", windows: Int?, escalations: Int?) -> FleetMonitor.Device {
        FleetMonitor.Device(
            fleet: fleet, status: DeviceStatus(device: name, windows: windows, escalations: escalations), lastSeen: nil)
    }

    @Test("fleet totals: first sight sets the start, growth adds up, a restart counts its new value, bad counts skip")
    func fleetTotals() {
        let totals = FleetCounterTotals()
        #expect(totals.growth(of: [Self.device("a", windows: 500, escalations: 50)]) == (0, 0))
        #expect(
            totals.growth(of: [
                Self.device("a", windows: 600, escalations: 55), Self.device("b", windows: 10, escalations: 1),
            ]) == (100, 5))
        // `a` restarted (its counters went down); `b` grew; the same device id in another fleet is another device.
        #expect(
            totals.growth(of: [
                Self.device("a", windows: 30, escalations: 2), Self.device("b", windows: 40, escalations: 4),
                Self.device("a", fleet: "g", windows: 7, escalations: 7),
            ]) == (60, 5))
        // No counters, or counters out of range, add nothing and leave the starting point alone.
        #expect(
            totals.growth(of: [
                Self.device("a", windows: nil, escalations: nil),
                Self.device("b", windows: DeviceStatus.maximumCount + 1, escalations: 5),
            ]) == (0, 0))
        #expect(totals.growth(of: [Self.device("b", windows: 41, escalations: 4)]) == (1, 0))
    }

    @Test("audit action counts: read as the log grows, a half-written line waits, a shorter log starts over")
    func auditActions() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent(AuditLog.fileName)
        let counter = AuditActionCounter(url: url)
        #expect(counter.counts().actions.isEmpty)
        let log = AuditLog(url: url)
        try log.append(AuditRecord(actor: "a", action: "rollout-start", version: "v2", reason: "r"))
        try log.append(AuditRecord(actor: "a", action: "rollout-rollback", version: "v2", reason: "r"))
        #expect(counter.counts().actions == ["rollout-start": 1, "rollout-rollback": 1])
        // A line in the middle of being written is not counted (nor called corrupt) until it is whole.
        let record = try JSONEncoder().encode(
            AuditRecord(actor: "a", action: "rollout-rollback", version: "v3", reason: "r"))
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: record.prefix(10))
        #expect(counter.counts() == (["rollout-start": 1, "rollout-rollback": 1], 0))
        try handle.write(contentsOf: record.dropFirst(10) + [0x0A] + Data("not json\n".utf8))
        try handle.close()
        #expect(counter.counts() == (["rollout-start": 1, "rollout-rollback": 2], 1))
        // Replaced by a shorter log: counted from its start.
        try FileManager.default.removeItem(at: url)
        try log.append(AuditRecord(actor: "a", action: "rollout-promote", version: "v4", reason: "r"))
        #expect(counter.counts() == (["rollout-promote": 1], 0))
    }

    @Test("round outcomes are counted by the store, rounds recorded without an outcome apart")
    func roundOutcomes() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let store = try SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path)
        #expect(try store.roundOutcomeCounts().isEmpty)
        for (index, outcome) in ["promoted", "gate-failed", "gate-failed", nil].enumerated() {
            try store.recordRound(
                .init(
                    startedAt: Double(index), finishedAt: Double(index) + 1, passed: outcome == "promoted",
                    summary: "s", version: "v\(index)", outcome: outcome, report: nil))
        }
        #expect(try store.roundOutcomeCounts() == ["promoted": 1, "gate-failed": 2, "unrecorded": 1])
        let metrics = CloudMetrics()
        metrics.setRounds(try store.roundOutcomeCounts())
        let text = metrics.render()
        #expect(text.contains(#"tandem_cloud_store_rounds{outcome="gate-failed"} 2"#))
        #expect(text.contains(#"tandem_cloud_store_rounds{outcome="rollout-failed"} 0"#))
        #expect(text.contains(#"tandem_cloud_store_rounds{outcome="unrecorded"} 1"#))
    }

    @Test("promtool: the alert rules load and their unit tests (cloud-config/prometheus/*.test.yml) pass")
    func alertRules() throws {
        let check = try Self.promtool(["check", "rules", Self.rules.path])
        #expect(check.status == 0, "\(check.standardOutput)\(check.standardError)")
        #expect(check.standardOutput.contains("SUCCESS: 8 rules found"), "\(check.standardOutput)")
        let unit = try Self.promtool(
            ["test", "rules", Self.config.appendingPathComponent("prometheus/tandem-alerts.test.yml").path])
        #expect(unit.status == 0, "\(unit.standardOutput)\(unit.standardError)")
        #expect(unit.standardOutput.contains("SUCCESS"), "\(unit.standardOutput)")
    }

    @Test("the dashboard: Grafana's dashboard fields, panels on the 24-column grid without overlap, valid PromQL")
    func dashboard() throws {
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: Self.dashboard)) as? [String: Any])
        #expect(json["uid"] as? String == "tandem-fleet")
        #expect((json["title"] as? String)?.isEmpty == false)
        #expect((json["schemaVersion"] as? Int).map { $0 >= 36 } == true)
        let templating = try #require((json["templating"] as? [String: Any])?["list"] as? [[String: Any]])
        #expect(templating.contains { $0["name"] as? String == "datasource" && $0["type"] as? String == "datasource" })
        let panels = try #require(json["panels"] as? [[String: Any]])
        #expect(panels.count >= 10)
        var ids = Set<Int>()
        var cells = Set<[Int]>()
        var expressions: [String] = []
        for panel in panels {
            let title = panel["title"] as? String ?? "?"
            let id = try #require(panel["id"] as? Int, "\(title): no id")
            #expect(ids.insert(id).inserted, "\(title): id \(id) twice")
            #expect(["stat", "timeseries", "gauge", "table"].contains(panel["type"] as? String ?? ""), "\(title)")
            let grid = try #require(panel["gridPos"] as? [String: Int], "\(title): no gridPos")
            let (x, y, w, h) = (grid["x"] ?? -1, grid["y"] ?? -1, grid["w"] ?? 0, grid["h"] ?? 0)
            #expect(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24, "\(title): \(grid)")
            for column in x..<max(x + w, x) {
                for row in y..<max(y + h, y) {
                    #expect(
                        cells.insert([column, row]).inserted, "\(title) overlaps another panel at \(column),\(row)")
                }
            }
            let targets = try #require(panel["targets"] as? [[String: Any]], "\(title): no targets")
            #expect(!targets.isEmpty, "\(title)")
            for target in targets {
                let expr = try #require(target["expr"] as? String, "\(title): a target without expr")
                #expect(target["refId"] is String, "\(title)")
                expressions.append(expr)
            }
        }
        // promtool has no expression checker of its own: each expression becomes a recording rule, with
        // Grafana's $__rate_interval replaced by a fixed range.
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        var file = "groups:\n  - name: dashboard\n    rules:\n"
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        for (index, expr) in expressions.enumerated() {
            let query = expr.replacingOccurrences(of: "$__rate_interval", with: "5m")
            let quoted = String(decoding: try encoder.encode(query), as: UTF8.self)
            file += "      - record: dashboard_expression_\(index)\n        expr: \(quoted)\n"
        }
        let path = scratch.url.appendingPathComponent("dashboard-rules.yml").path
        try file.write(toFile: path, atomically: true, encoding: .utf8)
        let check = try Self.promtool(["check", "rules", path])
        #expect(check.status == 0, "\(check.standardOutput)\(check.standardError)")
        #expect(check.standardOutput.contains("SUCCESS: \(expressions.count) rules found"), "\(check.standardOutput)")
        Self.expectExported(expressions.joined(separator: "\n"), what: "the dashboard")
        Self.expectExported(try String(contentsOf: Self.rules, encoding: .utf8), what: "the alert rules")
    }

    /// Every `tandem_cloud_…` series `text` queries is one `/metrics` exposes.
    static func expectExported(_ text: String, what: String) {
        // What a scrape sets before it renders (CloudHTTPAPI.renderMetrics).
        let metrics = CloudMetrics()
        metrics.setDevices(online: 0, offline: 0)
        let exposition = metrics.render()
        var exported = Set<String>()
        for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
            exported.insert(String(line.prefix { $0 != "{" && $0 != " " }))
        }
        let names = text.matches(of: /tandem_cloud_[a-z_]+/).map { String($0.output) }
        #expect(!names.isEmpty)
        for name in Set(names) {
            #expect(exported.contains(name), "\(what) queries \(name), which /metrics does not expose")
        }
    }

    /// Runs Prometheus's `promtool` with `arguments`.
    static func promtool(_ arguments: [String]) throws -> CommandResult {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(directory)/promtool"
            if FileManager.default.isExecutableFile(atPath: path) {
                return try runCommand(URL(fileURLWithPath: path), arguments)
            }
        }
        Issue.record("promtool is not installed: Debian's prometheus package has it (scripts/test installs it)")
        throw CancellationError()
    }
}
