import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import TandemCloud
import TandemCore
import TandemFleet
import TandemFleetTestSupport
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

/// The fleet page's parts without a browser: ranking, sparkline samples, escaping.
struct FleetPageTests {
    func row(_ device: String, edge: Int, cloud: Int, _ probabilities: [Float], at time: Double)
        -> SampleStore.UnlabelledEscalation
    {
        SampleStore.UnlabelledEscalation(
            id: UUID(), fleet: "plant", device: device, stream: "vibration", edgeLabel: edge, edgeConfidence: 0.6,
            verdictLabel: cloud, probabilities: probabilities, receivedAt: time, windowStart: nil)
    }

    @Test("the label queue puts the full model's doubt and edge–cloud disagreement first, at most N per device")
    func labelQueueRanking() {
        let sure = row("a", edge: 0, cloud: 0, [0.98, 0.02], at: 5)
        let doubtful = row("b", edge: 0, cloud: 0, [0.55, 0.45], at: 1)
        let disagreeing = row("c", edge: 1, cloud: 0, [0.9, 0.1], at: 2)
        let worst = row("d", edge: 1, cloud: 0, [0.5, 0.5], at: 3)
        let broken = row("e", edge: 0, cloud: 0, [.nan, 0.7, 0.2], at: 4)
        let queue = LabelQueue().rank([sure, doubtful, disagreeing, worst, broken], classNames: ["ok", "fault"])
        #expect(queue.map(\.device) == ["d", "b", "c", "e", "a"])
        #expect(abs(queue[0].worth - 1.5) < 1e-9 && abs(queue[4].worth - 0.04) < 1e-6)
        #expect(queue[2].edgeClass == "fault" && queue[2].cloudClass == "ok")
        #expect(abs(queue[3].cloudMargin - 0.5) < 1e-6, "a NaN probability is ignored")
        let flood = (0..<30).map { row("noisy", edge: 1, cloud: 0, [0.5, 0.5], at: Double($0)) } + [doubtful]
        let capped = LabelQueue(length: 50, maximumPerDevice: 10).rank(flood, classNames: [])
        #expect(capped.count == 11 && capped.filter { $0.device == "noisy" }.count == 10)
        #expect(capped.first?.receivedAt == 29, "the newest first among equals")
        #expect(capped.first?.cloudClass == "#0", "an index without a name")
        #expect(LabelQueue(length: 3).rank(flood, classNames: []).count == 3)
    }

    @Test("sparkline samples: one per interval, bad rates skipped, at most capacity, gone devices dropped")
    func history() {
        let history = FleetHistory(capacity: 3, intervalSeconds: 10)
        _ = history.sample([("p/a", 0.1), ("p/b", nil)], now: 0)
        _ = history.sample([("p/a", 0.9), ("p/b", .nan)], now: 5)
        _ = history.sample([("p/a", 0.2), ("p/b", 2)], now: 10)
        _ = history.sample([("p/a", 0.3), ("p/b", 0.5)], now: 20)
        let series = history.sample([("p/a", 0.4)], now: 30)
        #expect(series == ["p/a": [0.2, 0.3, 0.4]])
    }

    @Test("whatever a device reports is escaped; an empty fleet says so; a rollout of another fleet has no buttons")
    func escaping() throws {
        var status = DeviceStatus(device: "box-1", state: .online)
        status.modelVersion = "v1"
        status.modelUpdate = .rejected("v2", reason: "<script>alert(1)</script> & \"quotes\"")
        let device = FleetMonitor.Device(fleet: "plant", status: status, lastSeen: Date())
        let rollout = try Rollout.plan(
            fleet: "plant", version: "v2", previousVersion: "v1", devices: ["box-1"],
            policy: RolloutPolicy(canaryPercent: 100), now: Date())
        var snapshot = FleetPage.Snapshot(
            devices: [device], history: ["plant/box-1": [0.1, 0.2, 0.05]], production: "v1<b>", rollouts: [rollout],
            rolloutProblems: ["rollout-x.json: <bad>"], actionFleet: "other", training: nil, queue: [],
            classNames: ["ok"], now: Date())
        let html = FleetPage.document(snapshot)
        #expect(!html.contains("<script>alert") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;"))
        #expect(html.contains("v1&lt;b&gt;") && html.contains("rollout-x.json: &lt;bad&gt;"))
        #expect(html.contains("class=\"rejected\"") && html.contains("<polyline points=\""))
        #expect(!html.contains("/v1/rollouts/plant/rollback"))
        snapshot.actionFleet = "plant"
        #expect(FleetPage.document(snapshot).contains("data-path=\"/v1/rollouts/plant/rollback\""))
        snapshot.devices = []
        #expect(FleetPage.document(snapshot).contains("no device has reported a status"))
    }
}

/// The fleet page in a real headless Chromium, served by the worker's HTTP API over a real mosquitto: the devices
/// of a fleet with their versions, live updates, a rollback refused without the token and done with it, a label.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct FleetPageBrowserTests {
    static let token = "page-token-for-tests"
    static let devices = ["box-0", "box-3", "box-6", "box-9"]

    @Test("Chromium lists the fleet's devices and versions; rollback without the token is refused, with it done")
    func pageInChromium() async throws {
        try await MosquittoBroker.with { broker in
            let fixture = try RegistryFixture()
            defer { fixture.scratch.remove() }
            try fixture.register(try edgeArtifact(version: "v1"), source: "initial")
            try fixture.register(try edgeArtifact(version: "v2", seed: 2), source: "retrain")
            try fixture.registry.setProduction("v1")
            let audit = AuditLog(url: fixture.registry.directory.appendingPathComponent(AuditLog.fileName))
            let client = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: "cloud"))
            try await client.connect()
            defer { Task { await client.disconnect() } }
            // Devices as their agents report themselves: retained statuses on their own topics.
            let reporter = try MQTTClient(
                configuration: MQTTClientConfiguration(port: broker.port, clientID: "reporter"))
            try await reporter.connect()
            for (i, device) in Self.devices.enumerated() {
                var status = DeviceStatus(device: device, state: i == 3 ? .offline : .online)
                status.modelVersion = "v1"
                status.modelUpdate = .active("v1")
                status.windows = 1000 * (i + 1)
                status.escalations = 100 * (i + 1)
                status.escalationRate = 0.1
                _ = try await reporter.publish(
                    MQTTMessage(
                        topic: "tandem/v1/plant/\(device)/status", payload: status.encoded(), qos: .atLeastOnce,
                        retain: true))
            }
            let monitor = try await FleetMonitor(client: client, fleet: "plant")
            defer { monitor.stop() }
            #expect(await waitUntil { monitor.statuses.count == Self.devices.count })
            let distributor = ModelDistributor(client: client, fleet: "plant", signer: try fixture.signer())
            let controller = RolloutController(
                registry: fixture.registry, distributor: distributor, monitor: monitor, audit: audit, actor: "ana")
            let started = try await controller.start(
                version: "v2", policy: RolloutPolicy(canaryPercent: 50, soakSeconds: 3600))
            #expect(started.phase == .canary && !started.cohort.isEmpty)

            // Answered escalations for the label queue.
            let store = try SampleStore(path: fixture.scratch.url.appendingPathComponent("tandem.sqlite").path)
            let doubtful = UUID()
            for (id, probabilities) in [(doubtful, [Float(0.5), 0.5]), (UUID(), [0.99, 0.01])] {
                try store.insert(
                    SampleStore.Escalation(
                        id: id, device: "box-3", stream: "vibration", payload: [1, 2, 3],
                        responseTopic: "tandem/v1/plant/box-3/verdicts", edgeLabel: 1, edgeConfidence: 0.5,
                        edgeModel: "v1", receivedAt: Date().timeIntervalSince1970, fleet: "plant"))
                try store.answer(
                    [(id, SampleStore.StoredVerdict(label: 0, probabilities: probabilities, model: "full-1"))],
                    at: Date().timeIntervalSince1970)
            }
            let logger = Logger(label: "fleet-page-test")
            var configuration = CloudHTTPAPI.Configuration()
            configuration.address = CloudHTTPAPI.Address(host: "127.0.0.1", port: 0)
            configuration.token = Self.token
            let api = CloudHTTPAPI(
                configuration: configuration, registry: fixture.registry, store: store,
                labels: LabelIntake(classNames: ["normal", "fault"], store: store, logger: logger),
                metrics: CloudMetrics(), devices: { monitor.devices }, rolloutController: { controller },
                logger: logger)
            let port = Mutex<Int?>(nil)
            let application = api.application(logger: logger) { address in port.withLock { $0 = address.port } }
            let server = Task { try await application.runService() }
            defer { server.cancel() }
            #expect(await waitUntil(startLimit) { port.withLock { $0 } != nil })
            let base = "http://127.0.0.1:\(port.withLock { $0 } ?? 0)"

            let browser = try HeadlessChromium()
            defer { browser.close() }
            let outcome: Result<Void, any Error> = await offThePool {
                Result { try Self.drive(browser, base: base, cohort: started.cohort, doubtful: doubtful) }
            }
            try outcome.get()

            let after = try await controller.current()
            #expect(after?.phase == .rolledBack)
            #expect(after?.endReason?.contains("operator (HTTP API)") == true)
            #expect(audit.read().records.contains { $0.action == "rollout-rollback" && $0.actor == "ana" })
            #expect(try store.label(for: doubtful) == 1, "labelled 'fault' from the queue")
        }
    }

    /// What the operator does in the browser; blocking.
    static func drive(_ browser: HeadlessChromium, base: String, cohort: [String], doubtful: UUID) throws {
        let page = try browser.open(base + "/")
        // The first live update replaced the server-rendered sections.
        #expect(try browser.wait(until: "Number(document.body.dataset.updates || 0) >= 1", session: page))
        let rows =
            try browser.evaluate(
                "[...document.querySelectorAll('#devices tr')].map(r => `${r.dataset.device}=${r.dataset.version}`)",
                session: page) as? [String] ?? []
        #expect(rows == devices.map { "\($0)=v1" })
        let states =
            try browser.evaluate(
                "[...document.querySelectorAll('#devices .state')].map(s => s.textContent)", session: page)
            as? [String] ?? []
        #expect(states == ["online", "online", "online", "offline"])
        #expect(
            try browser.evaluate("document.querySelector('[data-rollout=plant]').dataset.phase", session: page)
                as? String == "canary")
        #expect(
            try browser.evaluate(
                "document.querySelector('#queue tr[data-escalation]').dataset.escalation", session: page)
                as? String == doubtful.uuidString, "the doubtful escalation heads the queue")

        // Every mutating route refuses a request without the token.
        let statuses =
            try browser.evaluate(
                """
                Promise.all(['/v1/pins', '/v1/pins/unpin', '/v1/rollouts/plant/promote', '/v1/labels'].map(path =>
                  fetch(path, {method: 'POST', body: '{"fleet":"plant","device":"box-0","version":"v2"}'})
                    .then(r => r.status)))
                """, session: page) as? [Int]
        #expect(statuses == [401, 401, 401, 401])

        // Without the token: refused, and nothing changes.
        _ = try browser.evaluate(
            """
            window.confirm = () => true;
            document.getElementById('token').value = '';
            document.querySelector('[data-rollout=plant] button.danger').click();
            """, session: page)
        #expect(
            try browser.wait(until: "document.getElementById('action-result').dataset.status === '401'", session: page))

        // With it: rolled back, and the next live update shows it.
        _ = try browser.evaluate(
            """
            document.getElementById('token').value = '\(token)';
            document.querySelector('[data-rollout=plant] button.danger').click();
            """, session: page)
        #expect(
            try browser.wait(until: "document.getElementById('action-result').dataset.status === '200'", session: page))
        #expect(
            try browser.wait(
                until: "document.querySelector('[data-rollout=plant]').dataset.phase === 'rolledBack'", session: page))

        // A label from the queue.
        _ = try browser.evaluate(
            """
            const form = document.getElementById('label-\(doubtful.uuidString)');
            form.querySelector('select').value = 'fault';
            form.querySelector('button').click();
            """, session: page)
        #expect(
            try browser.wait(
                until: "document.getElementById('action-result').textContent.startsWith('label: 200')", session: page))
        if let path = ProcessInfo.processInfo.environment["TANDEM_FLEET_PAGE_SCREENSHOT"] {
            try browser.screenshot(session: page).write(to: URL(fileURLWithPath: path))
        }
    }
}

/// Both stores list the label queue's candidates the same way.
struct UnlabelledStoreTests {
    /// Four rows: answered and labelled, answered without a label (two), unanswered; checks what `unlabelled` lists.
    static func check(_ store: any EscalationStore) throws {
        func row(_ received: Double, window: Double? = nil) -> SampleStore.Escalation {
            SampleStore.Escalation(
                id: UUID(), device: "press-12", stream: "vib", payload: [1, 2, 3],
                responseTopic: "tandem/v1/plant/press-12/verdicts", edgeLabel: 1, edgeConfidence: 0.4,
                edgeModel: "e1", receivedAt: received, fleet: "plant", windowStart: window)
        }
        let labelled = row(10)
        let older = row(20)
        let newer = row(30, window: 29.5)
        let unanswered = row(40)
        _ = try store.insert([labelled, older, newer, unanswered])
        try store.answer(
            [labelled, older, newer].map {
                ($0.id, SampleStore.StoredVerdict(label: 0, probabilities: [0.75, 0.25], model: "full-1"))
            }, at: 50)
        _ = try store.recordLabels([(labelled.id, 1)], from: .operator, at: 60)
        let rows = try store.unlabelled(limit: 10)
        #expect(rows.map(\.id) == [newer.id, older.id], "answered, unlabelled, newest first")
        #expect(rows.first?.probabilities == [0.75, 0.25] && rows.first?.verdictLabel == 0)
        #expect(rows.first?.edgeLabel == 1 && rows.first?.windowStart == 29.5 && rows.first?.fleet == "plant")
        #expect(try store.unlabelled(limit: 1).map(\.id) == [newer.id])
    }

    @Test("SQLite: the queue's candidates are answered, unlabelled escalations, newest first")
    func sqlite() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try Self.check(try SampleStore(path: scratch.url.appendingPathComponent("s.sqlite").path))
    }

    @Test(
        "PostgreSQL: the queue's candidates are answered, unlabelled escalations, newest first",
        .enabled(if: PostgresCluster.isAvailable, "PostgreSQL server binaries are not installed"))
    func postgres() async throws {
        try await PostgresCluster.with { cluster in
            try Self.check(try PostgresSampleStore(url: cluster.url))
        }
    }
}
