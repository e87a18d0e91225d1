import Foundation
import TandemFleet
import TandemProtocol

/// The fleet page (`GET /`): devices, rollouts, training rounds and the label queue, rendered on the server.
///
/// Every section is rendered here and only here: the page's script replaces a section's contents with the
/// fragment `GET /v1/events` sends for it, so the first view and the live ones cannot disagree. Everything that
/// came from a device, a file or the store is HTML-escaped. Actions (promote, roll back, pin, label) are buttons
/// the script turns into API calls with the token the operator typed; the server checks the token, the page
/// does not.
public struct FleetPage: Sendable {
    /// What the page shows.
    public struct Snapshot: Sendable {
        /// Every device the worker follows.
        public var devices: [FleetMonitor.Device]
        /// Each device's recent escalation rates, keyed `fleet/device`.
        public var history: [String: [Double]]
        /// The production edge version, if any.
        public var production: String?
        /// Every rollout's state.
        public var rollouts: [Rollout]
        /// Rollout state files that could not be read.
        public var rolloutProblems: [String]
        /// The fleet whose rollouts and pins this worker can act on (its trainer's), if any.
        public var actionFleet: String?
        /// The training view, if this worker can read rounds.
        public var training: CloudHTTPAPI.TrainingView?
        /// Escalations worth a label, the most worth first.
        public var queue: [LabelQueue.Entry]
        /// The full model's class names (what a label may say).
        public var classNames: [String]
        /// When the snapshot was taken.
        public var now: Date

        /// Creates a snapshot.
        public init(
            devices: [FleetMonitor.Device], history: [String: [Double]], production: String?, rollouts: [Rollout],
            rolloutProblems: [String], actionFleet: String?, training: CloudHTTPAPI.TrainingView?,
            queue: [LabelQueue.Entry], classNames: [String], now: Date
        ) {
            self.devices = devices
            self.history = history
            self.production = production
            self.rollouts = rollouts
            self.rolloutProblems = rolloutProblems
            self.actionFleet = actionFleet
            self.training = training
            self.queue = queue
            self.classNames = classNames
            self.now = now
        }
    }

    /// The sections the live updates replace, by element id.
    public static let sectionIDs = ["summary", "devices", "rollouts", "training", "queue"]

    /// The whole document.
    public static func document(_ s: Snapshot) -> String {
        let sections = Self.sections(s)
        func section(_ id: String) -> String { sections[id] ?? "" }
        let classOptions = s.classNames.map { "<option>\(escape($0))</option>" }.joined()
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Tandem fleet</title>
            <link rel="stylesheet" href="/ui/fleet.css">
            <script src="/ui/fleet.js" defer></script>
            </head>
            <body>
            <header>
            <h1>Tandem fleet</h1>
            <div id="summary">\(section("summary"))</div>
            <label class="token">API token <input id="token" type="password" autocomplete="off" placeholder="needed for actions"></label>
            </header>
            <p id="action-result" role="status" data-status=""></p>
            <section>
            <h2>Devices</h2>
            <input id="device-filter" type="search" placeholder="filter devices, versions, states">
            <table id="device-table">
            <thead><tr><th>fleet</th><th>device</th><th>state</th><th>edge version</th><th>update</th>\
            <th>policy</th><th>escalation rate</th><th>last 5 min</th><th>last seen</th><th>input errors</th><th>windows</th>\
            </tr></thead>
            <tbody id="devices">\(section("devices"))</tbody>
            </table>
            <form id="pin-form" class="action-form">
            <h3>Pin a device</h3>
            <input name="fleet" placeholder="fleet" value="\(escape(s.actionFleet ?? ""))" required>
            <input name="device" placeholder="device" required>
            <input name="version" placeholder="version">
            <button type="button" data-method="POST" data-path="/v1/pins" data-form="pin-form">pin</button>
            <button type="button" data-method="POST" data-path="/v1/pins/unpin" data-form="pin-form">unpin</button>
            </form>
            </section>
            <section>
            <h2>Rollouts</h2>
            <div id="rollouts">\(section("rollouts"))</div>
            </section>
            <section>
            <h2>Training rounds</h2>
            <div id="training">\(section("training"))</div>
            </section>
            <section>
            <h2>Label queue</h2>
            <p class="note">Answered escalations without ground truth, ranked by worth: the full model's doubt \
            (one minus its top-two margin), plus ½ where the edge and the full model disagree; at most 10 per device.</p>
            <div id="queue">\(section("queue"))</div>
            <form id="range-form" class="action-form" data-times="start end">
            <h3>Label a device's time range</h3>
            <input name="fleet" placeholder="fleet (optional)">
            <input name="device" placeholder="device" required>
            <input name="stream" placeholder="stream" required>
            <input name="start" type="datetime-local" step="1" required>
            <input name="end" type="datetime-local" step="1" required>
            <select name="class">\(classOptions)</select>
            <button type="button" data-method="POST" data-path="/v1/labels" data-form="range-form">label range</button>
            </form>
            </section>
            </body>
            </html>
            """
    }

    /// Each section's inner HTML, by element id (``sectionIDs``).
    public static func sections(_ s: Snapshot) -> [String: String] {
        [
            "summary": summary(s), "devices": devices(s), "rollouts": rollouts(s), "training": training(s),
            "queue": queue(s),
        ]
    }

    static func summary(_ s: Snapshot) -> String {
        let online = s.devices.filter { $0.status.state == .online }.count
        let active = s.rollouts.filter { !$0.isFinished }.count
        return
            "<span data-online=\"\(online)\">\(online) online</span> · <span>\(s.devices.count - online) offline</span>"
            + " · production <code>\(escape(s.production ?? "none"))</code>"
            + " · \(active) rollout\(active == 1 ? "" : "s") running"
            + " · updated <time>\(clock(s.now))</time>"
    }

    static func devices(_ s: Snapshot) -> String {
        guard !s.devices.isEmpty else { return "<tr><td colspan=\"11\">no device has reported a status</td></tr>" }
        var html = ""
        html.reserveCapacity(s.devices.count * 400)
        for d in s.devices {
            let status = d.status
            let key = "\(d.fleet)/\(status.device)"
            let update = status.modelUpdate?.description ?? ""
            let rejected = update.hasPrefix("rejected")
            let lastSeen = d.lastSeen.map { ago(s.now.timeIntervalSince($0)) } ?? "retained"
            html += "<tr data-device=\"\(escape(status.device))\" data-fleet=\"\(escape(d.fleet))\""
            html += " data-version=\"\(escape(status.modelVersion ?? ""))\" class=\"\(status.state.rawValue)\">"
            html += "<td>\(escape(d.fleet))</td><td>\(escape(status.device))</td>"
            html += "<td><span class=\"state \(status.state.rawValue)\">\(status.state.rawValue)</span></td>"
            html += "<td class=\"version\">\(escape(status.modelVersion ?? "–"))</td>"
            html += "<td\(rejected ? " class=\"rejected\"" : "")>\(escape(update))</td>"
            let policyUpdate = status.policyUpdate?.description ?? ""
            let policyRejected = policyUpdate.hasPrefix("rejected")
            html += "<td\(policyRejected ? " class=\"rejected\" title=\"\(escape(policyUpdate))\"" : "")>"
            html += "\(escape(status.policyVersion ?? "local"))</td>"
            html += "<td>\(status.escalationRate.map(percent) ?? "–")</td>"
            html += "<td>\(sparkline(s.history[key] ?? []))</td>"
            html += "<td>\(lastSeen)</td><td>\(status.inputErrorTotal.map(String.init) ?? "0")</td>"
            html += "<td>\(status.windows.map(String.init) ?? "–")</td></tr>\n"
        }
        return html
    }

    static func rollouts(_ s: Snapshot) -> String {
        var html = ""
        for problem in s.rolloutProblems { html += "<p class=\"problem\">\(escape(problem))</p>" }
        guard !s.rollouts.isEmpty else { return html + "<p>no rollout</p>" }
        html += "<table><thead><tr><th>fleet</th><th>candidate</th><th>replacing</th><th>phase</th><th>cohort</th>"
        html += "<th>canary rate</th><th>baseline rate</th><th>decision</th><th></th></tr></thead><tbody>"
        for r in s.rollouts.sorted(by: { ($0.isFinished ? 1 : 0, $0.fleet) < ($1.isFinished ? 1 : 0, $1.fleet) }) {
            let o = r.lastObservation
            let decision = r.endReason ?? o?.waitingFor.map { "waiting for \($0)" } ?? ""
            html += "<tr data-rollout=\"\(escape(r.fleet))\" data-phase=\"\(r.phase.rawValue)\">"
            html += "<td>\(escape(r.fleet))</td><td><code>\(escape(r.version))</code></td>"
            html += "<td><code>\(escape(r.previousVersion))</code></td><td>\(r.phase.rawValue)</td>"
            html += "<td>\(o?.cohortOnCandidate ?? 0) of \(r.cohort.count) on it (\(r.others.count) others)</td>"
            html += "<td>\(o?.canaryEscalationRate.map(percent) ?? "–")</td>"
            html += "<td>\(o?.baselineEscalationRate.map(percent) ?? "–")</td><td>\(escape(decision))</td><td>"
            if !r.isFinished && r.fleet == s.actionFleet {
                let path = "/v1/rollouts/\(escape(r.fleet))"
                html += "<button type=\"button\" data-method=\"POST\" data-path=\"\(path)/promote\">promote</button> "
                html += "<button type=\"button\" class=\"danger\" data-method=\"POST\" data-path=\"\(path)/rollback\">"
                html += "roll back</button>"
            }
            html += "</td></tr>"
        }
        return html + "</tbody></table>"
    }

    static func training(_ s: Snapshot) -> String {
        guard let t = s.training else { return "<p>this worker keeps no training rounds</p>" }
        var html = ""
        if let current = t.current {
            html += "<p class=\"running\">round running since \(clock(Date(timeIntervalSince1970: current.startedAt)))"
            html += " (\(escape(current.reasons.joined(separator: "; ")))): <b>\(escape(current.step))</b></p>"
            if let last = current.lines.last { html += "<p class=\"note\">\(escape(last))</p>" }
        } else {
            html += "<p>\(t.trainer ? "no round running" : "this worker does not train")</p>"
        }
        guard !t.rounds.isEmpty else { return html + "<p>no round recorded</p>" }
        html += "<table><thead><tr><th>started</th><th>took</th><th>gate</th><th>outcome</th><th>version</th>"
        html += "<th>summary</th></tr></thead><tbody>"
        for r in t.rounds {
            html += "<tr><td>\(clock(Date(timeIntervalSince1970: r.startedAt)))</td>"
            html += "<td>\(Int((r.finishedAt - r.startedAt).rounded())) s</td>"
            html += "<td class=\"\(r.passed ? "passed" : "failed")\">\(r.passed ? "passed" : "failed")</td>"
            html += "<td>\(escape(r.outcome ?? "–"))</td><td><code>\(escape(r.version ?? "–"))</code></td>"
            html += "<td>\(escape(String(r.summary.prefix(300))))</td></tr>"
        }
        return html + "</tbody></table>"
    }

    static func queue(_ s: Snapshot) -> String {
        guard !s.queue.isEmpty else { return "<p>nothing waits for a label</p>" }
        let options = s.classNames.map { "<option>\(escape($0))</option>" }.joined()
        var html = "<table><thead><tr><th>worth</th><th>device</th><th>stream</th><th>received</th><th>edge said</th>"
        html += "<th>full model said</th><th>label</th></tr></thead><tbody>"
        for e in s.queue {
            let id = e.escalationId.uuidString
            html += "<tr data-escalation=\"\(id)\"><td>\(String(format: "%.2f", e.worth))</td>"
            html += "<td>\(escape(e.device))</td><td>\(escape(e.stream))</td>"
            html += "<td>\(clock(Date(timeIntervalSince1970: e.receivedAt)))</td>"
            html += "<td>\(escape(e.edgeClass)) (\(percent(e.edgeConfidence)))</td>"
            html += "<td>\(escape(e.cloudClass)) (margin \(String(format: "%.2f", e.cloudMargin)))</td>"
            html += "<td><form id=\"label-\(id)\" class=\"inline\"><input type=\"hidden\" name=\"escalationId\" "
            html += "value=\"\(id)\"><select name=\"label\">\(options)</select> <button type=\"button\" "
            html +=
                "data-method=\"POST\" data-path=\"/v1/labels\" data-form=\"label-\(id)\">label</button></form></td></tr>"
        }
        return html + "</tbody></table>"
    }

    /// An inline SVG polyline of `rates` (0…1), scaled to the larger of their maximum and 5 %.
    static func sparkline(_ rates: [Double]) -> String {
        guard rates.count >= 2 else { return "" }
        let top = max(rates.max() ?? 0, 0.05)
        let width = 60.0
        let height = 16.0
        let step = width / Double(rates.count - 1)
        let points = rates.enumerated().map { i, r in
            String(format: "%.1f,%.1f", Double(i) * step, height - min(1, r / top) * (height - 1) - 0.5)
        }.joined(separator: " ")
        return "<svg class=\"spark\" width=\"60\" height=\"16\" viewBox=\"0 0 60 16\"><polyline points=\"\(points)\"/>"
            + "</svg>"
    }

    static func percent(_ fraction: Double) -> String {
        fraction.isFinite ? String(format: "%.1f %%", fraction * 100) : "–"
    }

    static func ago(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "–" }
        let s = max(0, Int(seconds.rounded()))
        if s < 120 { return "\(s) s ago" }
        if s < 7200 { return "\(s / 60) min ago" }
        return "\(s / 3600) h ago"
    }

    static func clock(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withFullTime, .withSpaceBetweenDateAndTime]
        return formatter.string(from: date)
    }

    /// `text` with `&`, `<`, `>`, `"` and `'` replaced by their character references.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
