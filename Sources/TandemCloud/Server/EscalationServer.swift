import Foundation
import Synchronization
import TandemCore
import TandemFleet
import TandemMQTT
import TandemProtocol

/// One cloud worker: takes escalations from the fleet's shared subscription, stores each once, answers
/// them in dynamic batches with the full float model and publishes each verdict on the escalation's
/// response topic with its correlation data.
///
/// Workers coordinate only through the broker (one shared subscription group: each escalation goes to one
/// of them) and the sample store (one row per escalation id; a duplicate delivery gets the stored verdict
/// again; escalations a dead worker left unanswered are claimed by another after `staleSeconds`).
public final class EscalationServer: Sendable {
    /// Settings of one worker.
    public struct Configuration: Sendable {
        /// Broker host.
        public var host = "127.0.0.1"
        /// Broker port.
        public var port = 1883
        /// User name, if the broker wants one.
        public var username: String?
        /// Its password.
        public var password: String?
        /// This worker's name: its MQTT client id is `tandem-cloud-{workerID}` (a persistent session, so
        /// a restarted worker gets what the broker still held for it).
        public var workerID = "1"
        /// The shared subscription group.
        public var group = "tandem-cloud"
        /// The most escalations one model call takes.
        public var maximumBatch = 64
        /// How long the first escalation of a batch waits for others, in seconds.
        public var maximumWait = 0.002
        /// Unanswered escalations older than this are taken over from a worker presumed dead.
        public var staleSeconds = 5.0

        /// The defaults.
        public init() {}
    }

    /// Counters.
    public struct Statistics: Sendable, Equatable {
        /// Escalations received.
        public var received = 0
        /// Of those, deliveries of an id already stored.
        public var duplicates = 0
        /// Verdicts published.
        public var answered = 0
        /// Payloads that could not be read, or that do not fit the model.
        public var rejected = 0
        /// Model calls.
        public var batches = 0
        /// Escalations taken over from another worker.
        public var reclaimed = 0
    }

    public let configuration: Configuration
    let model: FloatModel
    let manifest: ModelManifest
    /// The input specs of the edge model versions whose windows this worker maps to the full model's.
    public let edgeInputs: EdgeInputCatalog
    let store: any EscalationStore
    let client: MQTTClient
    let queue = BatchQueue<Work>()
    let counters = Mutex(Statistics())
    let stopping = Atomic<Bool>(false)
    let batchesDone = Atomic<Bool>(false)
    /// Verdicts published and not yet acknowledged by the broker.
    let unacknowledged = Atomic<Int>(0)
    let log: @Sendable (String) -> Void
    /// Where counts and latencies also go (`GET /metrics`), if anywhere.
    let metrics: CloudMetrics?

    /// One escalation waiting for the model.
    struct Work: Sendable {
        var payload: EscalationPayload
        var bytes: [UInt8]
        var responseTopic: String
        var correlation: [UInt8]
        /// First delivery of this id (false: the store already had it).
        var fresh: Bool
        /// When this worker received (or reclaimed) it.
        var received = ContinuousClock.now
    }

    /// A worker answering with `model` (its artifact's manifest `manifest`).
    ///
    /// - Parameters:
    ///   - edgeInputs: Input specs of edge model versions; a window from a known edge model is brought from
    ///     its standardization to the full model's. Unknown versions are assumed to share the full model's
    ///     (both trained on the same data).
    ///   - registry: Where versions not in `edgeInputs` are looked up (``EdgeInputCatalog``), so windows of a
    ///     model registered after the worker started (a retrained one) are mapped too.
    ///   - metrics: Instruments to count into as well as ``statistics``.
    public init(
        configuration: Configuration, model: FloatModel, manifest: ModelManifest, edgeInputs: [String: InputSpec] = [:],
        registry: ModelRegistry? = nil, store: any EscalationStore, metrics: CloudMetrics? = nil,
        log: @escaping @Sendable (String) -> Void
    ) throws {
        self.metrics = metrics
        self.configuration = configuration
        self.model = model
        self.manifest = manifest
        self.edgeInputs = EdgeInputCatalog(known: edgeInputs, registry: registry)
        self.store = store
        self.log = log
        client = try MQTTClient(
            configuration: MQTTClientConfiguration(
                host: configuration.host, port: configuration.port, clientID: "tandem-cloud-\(configuration.workerID)",
                username: configuration.username, password: configuration.password, cleanStart: false,
                sessionExpirySeconds: 3600, reconnect: .init(maximumDelayMilliseconds: 5000),
                maximumInflightMessages: 1000, tcpNoDelay: true))
    }

    /// The counters now.
    public var statistics: Statistics { counters.withLock { $0 } }

    /// The shared subscription every worker joins.
    public var filter: String { ProtocolTopics.shared(.escalations, group: configuration.group) }

    /// Connects, subscribes and serves until ``stop()``.
    public func run() async throws {
        // What the broker kept for this worker's session arrives before the subscription is renewed.
        client.receiveSessionMessages { [weak self] message in self?.receive(message) }
        client.start()
        guard let subscription = try await subscribeWhenConnected() else {
            // Stopped before the broker was ever reached: nothing was received, so nothing is owed.
            queue.close()
            await client.disconnect()
            return
        }
        log("worker \(configuration.workerID): serving \(filter) with \(manifest.name) \(manifest.version)")
        let thread = Thread { [self] in batchLoop() }
        thread.name = "tandem-cloud-batches"
        thread.start()
        while !stopping.load(ordering: .relaxed) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        subscription.cancel()
        queue.close()
        // Answer what was received, and let the broker acknowledge every verdict, before leaving.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline
            && (!batchesDone.load(ordering: .relaxed) || unacknowledged.load(ordering: .relaxed) > 0)
        {
            try? await Task.sleep(for: .milliseconds(10))
        }
        await client.disconnect()
    }

    /// Stops serving: escalations received are answered first.
    public func stop() { stopping.store(true, ordering: .relaxed) }

    /// The subscription once the broker is reached, or nil if ``stop()`` was called first (noticed at the next
    /// connection attempt, within the reconnect delay).
    private func subscribeWhenConnected() async throws -> MQTTSubscription? {
        for await state in client.connectionStates() {
            if stopping.load(ordering: .relaxed) { return nil }
            if case .closed(let error) = state { throw error ?? MQTTError(.shutDown, "client closed") }
            guard state.isConnected else { continue }
            do {
                // Each escalation is stored on the network thread before libmosquitto acknowledges it, so
                // one this worker has acknowledged survives the worker being killed.
                return try await client.subscribe(to: filter, qos: .atLeastOnce) { [weak self] message in
                    self?.receive(message)
                }
            } catch {
                log("worker \(configuration.workerID): subscribing failed, retrying: \(error)")
            }
        }
        throw MQTTError(.shutDown, "client closed before subscribing")
    }

    /// Reads one escalation message, stores it and queues it for the model.
    func receive(_ message: MQTTMessage) {
        let payload: EscalationPayload
        do {
            payload = try EscalationPayload(decoding: message.payload)
        } catch {
            let count = counters.withLock {
                $0.rejected += 1
                return $0.rejected
            }
            metrics?.escalationsRejected.increment()
            if count <= 10 || count.isMultiple(of: 1000) {
                log(
                    "worker \(configuration.workerID): escalation on \(message.topic) skipped (\(count) so far): \(error)"
                )
            }
            return
        }
        counters.withLock { $0.received += 1 }
        metrics?.escalationsReceived.increment()
        let responseTopic =
            message.properties.responseTopic
            ?? DeviceTopicAddress(topic: message.topic)?.topics.verdicts ?? ""
        let correlation = message.properties.correlationData ?? withUnsafeBytes(of: payload.id.uuid) { Array($0) }
        var fresh = true
        do {
            fresh = try store.insert(
                SampleStore.Escalation(
                    id: payload.id, device: payload.device, stream: payload.stream, payload: message.payload,
                    responseTopic: responseTopic, edgeLabel: payload.topK.first?.label ?? -1,
                    edgeConfidence: Double(payload.confidence), edgeModel: payload.modelVersion,
                    receivedAt: Date().timeIntervalSince1970))
        } catch {
            log("worker \(configuration.workerID): store: \(error)")
        }
        queue.put(
            Work(
                payload: payload, bytes: message.payload, responseTopic: responseTopic, correlation: correlation,
                fresh: fresh))
    }

    private func batchLoop() {
        var lastReclaim = Date()
        while true {
            let batch = queue.take(
                maximum: configuration.maximumBatch, maximumWait: configuration.maximumWait, idle: 0.2)
            if batch.isEmpty {
                if stopping.load(ordering: .relaxed) && queue.count == 0 {
                    batchesDone.store(true, ordering: .relaxed)
                    break
                }
            } else {
                process(batch)
            }
            if Date().timeIntervalSince(lastReclaim) > 1 {
                lastReclaim = Date()
                reclaimStale()
            }
        }
    }

    /// Escalations another worker stored but never answered (it died): answer them here.
    private func reclaimStale() {
        do {
            let stale = try store.claimStale(
                worker: configuration.workerID, staleSeconds: configuration.staleSeconds,
                now: Date().timeIntervalSince1970, limit: configuration.maximumBatch)
            guard !stale.isEmpty else { return }
            let work = stale.compactMap { e -> Work? in
                guard let payload = try? EscalationPayload(decoding: e.payload) else { return nil }
                return Work(
                    payload: payload, bytes: e.payload, responseTopic: e.responseTopic,
                    correlation: withUnsafeBytes(of: e.id.uuid) { Array($0) }, fresh: true)
            }
            counters.withLock { $0.reclaimed += work.count }
            log("worker \(configuration.workerID): answering \(work.count) escalation(s) left unanswered")
            process(work)
        } catch {
            log("worker \(configuration.workerID): store: \(error)")
        }
    }

    /// Classifies and answers one batch of stored escalations.
    func process(_ batch: [Work]) {
        let fresh = batch.map(\.fresh)
        // A duplicate delivery of an answered escalation gets the stored verdict again, not a new one.
        var toClassify = [Int]()
        for i in batch.indices {
            if !fresh[i] { metrics?.escalationsDuplicate.increment() }
            if !fresh[i], let stored = try? store.verdict(for: batch[i].payload.id) {
                counters.withLock { $0.duplicates += 1 }
                publish(
                    Verdict(
                        escalationId: batch[i].payload.id, label: stored.label, probabilities: stored.probabilities,
                        modelVersion: stored.model), to: batch[i], record: false)
            } else {
                if !fresh[i] { counters.withLock { $0.duplicates += 1 } }
                toClassify.append(i)
            }
        }
        guard !toClassify.isEmpty else { return }
        let (w, c) = (model.window, model.channels)
        var usable = [Int]()
        var scalars = [Float]()
        scalars.reserveCapacity(toClassify.count * w * c)
        for i in toClassify {
            let p = batch[i].payload
            guard p.length == w, p.channels == c, p.window.count == w * c else {
                counters.withLock { $0.rejected += 1 }
                metrics?.escalationsRejected.increment()
                log(
                    "worker \(configuration.workerID): escalation \(p.id) from \(p.device) is \(p.length)×\(p.channels), the model takes \(w)×\(c)"
                )
                continue
            }
            usable.append(i)
            appendStandardized(p, to: &scalars)
        }
        guard !usable.isEmpty else { return }
        let probabilities: Tensor
        do {
            probabilities = try model.probabilities(for: Tensor(shape: [usable.count, w, c], scalars: scalars))
        } catch {
            log("worker \(configuration.workerID): model: \(error)")
            return
        }
        let classes = model.classes
        for (row, i) in usable.enumerated() {
            let p = Array(probabilities.scalars[(row * classes)..<((row + 1) * classes)])
            var best = 0
            for k in p.indices where p[k] > p[best] { best = k }
            let verdict = Verdict(
                escalationId: batch[i].payload.id, label: best, probabilities: p, modelVersion: manifest.version)
            publish(verdict, to: batch[i], record: true)
        }
        counters.withLock { $0.batches += 1 }
        metrics?.batchSize.record(usable.count)
    }

    /// The window in the full model's standardization.
    private func appendStandardized(_ p: EscalationPayload, to scalars: inout [Float]) {
        let c = p.channels
        guard let edge = edgeInputs.spec(for: p.modelVersion), edge.mean.count == c, edge.std.count == c,
            manifest.input.mean.count == c, manifest.input.std.count == c,
            edge.mean != manifest.input.mean || edge.std != manifest.input.std
        else {
            scalars.append(contentsOf: p.window)
            return
        }
        let full = manifest.input
        for (k, v) in p.window.enumerated() {
            let ch = k % c
            scalars.append((v * edge.std[ch] + edge.mean[ch] - full.mean[ch]) / full.std[ch])
        }
    }

    /// Publishes a verdict; once the broker has it (PUBACK), it counts as answered and, with `record`, is
    /// stored — a verdict still in this process when it dies leaves its escalation unanswered, to be
    /// answered again by a live worker.
    private func publish(_ verdict: Verdict, to work: Work, record: Bool) {
        let message = MQTTMessage(
            topic: work.responseTopic, payload: verdict.encoded(), qos: .atLeastOnce, retain: false,
            properties: MQTTPublishProperties(correlationData: work.correlation))
        let stored = SampleStore.StoredVerdict(
            label: verdict.label, probabilities: verdict.probabilities, model: verdict.modelVersion)
        unacknowledged.add(1, ordering: .relaxed)
        do {
            try client.publish(message) { [weak self] result in
                guard let self else { return }
                unacknowledged.subtract(1, ordering: .relaxed)
                guard case .success(let ack) = result, ack.isAccepted else { return }
                counters.withLock { $0.answered += 1 }
                if let metrics {
                    metrics.verdictsAnswered.increment()
                    let elapsed = (ContinuousClock.now - work.received).components
                    metrics.verdictLatency.recordNanoseconds(
                        elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
                }
                guard record else { return }
                do {
                    try store.answer([(verdict.escalationId, stored)], at: Date().timeIntervalSince1970)
                } catch {
                    log("worker \(configuration.workerID): store: \(error)")
                }
            }
        } catch {
            unacknowledged.subtract(1, ordering: .relaxed)
            log("worker \(configuration.workerID): verdict for \(verdict.escalationId) not sent: \(error)")
        }
    }
}
