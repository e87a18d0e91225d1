import Crypto
import Foundation
import TandemCloud
import TandemCore
import TandemFleet
import TandemFleetTestSupport
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A worker with its HTTP API on a free loopback port, against a real mosquitto, with a registry holding one
/// production version: built in the test's process through `CloudWorker.make`, or, for the tests of the
/// executable's own flags and configuration file, a `tandem-cloud serve` process.
final class RunningCloud {
    /// Where the worker runs.
    enum Running {
        case inProcess(InProcessWorker)
        case process(Process, log: URL)
    }

    let broker: MosquittoBroker
    let scratch: ScratchDirectory
    let running: Running
    let port: Int
    let token = "s3cret-token-for-tests"
    let fixture: RegistryFixture

    var log: String {
        switch running {
        case .inProcess(let worker): worker.log
        case .process(_, let url): (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        }
    }
    var dataDirectory: String { fixture.scratch.url.appendingPathComponent("data").path }
    var base: String { "http://127.0.0.1:\(port)" }

    /// Builds and runs the worker in this process once `prepare` has set up the registry (the fixture's data
    /// directory is the worker's).
    convenience init(
        broker: MosquittoBroker, withToken: Bool = true, prepare: (RegistryFixture) throws -> Void = { _ in }
    ) async throws {
        try await self.init(broker: broker, prepare: prepare) { dir, token in
            var configuration = try InProcessWorker.configuration(
                brokerPort: broker.port, modelPath: "\(dir)/full.tandem", dataDirectory: "\(dir)/data",
                workerID: "http-test")
            var http = CloudHTTPAPI.Configuration()
            http.address = CloudHTTPAPI.Address(host: "127.0.0.1", port: 0)
            http.token = withToken ? token : nil
            configuration.http = http
            return .inProcess(try InProcessWorker(configuration))
        }
    }

    /// Starts `tandem-cloud` with `arguments`, given the scratch directory (holding full.tandem and token);
    /// `environment` is added to this process's.
    convenience init(broker: MosquittoBroker, arguments: (String) throws -> [String], environment: [String: String])
        async throws
    {
        try await self.init(broker: broker, prepare: { _ in }) { dir, _ in
            let errorURL = URL(fileURLWithPath: "\(dir)/cloud.log")
            _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
            let process = Process()
            process.executableURL = BuiltProducts.executable("tandem-cloud")
            process.arguments = try arguments(dir)
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: errorURL)
            try process.run()
            return .process(process, log: errorURL)
        }
    }

    private init(
        broker: MosquittoBroker, prepare: (RegistryFixture) throws -> Void,
        start: (_ directory: String, _ token: String) throws -> Running
    ) async throws {
        self.broker = broker
        fixture = try RegistryFixture()
        scratch = fixture.scratch
        let dir = scratch.url.path
        try prepare(fixture)
        try fullModelArtifact().write(to: URL(fileURLWithPath: "\(dir)/full.tandem"))
        try "\(token)\n".write(toFile: "\(dir)/token", atomically: true, encoding: .utf8)
        // A token file others may read is refused.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(dir)/token")
        running = try start(dir, token)
        let running = running
        func currentLog() -> String {
            switch running {
            case .inProcess(let worker): worker.log
            case .process(_, let url): (try? String(contentsOf: url, encoding: .utf8)) ?? ""
            }
        }
        let ready = await waitUntil(startLimit) {
            currentLog().contains("http: listening on") && currentLog().contains("listening for labels")
                && currentLog().contains("serving")
        }
        let text = currentLog()
        guard ready, let range = text.range(of: "http: listening on 127.0.0.1:"),
            let port = Int(text[range.upperBound...].prefix { $0.isNumber })
        else {
            switch running {
            case .inProcess(let worker): _ = await worker.terminate()
            case .process(let process, _): if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            throw CloudStartError("tandem-cloud did not come up:\n\(text)")
        }
        self.port = port
    }

    /// Shuts the worker down gracefully (SIGTERM for a process) and returns its exit status.
    func terminate() async -> Int32 {
        switch running {
        case .inProcess(let worker):
            return await worker.terminate()
        case .process(let process, _):
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    deinit {
        if case .process(let process, _) = running, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        scratch.remove()
    }

    /// One HTTP request; the body and status.
    func request(
        _ method: String, _ path: String, body: String? = nil, authorization: String? = nil
    ) async throws -> (status: Int, body: Data, headers: [AnyHashable: Any]) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        return (http.statusCode, data, http.allHeaderFields)
    }

    /// A JSON object response.
    func json(_ method: String, _ path: String, body: String? = nil, authorization: String? = nil) async throws
        -> (status: Int, object: [String: Any])
    {
        let (status, data, _) = try await request(method, path, body: body, authorization: authorization)
        let object = try #require(
            try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(String(decoding: data, as: UTF8.self))")
        return (status, object)
    }

    /// A connected MQTT client on the same broker.
    func client(_ id: String) async throws -> MQTTClient {
        let client = try MQTTClient(configuration: MQTTClientConfiguration(port: broker.port, clientID: id))
        try await client.connect()
        return client
    }

    /// The sample store, opened beside the worker (WAL).
    func store() throws -> SampleStore { try SampleStore(path: "\(dataDirectory)/tandem.sqlite") }
}

/// The worker under test did not start.
struct CloudStartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A worker's HTTP API and MQTT labels, against a worker made as `tandem-cloud serve` makes it, over loopback.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct CloudHTTPTests {
    @Test("POST /v1/labels: 401 without or with a wrong token, 400 with a reason for bad bodies, stored with the token")
    func labelsOverHTTP() async throws {
        try await MosquittoBroker.with { broker in
            let cloud = try await RunningCloud(broker: broker)
            let id = UUID()
            let body = "{\"escalationId\":\"\(id.uuidString)\",\"label\":\"c2\"}"

            let anonymous = try await cloud.json("POST", "/v1/labels", body: body)
            #expect(anonymous.status == 401)
            #expect(anonymous.object["error"] as? String == "unauthorized")
            #expect((anonymous.object["reason"] as? String)?.contains("Authorization") == true)
            let wrong = try await cloud.json("POST", "/v1/labels", body: body, authorization: "Bearer not-the-token")
            #expect(wrong.status == 401)
            #expect((wrong.object["reason"] as? String)?.contains("not valid") == true)
            let truncated = try await cloud.json(
                "POST", "/v1/labels", body: body, authorization: "Bearer \(cloud.token.dropLast())")
            #expect(truncated.status == 401)
            #expect(try cloud.store().label(for: id) == nil, "a refused request stored a label")

            let auth = "Bearer \(cloud.token)"
            let garbage: [(String, String)] = [
                ("{\"escalationId\": ", "not JSON"),
                ("{\"label\":\"c1\"}", "escalationId"),
                ("{\"escalationId\":\"not-a-uuid\",\"label\":\"c1\"}", "not a UUID"),
                ("{\"escalationId\":\"\(id.uuidString)\",\"label\":3}", "label"),
                ("{\"escalationId\":\"\(id.uuidString)\",\"label\":\"c9\"}", "not a class"),
                ("[]", "no labels"),
                ("[{\"escalationId\":\"\(UUID().uuidString)\",\"label\":\"c0\"}, 5]", "element 1"),
                (
                    "[{\"escalationId\":\"\(UUID().uuidString)\",\"label\":\"c0\"},"
                        + "{\"escalationId\":\"\(UUID().uuidString)\",\"label\":\"c7\"}]", "element 1: label 'c7'"
                ),
            ]
            for (text, expected) in garbage {
                let answer = try await cloud.json("POST", "/v1/labels", body: text, authorization: auth)
                #expect(answer.status == 400, "\(text)")
                let reason = answer.object["reason"] as? String ?? ""
                #expect(reason.contains(expected), "\(text) → \(reason)")
            }
            let tooLarge = try await cloud.request(
                "POST", "/v1/labels", body: String(repeating: " ", count: 2 << 20), authorization: auth)
            #expect(tooLarge.status == 413)
            #expect(try cloud.store().labelCount() == 0, "a bad body stored a label")

            let stored = try await cloud.json("POST", "/v1/labels", body: body, authorization: auth)
            #expect(stored.status == 200)
            #expect(stored.object["stored"] as? Int == 1)
            #expect(try cloud.store().label(for: id) == 2)

            let (a, b) = (UUID(), UUID())
            let array =
                "[{\"escalationId\":\"\(a.uuidString)\",\"label\":\"c0\"},{\"escalationId\":\"\(b.uuidString)\",\"label\":\"c1\"}]"
            let both = try await cloud.json("POST", "/v1/labels", body: array, authorization: "bearer \(cloud.token)")
            #expect(both.status == 200 && both.object["stored"] as? Int == 2)
            let store = try cloud.store()
            #expect(try store.label(for: a) == 0 && store.label(for: b) == 1)

            let notFound = try await cloud.json("GET", "/v1/nothing")
            #expect(notFound.status == 404 && notFound.object["reason"] != nil)
            #expect(await cloud.terminate() == 0, "\(cloud.log)")
        }
    }

    @Test("POST /v1/labels with a time range: labels the device's escalations in it, says how many; bad ones are 400")
    func rangeLabelsOverHTTP() async throws {
        try await MosquittoBroker.with { broker in
            let cloud = try await RunningCloud(broker: broker)
            func row(_ device: String, _ stream: String, _ window: Double) -> SampleStore.Escalation {
                SampleStore.Escalation(
                    id: UUID(), device: device, stream: stream, payload: [1], responseTopic: "t", edgeLabel: 0,
                    edgeConfidence: 0.5, edgeModel: "e1", receivedAt: 5, fleet: "plant", windowStart: window)
            }
            let inside = [row("pump-1", "vib", 1_765_190_400), row("pump-1", "vib", 1_765_191_000)]
            let outside = [
                row("pump-1", "vib", 1_765_190_399), row("pump-1", "temp", 1_765_190_500),
                row("pump-2", "vib", 1_765_190_500),
            ]
            _ = try cloud.store().insert(inside + outside)
            let body =
                "{\"device\":\"pump-1\",\"stream\":\"vib\",\"start\":1765190400,\"end\":1765192500,\"class\":\"c2\"}"

            let anonymous = try await cloud.json("POST", "/v1/labels", body: body)
            #expect(anonymous.status == 401)
            #expect(try cloud.store().labelCount() == 0, "a refused request stored labels")

            let auth = "Bearer \(cloud.token)"
            let garbage: [(String, String)] = [
                (body.replacingOccurrences(of: "\"c2\"", with: "\"c9\""), "not a class"),
                (body.replacingOccurrences(of: "pump-1", with: "pump 1"), "device"),
                (body.replacingOccurrences(of: "1765192500", with: "1765190000"), "before start"),
                (body.replacingOccurrences(of: "1765192500", with: "1799999999"), "31 days"),
                (body.replacingOccurrences(of: "\"start\":1765190400,", with: ""), "start"),
            ]
            for (text, expected) in garbage {
                let answer = try await cloud.json("POST", "/v1/labels", body: text, authorization: auth)
                #expect(answer.status == 400, "\(text)")
                let reason = answer.object["reason"] as? String ?? ""
                #expect(reason.contains(expected), "\(text) → \(reason)")
            }
            #expect(try cloud.store().labelCount() == 0, "a bad range stored labels")

            let labelled = try await cloud.json("POST", "/v1/labels", body: body, authorization: auth)
            #expect(labelled.status == 200 && labelled.object["labelled"] as? Int == 2, "\(labelled.object)")
            let store = try cloud.store()
            for row in inside { #expect(try store.label(for: row.id) == 2) }
            for row in outside { #expect(try store.label(for: row.id) == nil) }
            let metrics = String(decoding: try await cloud.request("GET", "/metrics").body, as: UTF8.self)
            #expect(metrics.contains("tandem_cloud_labels_stored_total{source=\"http\"} 2"), "\(metrics)")

            // `tandem label` sends the same, checked before anything is sent, with the worker's token.
            let tandem = BuiltProducts.executable("tandem")
            let tokenFile = cloud.scratch.url.appendingPathComponent("label-token").path
            try "\(cloud.token)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            let common = ["label", "--url", cloud.base, "--token-file", tokenFile, "--device", "pump-1", "--stream"]
            // Off the cooperative threads: the command talks to this process's own HTTP server, whose handlers
            // need them (waiting on one here starved them on 2 cores).
            let sent = try await offThePool {
                Result {
                    try runCommand(
                        tandem,
                        common + ["temp", "--start", "2025-12-08T10:40:00Z", "--end", "1765190600", "--class", "c1"])
                }
            }.get()
            #expect(sent.status == 0, "\(sent.standardError)")
            #expect(sent.standardOutput.contains("labelled 1 escalation(s)"), "\(sent.standardOutput)")
            #expect(try store.label(for: outside[1].id) == 1)
            let refusals: [([String], String)] = [
                (["vib", "--start", "5", "--end", "4", "--class", "c1"], "before start"),
                (["vib", "--start", "yesterday", "--end", "4", "--class", "c1"], "ISO 8601"),
                (["vib", "--start", "1", "--end", "4", "--class", "c9"], "not a class"),
                (["vib", "--start", "1", "--end", "4", "--class", "c1", "--escalation", "x"], "not both"),
            ]
            for (arguments, reason) in refusals {
                let refused = try await offThePool { Result { try runCommand(tandem, common + arguments) } }.get()
                #expect(refused.status != 0, "\(arguments)")
                #expect(refused.standardError.contains(reason), "\(arguments): \(refused.standardError)")
            }
            #expect(await cloud.terminate() == 0, "\(cloud.log)")
        }
    }

    @Test("without --api-token-file, POST /v1/labels is refused with 503 and a reason, nothing stored")
    func noTokenRefusesWrites() async throws {
        try await MosquittoBroker.with { broker in
            let cloud = try await RunningCloud(broker: broker, withToken: false)
            let id = UUID()
            let body = "{\"escalationId\":\"\(id.uuidString)\",\"label\":\"c2\"}"
            for authorization in [nil, "Bearer \(cloud.token)", "Bearer "] {
                let answer = try await cloud.json("POST", "/v1/labels", body: body, authorization: authorization)
                #expect(answer.status == 503)
                #expect((answer.object["reason"] as? String)?.contains("no API token") == true)
            }
            #expect(try cloud.store().label(for: id) == nil)
            let health = try await cloud.json("GET", "/healthz")
            #expect(health.status == 200 && health.object["status"] as? String == "ok")
            #expect(health.object["broker"] as? String == "connected")
            #expect(await cloud.terminate() == 0, "\(cloud.log)")
        }
    }

    @Test("a label over MQTT lands in the store; malformed ones are counted in /metrics and the worker goes on")
    func labelsOverMQTT() async throws {
        try await MosquittoBroker.with { broker in
            let cloud = try await RunningCloud(broker: broker)
            let operatorClient = try await cloud.client("operator")
            let topic = "tandem/v1/plant/pump-1/labels"
            for bad in ["not json", "{\"escalationId\":\"x\",\"label\":\"c1\"}", "[1,2]", ""] {
                _ = try await operatorClient.publish(MQTTMessage(topic: topic, string: bad, qos: .atLeastOnce))
            }
            let id = UUID()
            let label = GroundTruthLabel(escalationId: id, label: "c1")
            _ = try await operatorClient.publish(MQTTMessage(topic: topic, payload: label.encoded(), qos: .atLeastOnce))
            let store = try cloud.store()
            #expect(await waitUntil(.seconds(10)) { (try? store.label(for: id)) == 1 }, "\(cloud.log)")
            await operatorClient.disconnect()

            let (status, data, headers) = try await cloud.request("GET", "/metrics")
            let text = String(decoding: data, as: UTF8.self)
            #expect(status == 200)
            #expect((headers["Content-Type"] as? String)?.hasPrefix("text/plain") == true)
            #expect(text.contains("tandem_cloud_labels_stored_total{source=\"mqtt\"} 1"), "\(text)")
            #expect(
                text.contains("tandem_cloud_labels_rejected_total{reason=\"malformed\",source=\"mqtt\"} 3"), "\(text)")
            #expect(
                text.contains("tandem_cloud_labels_rejected_total{reason=\"badEscalationId\",source=\"mqtt\"} 1"),
                "\(text)")
            #expect(text.contains("tandem_cloud_store_labels 1"), "\(text)")
            #expect(cloud.log.contains("refused (malformed"))
            #expect(await cloud.terminate() == 0, "\(cloud.log)")
        }
    }

    @Test("/v1/devices: online from a retained status, offline after the device's last will, with its last numbers")
    func devicesFromStatusAndWill() async throws {
        try await MosquittoBroker.with { broker in
            let statusTopic = "tandem/v1/plant/pump-7/status"
            // The device is on the broker before the worker starts: the worker learns of it from the retained copy.
            let probe = Process()
            probe.executableURL = BuiltProducts.executable("tandem-mqtt-probe")
            probe.arguments = [
                "will", "\(broker.port)", "pump-7", statusTopic, "{\"device\":\"pump-7\",\"state\":\"offline\"}",
                "retain",
            ]
            let output = Pipe()
            probe.standardOutput = output
            try probe.run()
            defer { if probe.isRunning { kill(probe.processIdentifier, SIGKILL) } }
            #expect(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).contains("connected"))
            let device = try MQTTClient(
                configuration: MQTTClientConfiguration(port: broker.port, clientID: "pump-7-status"))
            try await device.connect()
            let status = """
                {"connected":true,"device":"pump-7","escalationRate":0.07,"escalations":7,"inputErrors":{"vib":{"nan":2,"parse":1}},\
                "modelUpdate":"active edge-1","modelVersion":"edge-1","state":"online","windows":100}
                """
            _ = try await device.publish(
                MQTTMessage(topic: statusTopic, string: status, qos: .atLeastOnce, retain: true))
            await device.disconnect()

            let cloud = try await RunningCloud(broker: broker)
            func pump() async throws -> [String: Any]? {
                let list = try await cloud.json("GET", "/v1/devices")
                let devices = list.object["devices"] as? [[String: Any]] ?? []
                return devices.first { $0["device"] as? String == "pump-7" && $0["fleet"] as? String == "plant" }
            }
            var seen: [String: Any]?
            for _ in 0..<100 {
                seen = try await pump()
                if seen != nil { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let online = try #require(seen, "\(cloud.log)")
            #expect(online["state"] as? String == "online")
            #expect(online["modelVersion"] as? String == "edge-1")
            #expect(online["modelUpdate"] as? String == "active edge-1")
            #expect(online["windows"] as? Int == 100 && online["escalations"] as? Int == 7)
            #expect(abs((online["escalationRate"] as? Double ?? -1) - 0.07) < 1e-9)
            #expect(online["inputErrors"] as? Int == 3)
            #expect(online["lastSeen"] == nil, "only the retained copy was seen, its age is unknown")

            kill(probe.processIdentifier, SIGKILL)
            probe.waitUntilExit()
            var offline: [String: Any]?
            for _ in 0..<200 {
                if let now = try await pump(), now["state"] as? String == "offline" {
                    offline = now
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            let gone = try #require(offline, "the last will did not reach the fleet view")
            #expect(gone["modelVersion"] as? String == "edge-1", "the last will keeps the last known model")
            #expect(gone["windows"] as? Int == 100)
            #expect(gone["lastSeen"] as? String != nil)
            let metrics = String(decoding: try await cloud.request("GET", "/metrics").body, as: UTF8.self)
            #expect(metrics.contains("tandem_cloud_devices{state=\"offline\"} 1"), "\(metrics)")
            #expect(metrics.contains("tandem_cloud_devices{state=\"online\"} 0"), "\(metrics)")
            #expect(await cloud.terminate() == 0, "\(cloud.log)")
        }
    }

    @Test(
        "/v1/models lists versions and production, /v1/models/{v} returns the artifact, /v1/rollouts the state, /v1/training the rounds"
    )
    func modelsAndRollouts() async throws {
        try await MosquittoBroker.with { broker in
            var records: [ModelVersionRecord] = []
            let cloud = try await RunningCloud(broker: broker) { fixture in
                records.append(try fixture.register(try edgeArtifact(version: "edge-1"), source: "initial"))
                records.append(try fixture.register(try edgeArtifact(version: "edge-2", seed: 5, parent: "edge-1")))
                try fixture.registry.setProduction("edge-1")
                var rollout = try Rollout.plan(
                    fleet: "plant", version: "edge-2", previousVersion: "edge-1", devices: ["a", "b", "c"],
                    policy: RolloutPolicy(canaryPercent: 100), now: Date())
                _ = try rollout.start(now: Date())
                let encoder = JSONEncoder()
                encoder.dateEncodingStrategy = .secondsSince1970
                try encoder.encode(rollout).write(
                    to: fixture.registry.directory.appendingPathComponent("rollout-plant.json"))
                // Two rounds and a lease, as another (training) worker sharing the store left them.
                let store = try SampleStore(
                    path: fixture.registry.directory.appendingPathComponent("tandem.sqlite").path)
                try store.recordRound(.init(startedAt: 100, finishedAt: 200, passed: false, summary: "gate failed: x"))
                try store.recordRound(.init(startedAt: 300, finishedAt: 400, passed: true, summary: "gate passed: y"))
                #expect(try store.acquireTrainingLease(holder: "w7", durationSeconds: 3600, now: 500))
            }
            let listing = try await cloud.json("GET", "/v1/models")
            #expect(listing.status == 200)
            #expect(listing.object["production"] as? String == "edge-1")
            let versions = listing.object["versions"] as? [[String: Any]] ?? []
            #expect(versions.compactMap { $0["version"] as? String } == ["edge-1", "edge-2"])
            #expect(versions.last?["parentVersion"] as? String == "edge-1")

            for record in records {
                let (status, data, headers) = try await cloud.request("GET", "/v1/models/\(record.version)")
                #expect(status == 200)
                #expect((headers["Content-Type"] as? String) == "application/octet-stream")
                #expect(data.count == record.size)
                let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
                #expect(digest == record.sha256)
                let onDisk = try Data(contentsOf: cloud.fixture.registry.artifactURL(version: record.version))
                #expect(data == onDisk)
            }
            let missing = try await cloud.json("GET", "/v1/models/edge-9")
            #expect(missing.status == 404 && (missing.object["reason"] as? String)?.contains("edge-9") == true)

            let rollouts = try await cloud.json("GET", "/v1/rollouts")
            let states = rollouts.object["rollouts"] as? [[String: Any]] ?? []
            #expect(states.count == 1)
            #expect(states.first?["fleet"] as? String == "plant" && states.first?["phase"] as? String == "canary")
            #expect(states.first?["version"] as? String == "edge-2")
            #expect(rollouts.object["active"] as? [String] == ["plant"])

            let training = try await cloud.json("GET", "/v1/training")
            #expect(training.status == 200)
            #expect(training.object["trainer"] as? Bool == false && training.object["current"] == nil)
            let lease = training.object["lease"] as? [String: Any]
            #expect(lease?["holder"] as? String == "w7" && lease?["expiresAt"] as? Double == 4100)
            let rounds = training.object["rounds"] as? [[String: Any]] ?? []
            #expect(rounds.compactMap { $0["summary"] as? String } == ["gate passed: y", "gate failed: x"])
            #expect(rounds.first?["passed"] as? Bool == true && rounds.first?["startedAt"] as? Double == 300)
            #expect(await cloud.terminate() == 0, "\(cloud.log)")
        }
    }

    @Test("SIGTERM while the broker cannot be reached stops the worker with exit 0, promptly")
    func terminateWithoutBroker() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        try fullModelArtifact().write(to: URL(fileURLWithPath: "\(dir)/full.tandem"))
        let errorURL = URL(fileURLWithPath: "\(dir)/cloud.log")
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        let process = Process()
        process.executableURL = BuiltProducts.executable("tandem-cloud")
        // Nothing listens on port 1: every connection attempt is refused and retried.
        process.arguments = [
            "serve", "--broker-url", "mqtt://127.0.0.1:1", "--model", "\(dir)/full.tandem", "--data-dir",
            "\(dir)/data", "--stats-interval", "0", "--http", "127.0.0.1:0",
        ]
        process.standardError = try FileHandle(forWritingTo: errorURL)
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOf: errorURL, encoding: .utf8)) ?? "" }
        #expect(await waitUntil(.seconds(20)) { log().contains("http: listening on") }, "\(log())")
        try await Task.sleep(for: .milliseconds(500))
        kill(process.processIdentifier, SIGTERM)
        #expect(await waitUntil(.seconds(3)) { !process.isRunning }, "still running 3 s after SIGTERM: \(log())")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(log())")
    }

    @Test(
        "a graceful shutdown while the broker cannot be reached ends every part at once, whatever the reconnect delay")
    func shutdownWithoutBroker() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        try fullModelArtifact().write(to: URL(fileURLWithPath: "\(dir)/full.tandem"))
        // Nothing listens on port 1: every connection attempt is refused and retried, the delay growing to 5 s.
        var configuration = try InProcessWorker.configuration(
            brokerPort: 1, modelPath: "\(dir)/full.tandem", dataDirectory: "\(dir)/data", workerID: "unreachable")
        configuration.http?.address = CloudHTTPAPI.Address(host: "127.0.0.1", port: 0)
        let worker = try InProcessWorker(configuration)
        #expect(await waitUntil(.seconds(20)) { worker.log.contains("http: listening on") }, "\(worker.log)")
        try await Task.sleep(for: .seconds(4))
        let start = ContinuousClock.now
        #expect(await worker.terminate() == 0, "\(worker.log)")
        let took = ContinuousClock.now - start
        #expect(took < .seconds(2), "took \(took) to stop: \(worker.log)")
        #expect(!worker.log.contains("serving"), "\(worker.log)")
        #expect(worker.log.contains("stopped;"), "\(worker.log)")
    }

    @Test("/metrics counts an escalation received and answered, its batch and verdict latency; SIGTERM exits 0")
    func metricsAndShutdown() async throws {
        try await MosquittoBroker.with { broker in
            let cloud = try await RunningCloud(broker: broker)
            let edge = try await cloud.client("edge")
            var generator = SeededGenerator(seed: 4)
            let ids = (0..<5).map { _ in UUID() }
            let answered = try await edge.subscribe(to: "tandem/v1/plant/+/verdicts", qos: .atLeastOnce)
            for id in ids {
                _ = try await edge.publish(
                    MQTTMessage(
                        topic: "tandem/v1/plant/pump-1/escalations",
                        payload: try escalation(id: id, device: "pump-1", generator: &generator), qos: .atLeastOnce))
            }
            _ = try await edge.publish(
                MQTTMessage(topic: "tandem/v1/plant/pump-1/escalations", string: "garbage", qos: .atLeastOnce))
            var verdicts = 0
            for await _ in answered {
                verdicts += 1
                if verdicts == ids.count { break }
            }
            let store = try cloud.store()
            #expect(await waitUntil(.seconds(10)) { (try? store.counts().answered) == ids.count })
            let text = String(decoding: try await cloud.request("GET", "/metrics").body, as: UTF8.self)
            #expect(text.contains("tandem_cloud_escalations_received_total 5"), "\(text)")
            #expect(text.contains("tandem_cloud_escalations_rejected_total{reason=\"malformed\"} 1"), "\(text)")
            #expect(text.contains("tandem_cloud_verdicts_answered_total 5"), "\(text)")
            #expect(text.contains("tandem_cloud_store_escalations 5"), "\(text)")
            #expect(text.contains("tandem_cloud_store_answered 5"), "\(text)")
            #expect(text.contains("tandem_cloud_verdict_latency_seconds_count 5"), "\(text)")
            let batchCount = text.split(separator: "\n").first { $0.hasPrefix("tandem_cloud_batch_size_count ") }
            let batches = batchCount.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
            #expect((1...5).contains(batches), "\(text)")
            let batchSum = text.split(separator: "\n").first { $0.hasPrefix("tandem_cloud_batch_size_sum ") }
            #expect(batchSum.flatMap { Double($0.split(separator: " ").last ?? "") } == 5, "\(text)")
            answered.cancel()
            await edge.disconnect()

            #expect(await cloud.terminate() == 0, "\(cloud.log)")
            #expect(cloud.log.contains("stopped;"), "\(cloud.log)")
            // The port is closed once the process is gone.
            await #expect(throws: (any Error).self) { _ = try await cloud.request("GET", "/healthz") }
        }
    }
}
