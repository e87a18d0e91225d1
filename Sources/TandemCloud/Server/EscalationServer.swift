import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TandemCore
import TandemFleet
import TandemMQTT
import TandemProtocol
import TandemTraining

/// One cloud worker: takes escalations from the fleet's shared subscription, stores each once, answers
/// them in dynamic batches with the full model (float32 or int8, each batch split across ``Configuration/modelThreads``
/// threads) and publishes each verdict on the escalation's response topic with its correlation data; the verdicts
/// the broker acknowledged are recorded in the store once per batch, in one transaction.
///
/// Workers coordinate only through the broker (one shared subscription group: each escalation goes to one
/// of them) and the sample store (one row per escalation id; a duplicate delivery gets the stored verdict
/// again; escalations a dead worker left unanswered are claimed by another after `staleSeconds`).
///
/// As a `Service` it serves until the group shuts down gracefully: then it stops taking escalations, answers
/// what it has queued, waits (up to 10 s) for the broker to acknowledge every verdict and disconnects. Task
/// cancellation skips the wait.
public final class EscalationServer: Service, Sendable {
    /// Settings of one worker.
    public struct Configuration: Sendable {
        /// The broker, its credentials and TLS files: every MQTT client of the worker is made from it.
        public var broker: MQTTBrokerConfiguration
        /// This worker's name: its MQTT client id is `tandem-cloud-{workerID}` (a persistent session, so
        /// a restarted worker gets what the broker still held for it).
        public var workerID = "1"
        /// The shared subscription group.
        public var group = "tandem-cloud"
        /// The most escalations one model call takes.
        public var maximumBatch = 64
        /// How long the first escalation of a batch waits for others, in seconds. Default 0: a batch is what arrived
        /// while the previous one ran (under load it fills to ``maximumBatch``; when idle an escalation is answered at
        /// once).
        public var maximumWait = 0.0
        /// Threads one batch is split across (``BatchClassifier``). Default: the CPUs, at most 8.
        public var modelThreads = BatchClassifier.defaultThreads
        /// Unanswered escalations older than this are taken over from a worker presumed dead.
        public var staleSeconds = 5.0
        /// Each device's escalations (by the fleet and device of the topic): more are refused, neither stored nor
        /// answered. nil: no limit. Default 20 a second with a burst of 6,000 — four times an edge's default cap
        /// (`policy.maxEscalationsPerSecond` 5), and 20 minutes of it at once for an outbox that was cut off.
        public var deviceLimit: RateLimit? = RateLimit(perSecond: 20, burst: 6000)
        /// Seconds between two log lines about one device's escalations refused for its limit.
        public var limitReportSeconds = 60.0
        /// Tries to answer a stored escalation, the first on receipt and each later one a claim by the recovery;
        /// one still unanswered after that many is given up (terminal, never claimed again). Default 5.
        public var answerAttempts = 5
        /// Seconds between looks at the full-model registry's production version (``ServingModel``); a new one is
        /// swapped in between batches. Default 2.
        public var fullModelCheckSeconds = 2.0
        /// This worker's journal (``EscalationJournal``): each escalation is appended there on receipt and stored with
        /// its batch, one transaction a batch. Its parent directory holds the journals of the workers sharing the data
        /// directory; a killed worker's is stored by the next that looks. nil: each escalation is stored on receipt,
        /// in a transaction of its own.
        public var journalDirectory: URL?

        /// The defaults, with `broker`.
        public init(broker: MQTTBrokerConfiguration) {
            self.broker = broker
        }

        /// The settings of one of this worker's MQTT clients, `tandem-cloud-{workerID}{suffix}`: the broker's
        /// (the password file read now), reconnecting after at most 5 s.
        ///
        /// - Throws: ``MQTTBrokerConfigurationError`` if the password or a TLS file cannot be read.
        func clientConfiguration(suffix: String = "", persistent: Bool) throws -> MQTTClientConfiguration {
            var client = try broker.clientConfiguration(
                clientID: "tandem-cloud-\(workerID)\(suffix)", cleanStart: !persistent,
                sessionExpirySeconds: persistent ? 3600 : 0)
            client.reconnect = .init(maximumDelayMilliseconds: 5000)
            return client
        }
    }

    /// Why an escalation message was refused (neither stored nor answered); the `reason` of
    /// `tandem_cloud_escalations_rejected_total`.
    public enum Refusal: String, Sendable, CaseIterable {
        /// Its topic is not `tandem/v1/{fleet}/{device}/escalations`.
        case notEscalationTopic
        /// Its device is over its rate limit (``Configuration/deviceLimit``).
        case rateLimited
        /// Larger than an escalation of the full model's input shape can be.
        case tooLarge
        /// Not a valid escalation (docs/PROTOCOL.md): bad magic, checksum, field or value.
        case malformed
        /// The payload names another device than its topic.
        case otherDevice
        /// Its window is not of the shape the full model takes.
        case wrongShape
    }

    /// Counters.
    public struct Statistics: Sendable, Equatable, CustomStringConvertible {
        /// Escalations received.
        public var received = 0
        /// Of those, deliveries of an id already stored.
        public var duplicates = 0
        /// Verdicts published.
        public var answered = 0
        /// Messages refused, all reasons together.
        public var rejected = 0
        /// Messages refused, by reason.
        public var refused: [Refusal: Int] = [:]
        /// Model calls.
        public var batches = 0
        /// Escalations taken over from another worker.
        public var reclaimed = 0
        /// Verdicts the broker refused (its PUBACK said so).
        public var verdictsRefused = 0
        /// Stored escalations this worker made terminal (never to be answered), all reasons together.
        public var terminal = 0
        /// Of those, escalations past their edge's last use of a verdict (``EscalationPayload/lastUse``): stored for
        /// training, not answered.
        public var expired = 0
        /// Verdicts published before their escalation's deadline (or for an escalation without one).
        public var inTime = 0
        /// Verdicts published after their escalation's deadline, before its last use (a late verdict corrects the
        /// edge's provisional record).
        public var late = 0

        /// One line: `received 10, duplicates 0, answered 9, rejected 1 (malformed 1), …`.
        public var description: String {
            let reasons = Refusal.allCases.compactMap { reason in refused[reason].map { "\(reason.rawValue) \($0)" } }
            return "received \(received), duplicates \(duplicates), answered \(answered), rejected \(rejected)"
                + (reasons.isEmpty ? "" : " (\(reasons.joined(separator: ", ")))")
                + ", batches \(batches), reclaimed \(reclaimed), verdicts refused \(verdictsRefused), terminal \(terminal)"
                + " (expired \(expired)), in time \(inTime), late \(late)"
        }
    }

    public let configuration: Configuration
    /// The window length and channels of the configured full model: the shape every escalation must have.
    let shape: (window: Int, channels: Int)
    /// The configured full model's manifest.
    let manifest: ModelManifest
    /// The full model answering now: the configured one, or a newer version the trainer registered.
    public let serving: ServingModel
    /// The input specs of the edge model versions whose windows this worker maps to the full model's.
    public let edgeInputs: EdgeInputCatalog
    let store: any EscalationStore
    let client: MQTTClient
    let queue = BatchQueue<Work>()
    let counters = Mutex(Statistics())
    /// Verdicts not yet acknowledged and the batching thread, which a shutdown waits for.
    let drain = Mutex(Drain.serving(unacknowledged: 0, batchesDone: false))
    /// Carries the `worker` metadata.
    let logger: Logger
    /// Where counts and latencies also go (`GET /metrics`), if anywhere.
    let metrics: CloudMetrics?
    /// Each device's token bucket, if devices are limited.
    let limiter: DeviceRateLimiter?
    /// The largest message that can be an escalation of the full model's input shape.
    let maximumPayloadBytes: Int
    /// Where escalations wait, durable, between their receipt and their batch's store transaction; nil: stored on
    /// receipt.
    let journal: EscalationJournal?
    /// Journaled rows the store refused, tried again once a second (at most ``maximumUnstored``; beyond that they wait
    /// in the journal for the worker's next start); and this worker's journal segments from its last run, until stored.
    let unstored = Mutex(
        (rows: [(row: SampleStore.Escalation, segment: Int)](), leftovers: [(number: Int, url: URL)]()))
    /// The most refused rows kept in memory to try again.
    static let maximumUnstored = 100_000
    /// Verdicts the broker acknowledged, not yet recorded in the store (the batching thread records them).
    let acknowledgedVerdicts = Mutex([(id: UUID, verdict: SampleStore.StoredVerdict)]())

    /// One escalation waiting for the model. A reference: batches, filters and the verdict's completion pass it on
    /// with one retain, not a copy of every field.
    final class Work: Sendable {
        let payload: EscalationPayload
        let bytes: [UInt8]
        let responseTopic: String
        let correlation: [UInt8]
        /// First delivery of this id (false: the store already had it), as far as receipt knows.
        let fresh: Bool
        /// When this worker received (or reclaimed) it.
        let received: ContinuousClock.Instant
        /// The row to store with its batch, and the journal segment holding it until then; nil if already stored.
        let pending: (row: SampleStore.Escalation, segment: Int)?

        init(
            payload: EscalationPayload, bytes: [UInt8], responseTopic: String, correlation: [UInt8], fresh: Bool,
            pending: (row: SampleStore.Escalation, segment: Int)? = nil, received: ContinuousClock.Instant = .now
        ) {
            self.received = received
            self.payload = payload
            self.bytes = bytes
            self.responseTopic = responseTopic
            self.correlation = correlation
            self.fresh = fresh
            self.pending = pending
        }
    }

    /// A worker answering with `model` (its artifact's manifest `manifest`), float32 or int8, each batch split
    /// across ``Configuration/modelThreads`` threads.
    ///
    /// - Parameters:
    ///   - edgeInputs: Input specs of edge model versions; a window from a known edge model is brought from
    ///     its standardization to the full model's. Unknown versions are assumed to share the full model's
    ///     (both trained on the same data).
    ///   - registry: Where versions not in `edgeInputs` are looked up (``EdgeInputCatalog``), so windows of a
    ///     model registered after the worker started (a retrained one) are mapped too.
    ///   - fullModels: The full-model registry whose production version this worker answers with once it is
    ///     set (``ServingModel``), or nil to answer with `model` only.
    ///   - trustedKeyPaths: Public key files a full model from `fullModels` must be signed by (when any are given).
    ///   - metrics: Instruments to count into as well as ``statistics``.
    ///   - logger: Where its lines go, with the `worker` metadata set; each line about one escalation adds
    ///     `escalation` and `device`.
    public init(
        configuration: Configuration, model: VerifiedModel.Engine, manifest: ModelManifest,
        edgeInputs: [String: InputSpec] = [:],
        registry: ModelRegistry? = nil, fullModels: ModelRegistry? = nil, trustedKeyPaths: [String] = [],
        store: any EscalationStore, metrics: CloudMetrics? = nil, logger: Logger
    ) throws {
        self.metrics = metrics
        self.configuration = configuration
        let classifier = BatchClassifier(engine: model, threads: configuration.modelThreads)
        shape = (classifier.window, classifier.channels)
        self.manifest = manifest
        serving = ServingModel(
            initial: .init(classifier: classifier, manifest: manifest), registry: fullModels,
            trustedKeyPaths: trustedKeyPaths)
        self.edgeInputs = EdgeInputCatalog(known: edgeInputs, registry: registry)
        self.store = store
        self.logger = logger
        limiter = configuration.deviceLimit.map {
            DeviceRateLimiter(limit: $0, reportInterval: configuration.limitReportSeconds)
        }
        maximumPayloadBytes = EscalationPayload.maximumEncodedBytes(channels: shape.channels, length: shape.window)
        journal = try configuration.journalDirectory.map { try EscalationJournal(directory: $0) }
        if let journal { unstored.withLock { $0.leftovers = journal.leftovers } }
        var client = try configuration.clientConfiguration(persistent: true)
        client.maximumInflightMessages = 1000
        client.tcpNoDelay = true
        self.client = try MQTTClient(configuration: client)
    }

    /// The counters now.
    public var statistics: Statistics { counters.withLock { $0 } }

    /// The shared subscription every worker joins.
    public var filter: String { ProtocolTopics.shared(.escalations, group: configuration.group) }

    /// Connects, subscribes and serves until a graceful shutdown or cancellation, then answers what it took.
    ///
    /// - Throws: ``MQTTError`` if the client closes before the subscription is made.
    public func run() async throws {
        // What the broker kept for this worker's session arrives before the subscription is renewed.
        client.receiveSessionMessages { [weak self] message in self?.receive(message) }
        client.start()
        guard let subscription = try await subscribeWhenConnected() else {
            // Stopped before the broker was ever reached: nothing was received, so nothing is owed.
            logger.info("stopping")
            queue.close()
            await client.disconnect()
            return
        }
        // A full version the trainer promoted before this worker started is taken before the first batch.
        followFullModels()
        recoverJournals()
        let answering = serving.current
        let line =
            "serving \(filter) with \(answering.manifest.name) \(answering.manifest.version) "
            + "(\(answering.classifier.precision.rawValue), batches of up to \(configuration.maximumBatch) split "
            + "across \(answering.classifier.threads) thread(s))"
        logger.info("\(line)")
        BackgroundThread.start(name: "tandem-cloud-batches") { [self] in batchLoop() }
        if serving.registry != nil {
            BackgroundThread.start(name: "tandem-cloud-full-models") { [self] in
                let step = 0.1
                var waited = 0.0
                while !queue.isFinished {
                    Thread.sleep(forTimeInterval: step)
                    waited += step
                    if waited >= configuration.fullModelCheckSeconds {
                        waited = 0
                        followFullModels()
                    }
                }
            }
        }
        // Thrown only by cancellation, which ends the wait below at once too.
        try? await gracefulShutdown()
        logger.info("stopping")
        subscription.cancel()
        queue.close()
        // Answer what was received, and let the broker acknowledge every verdict, before leaving.
        await waitUntilDrained(atMost: .seconds(10))
        recordAcknowledgedVerdicts()
        journal?.close()
        await client.disconnect()
    }

    /// The subscription once the broker is reached, or nil after a graceful shutdown or cancellation first (the
    /// connection attempts go on until then, retried with backoff).
    private func subscribeWhenConnected() async throws -> MQTTSubscription? {
        for await state in client.connectionStates().cancelOnGracefulShutdown() {
            if case .closed(let error) = state { throw error ?? MQTTError(.shutDown, "client closed") }
            guard state.isConnected else { continue }
            do {
                // Each escalation is stored on the network thread before libmosquitto acknowledges it, so
                // one this worker has acknowledged survives the worker being killed.
                return try await client.subscribe(to: filter, qos: .atLeastOnce) { [weak self] message in
                    self?.receive(message)
                }
            } catch {
                logger.warning("subscribing failed, retrying: \(escaping: error)")
            }
        }
        return nil
    }

    /// Returns once the batching thread has answered what was queued and the broker has acknowledged every
    /// verdict, or after `limit`, or as soon as the connection to the broker is lost (no acknowledgement can
    /// come then; what is left unanswered stays in the store for another worker), or at once when the task is
    /// cancelled.
    private func waitUntilDrained(atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    if self.drain.withLock({ $0.wait(continuation) }) { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                self.drain.withLock { $0.giveUp() }?.resume()
            }
            group.addTask {
                for await state in self.client.connectionStates() where !state.isConnected {
                    self.logger.warning("the broker connection is gone; not waiting for verdicts to be acknowledged")
                    self.drain.withLock { $0.giveUp() }?.resume()
                    return
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Counts a refusal.
    ///
    /// - Returns: Refusals so far, all reasons together.
    private func count(_ refusal: Refusal) -> Int {
        metrics?.escalationRejected(reason: refusal)
        return counters.withLock {
            $0.rejected += 1
            $0.refused[refusal, default: 0] += 1
            return $0.rejected
        }
    }

    /// Swaps in the full-model registry's production version if it changed, and says so.
    func followFullModels() {
        switch serving.refresh() {
        case .none: break
        case .swapped(let from, let to):
            let precision = serving.current.classifier.precision.rawValue
            logger.info(
                "full model: now answering with \(escaping: to) (was \(escaping: from)) in \(precision); swapped between batches"
            )
        case .refused(let version, let reason):
            logger.error(
                "full model: production version \(escaping: version) not used, still answering with \(escaping: serving.current.manifest.version): \(escaping: reason)"
            )
        }
    }

    /// Reads one escalation message and, unless it is refused, stores it and queues it for the model.
    ///
    /// Refused, in this order, and counted by reason: a topic that is not a device's escalations topic; a device over
    /// its rate limit; a message larger than an escalation of the model's input shape can be; one that does not
    /// decode; one naming another device than its topic; a window of another shape than the model's. A refused
    /// escalation is neither stored nor answered.
    func receive(_ message: MQTTMessage) {
        // The verdict latency counts from here: the journal write or the store insert is part of it.
        let arrived = ContinuousClock.now
        func reject(_ refusal: Refusal, _ reason: @autoclosure () -> String) {
            let total = count(refusal)
            if total <= 10 || total.isMultiple(of: 1000) {
                logger.warning(
                    "escalation on \(escaping: message.topic) skipped (\(refusal.rawValue), \(total) so far): \(escaping: reason())",
                    metadata: DeviceTopicAddress(topic: message.topic).map { ["device": .escaping($0.device)] })
            }
        }
        // Authority comes from the topic, which the broker's ACL ties to the device's credentials: the device
        // stored is the topic's, and the verdict goes to that device's verdicts topic whatever response topic the
        // message asks for.
        guard let address = DeviceTopicAddress(topic: message.topic), address.kind == .escalations else {
            reject(.notEscalationTopic, "not a device's escalations topic")
            return
        }
        if let limiter, case .refuse(let report) = limiter.take(fleet: address.fleet, device: address.device) {
            _ = count(.rateLimited)
            if let report {
                let line =
                    "device \(escaping: address.fleet)/\(escaping: address.device) is over its escalation limit "
                    + "(\(limiter.limit)): \(report) escalation(s) refused since the last report, neither stored nor "
                    + "answered"
                logger.warning("\(line)", metadata: ["device": .escaping(address.device)])
            }
            return
        }
        var payload: EscalationPayload
        switch check(message.payload, from: address) {
        case .success(let checked): payload = checked
        case .failure(let refusal):
            reject(refusal.reason, refusal.message)
            return
        }
        counters.withLock { $0.received += 1 }
        metrics?.escalationsReceived.increment()
        let correlation = message.properties.correlationData ?? withUnsafeBytes(of: payload.id.uuid) { Array($0) }
        let now = Date().timeIntervalSince1970
        payload = Self.boundingDeadlines(of: payload, receivedAt: now)
        let row = Self.row(payload, message.payload, address, receivedAt: now)
        let (deadline, lastUse) = (payload.deadline ?? .infinity, payload.lastUse ?? .infinity)
        if let journal {
            do {
                // Durable before libmosquitto acknowledges it; stored with its batch.
                let segment = try journal.append(
                    topic: message.topic, payload: message.payload, receivedAt: row.receivedAt)
                let work = Work(
                    payload: payload, bytes: message.payload, responseTopic: row.responseTopic,
                    correlation: correlation, fresh: true, pending: (row, segment), received: arrived)
                queue.put(work, deadline: deadline, lastUse: lastUse)
                return
            } catch {
                logger.error("\(escaping: error); storing the escalation on receipt instead")
            }
        }
        var fresh = true
        do {
            fresh = try store.insert(row)
        } catch {
            logger.error(
                "store: \(escaping: error)",
                metadata: ["escalation": "\(payload.id)", "device": .escaping(payload.device)])
        }
        let work = Work(
            payload: payload, bytes: message.payload, responseTopic: row.responseTopic, correlation: correlation,
            fresh: fresh, received: arrived)
        queue.put(work, deadline: deadline, lastUse: lastUse)
    }

    /// Why an escalation's bytes were refused, with the line that says so.
    struct CheckFailure: Error {
        var reason: Refusal
        var message: String
    }

    /// The checks of an escalation's bytes, from `address`'s device, that receipt makes after the topic and the rate
    /// limit, and a journal's recovery makes again: its size, its decoding, the device it names, its window's shape.
    func check(_ bytes: [UInt8], from address: DeviceTopicAddress) -> Result<EscalationPayload, CheckFailure> {
        guard bytes.count <= maximumPayloadBytes else {
            return .failure(
                CheckFailure(
                    reason: .tooLarge,
                    message: "\(bytes.count) bytes, more than an escalation of the model's \(shape.window)×"
                        + "\(shape.channels) input can be (\(maximumPayloadBytes))"))
        }
        let payload: EscalationPayload
        do {
            payload = try EscalationPayload(decoding: bytes)
        } catch {
            return .failure(CheckFailure(reason: .malformed, message: "\(error)"))
        }
        guard payload.device == address.device else {
            return .failure(
                CheckFailure(
                    reason: .otherDevice,
                    message: "the payload names device '\(payload.device.prefix(64))', the topic '\(address.device)'"))
        }
        guard payload.length == shape.window, payload.channels == shape.channels else {
            return .failure(
                CheckFailure(
                    reason: .wrongShape,
                    message: "escalation \(payload.id) is \(payload.length)×\(payload.channels), the model takes "
                        + "\(shape.window)×\(shape.channels)"))
        }
        return .success(payload)
    }

    /// How far ahead of its receipt an escalation's deadline and last use count (longer ones are cut to it): 10 minutes.
    static let longestDeadlineSeconds = 600.0

    /// `payload` with its deadline and last use cut to at most ``longestDeadlineSeconds`` after its receipt. A deadline
    /// is the device's word: it orders the queue, so it may not buy a place ahead of the others for longer than an
    /// honest edge's correction window (60 s) plus clock skew allows.
    static func boundingDeadlines(of payload: EscalationPayload, receivedAt now: Double) -> EscalationPayload {
        guard let deadline = payload.deadline, let lastUse = payload.lastUse else { return payload }
        var payload = payload
        payload.deadline = min(deadline, now + longestDeadlineSeconds)
        payload.lastUse = min(lastUse, now + longestDeadlineSeconds)
        return payload
    }

    /// The store's row for an escalation of `address`'s device (its verdicts go to that device's verdicts topic).
    static func row(_ payload: EscalationPayload, _ bytes: [UInt8], _ address: DeviceTopicAddress, receivedAt: Double)
        -> SampleStore.Escalation
    {
        SampleStore.Escalation(
            id: payload.id, device: address.device, stream: payload.stream, payload: bytes,
            responseTopic: address.topics.verdicts, edgeLabel: payload.topK.first?.label ?? -1,
            edgeConfidence: Double(payload.confidence), edgeModel: payload.modelVersion, receivedAt: receivedAt,
            fleet: address.fleet, windowStart: payload.windowStart)
    }

    /// Stores the rows of `batch` still waiting in the journal, in one transaction with the acknowledged `verdicts`,
    /// and releases them from it. If the store fails they stay in the journal and are tried again once a second
    /// (``storeRefusedRows()``), and are answered all the same; the verdicts are then tried in a transaction of their
    /// own (both are idempotent, whichever half was recorded).
    ///
    /// - Returns: for each of `batch`, whether it is the first delivery of its id.
    private func storePending(
        _ batch: [Work], recording verdicts: [(id: UUID, verdict: SampleStore.StoredVerdict)]
    ) -> [Bool] {
        var fresh = batch.map(\.fresh)
        let waiting = batch.indices.filter { batch[$0].pending != nil }
        guard !waiting.isEmpty else {
            record(verdicts)
            return fresh
        }
        do {
            let stored = try store.insert(
                waiting.map { batch[$0].pending!.row }, answering: verdicts, at: Date().timeIntervalSince1970)
            journal?.release(waiting.map { batch[$0].pending!.segment })
            for (k, i) in waiting.enumerated() { fresh[i] = stored[k] }
        } catch {
            record(verdicts)
            let kept = unstored.withLock { unstored in
                let room = max(0, Self.maximumUnstored - unstored.rows.count)
                unstored.rows += waiting.prefix(room).map { batch[$0].pending! }
                return min(room, waiting.count)
            }
            let line =
                "store: \(escaping: error); \(waiting.count) escalation(s) stay in the journal, \(kept) to be stored again "
                + "in a second (the rest at the worker's next start), and are answered now"
            logger.error("\(line)")
        }
        return fresh
    }

    /// Tries again to store the journaled rows the store refused before.
    private func storeRefusedRows() {
        let rows = unstored.withLock { unstored in
            defer { unstored.rows.removeAll() }
            return unstored.rows
        }
        guard !rows.isEmpty else { return }
        do {
            _ = try store.insert(rows.map(\.row))
            journal?.release(rows.map(\.segment))
            logger.info("store: stored \(rows.count) escalation(s) it had refused before")
        } catch {
            unstored.withLock { $0.rows = rows + $0.rows }
        }
    }

    /// Stores what journals of earlier runs hold: this worker's segments from its last run, and the journals in the
    /// same parent directory that no running worker holds (killed workers'); what the store refuses is tried again at
    /// the next call (once a second). Rows are checked as on receipt (a record that no longer decodes or fits is
    /// skipped); the recovery answers them like any other escalation left unanswered.
    func recoverJournals() {
        guard let journal else { return }
        storeRefusedRows()
        var sources = [(name: String, segments: [(number: Int, url: URL)], finish: ([URL]) -> Void)]()
        let leftovers = unstored.withLock { $0.leftovers }
        if !leftovers.isEmpty {
            sources.append(
                (
                    "this worker's last run", leftovers,
                    { urls in
                        urls.forEach { unlink($0.path) }
                        let done = Set(urls)
                        self.unstored.withLock { $0.leftovers.removeAll { done.contains($0.url) } }
                    }
                ))
        }
        for orphan in EscalationJournal.orphans(
            in: journal.directory.deletingLastPathComponent(), except: journal.directory)
        {
            sources.append(
                (
                    "the stopped worker's journal \(orphan.directory.lastPathComponent)", orphan.segments,
                    { EscalationJournal.finish(orphan: orphan, removing: $0) }
                ))
        }
        for source in sources {
            var stored = 0
            var skipped = 0
            var done = [URL]()
            for segment in source.segments {
                let (entries, damaged) = EscalationJournal.read(segment: segment.url)
                skipped += damaged
                let rows = entries.compactMap { entry -> SampleStore.Escalation? in
                    guard let address = DeviceTopicAddress(topic: entry.topic), address.kind == .escalations,
                        case .success(let payload) = check(entry.payload, from: address)
                    else {
                        skipped += 1
                        return nil
                    }
                    return Self.row(payload, entry.payload, address, receivedAt: entry.receivedAt)
                }
                do {
                    stored += try store.insert(rows).filter { $0 }.count
                    done.append(segment.url)
                } catch {
                    logger.error("store: \(escaping: error); \(source.name) is read again later")
                    break
                }
            }
            source.finish(done)
            if stored > 0 || skipped > 0 {
                let line =
                    "journal: stored \(stored) escalation(s) from \(source.name) that had not reached the store"
                    + (skipped > 0 ? " (\(skipped) unreadable record(s) skipped)" : "")
                logger.warning("\(line)")
            }
        }
    }

    /// The batching thread: takes batches until the queue is closed and empty.
    private func batchLoop() {
        var lastReclaim = Date()
        while true {
            // Work that can still reach its edge before the deadline goes first.
            let batch = queue.take(
                maximum: configuration.maximumBatch, maximumWait: configuration.maximumWait, idle: 0.2,
                now: Date().timeIntervalSince1970)
            if batch.isEmpty {
                recordAcknowledgedVerdicts()
                if queue.isFinished { break }
            } else {
                // The verdicts acknowledged meanwhile are recorded in the batch's own store transaction.
                process(batch, recording: takeAcknowledgedVerdicts())
            }
            if Date().timeIntervalSince(lastReclaim) > 1 {
                lastReclaim = Date()
                recoverJournals()
                reclaimStale()
            }
        }
        recordAcknowledgedVerdicts()
        drain.withLock { $0.batchesFinished() }?.resume()
    }

    /// Records the verdicts the broker acknowledged since the last call, in one store transaction. One that cannot be
    /// recorded leaves its escalation unanswered in the store, to be answered again by the recovery.
    func recordAcknowledgedVerdicts() {
        record(takeAcknowledgedVerdicts())
    }

    /// The verdicts the broker acknowledged since the last call, taken out of the list.
    private func takeAcknowledgedVerdicts() -> [(id: UUID, verdict: SampleStore.StoredVerdict)] {
        acknowledgedVerdicts.withLock { verdicts in
            defer { verdicts.removeAll(keepingCapacity: true) }
            return verdicts
        }
    }

    /// Records acknowledged verdicts in one store transaction; see ``recordAcknowledgedVerdicts()``.
    private func record(_ verdicts: [(id: UUID, verdict: SampleStore.StoredVerdict)]) {
        guard !verdicts.isEmpty else { return }
        do {
            try store.answer(verdicts, at: Date().timeIntervalSince1970)
        } catch {
            logger.error(
                "store: \(verdicts.count) answered escalation(s) not recorded, to be answered again: \(escaping: error)"
            )
        }
    }

    /// Escalations stored but never answered (a worker died, or answering failed): answer them here, and give up on
    /// those tried ``Configuration/answerAttempts`` times or that can never be answered.
    private func reclaimStale() {
        do {
            let claim = try store.claimStale(
                worker: configuration.workerID, staleSeconds: configuration.staleSeconds,
                now: Date().timeIntervalSince1970, limit: configuration.maximumBatch,
                maximumClaims: max(0, configuration.answerAttempts - 1))
            report(claim.givenUp.map { ($0.id, $0.device) }, terminal: .gaveUp)
            guard !claim.escalations.isEmpty else { return }
            var undecodable = [SampleStore.Escalation]()
            let work = claim.escalations.compactMap { e -> Work? in
                guard let payload = try? EscalationPayload(decoding: e.payload) else {
                    undecodable.append(e)
                    return nil
                }
                return Work(
                    payload: payload, bytes: e.payload, responseTopic: e.responseTopic,
                    correlation: withUnsafeBytes(of: e.id.uuid) { Array($0) }, fresh: true)
            }
            giveUp(undecodable.map { ($0.id, $0.device) }, reason: .undecodable)
            guard !work.isEmpty else { return }
            counters.withLock { $0.reclaimed += work.count }
            logger.info("answering \(work.count) escalation(s) left unanswered")
            process(work)
        } catch {
            logger.error("store: \(escaping: error)")
        }
    }

    /// Makes stored escalations terminal for `reason` and reports those this call changed.
    private func giveUp(_ rows: [(id: UUID, device: String)], reason: SampleStore.TerminalReason) {
        guard !rows.isEmpty else { return }
        do {
            let marked = Set(try store.markTerminal(rows.map(\.id), reason: reason, at: Date().timeIntervalSince1970))
            report(rows.filter { marked.contains($0.id) }, terminal: reason)
        } catch {
            logger.error("store: \(escaping: error)")
        }
    }

    /// Counts and logs rows made terminal: one line per call, naming each row once (the row is never claimed
    /// again, so it is never named again).
    private func report(_ rows: [(id: UUID, device: String)], terminal reason: SampleStore.TerminalReason) {
        guard !rows.isEmpty else { return }
        counters.withLock { $0.terminal += rows.count }
        metrics?.escalationsTerminal(reason: reason, count: rows.count)
        let why =
            switch reason {
            case .undecodable: "its stored payload does not decode"
            case .wrongShape: "its window is not of the model's shape \(shape.window)×\(shape.channels)"
            case .gaveUp: "still unanswered after \(configuration.answerAttempts) tries"
            case .expired: "its edge's last use of a verdict has passed"
            }
        let names = rows.map { "\($0.id) (\($0.device.escapingControlCharacters))" }.joined(separator: ", ")
        logger.warning(
            "giving up on \(rows.count) escalation(s), never to be answered (\(reason.rawValue): \(why)): \(names)",
            metadata: rows.count == 1 ? ["escalation": "\(rows[0].id)", "device": .escaping(rows[0].device)] : [:])
    }

    /// Classifies and answers one batch of stored escalations, recording the acknowledged `verdicts` of earlier
    /// batches in the same store transaction as its rows.
    ///
    /// - Returns: The verdicts it published (or tried to, if the client is stopped).
    @discardableResult
    func process(
        _ batch: [Work], recording verdicts: [(id: UUID, verdict: SampleStore.StoredVerdict)] = []
    ) -> [Verdict] {
        let fresh = storePending(batch, recording: verdicts)
        var published = [Verdict]()
        // A duplicate delivery of an answered escalation gets the stored verdict again, not a new one.
        var toClassify = [Int]()
        for i in batch.indices {
            if !fresh[i] { metrics?.escalationsDuplicate.increment() }
            if !fresh[i], let stored = try? store.verdict(for: batch[i].payload.id) {
                counters.withLock { $0.duplicates += 1 }
                let verdict = Verdict(
                    escalationId: batch[i].payload.id, label: stored.label, probabilities: stored.probabilities,
                    modelVersion: stored.model)
                publish(verdict, to: batch[i], record: false)
                published.append(verdict)
            } else {
                if !fresh[i] { counters.withLock { $0.duplicates += 1 } }
                toClassify.append(i)
            }
        }
        toClassify = dropExpired(toClassify, of: batch)
        guard !toClassify.isEmpty else { return published }
        // One version answers the whole batch; a swap takes effect at the next one.
        let answering = serving.current
        let classifier = answering.classifier
        let (w, c) = (classifier.window, classifier.channels)
        var usable = [Int]()
        var wrongShape = [(id: UUID, device: String)]()
        var scalars = [Float]()
        scalars.reserveCapacity(toClassify.count * w * c)
        for i in toClassify {
            let p = batch[i].payload
            // Refused at receipt; a row stored before (or for another full model) can never be answered here.
            guard p.length == w, p.channels == c, p.window.count == w * c else {
                wrongShape.append((p.id, p.device))
                continue
            }
            usable.append(i)
            appendStandardized(p, for: answering.manifest.input, to: &scalars)
        }
        giveUp(wrongShape, reason: .wrongShape)
        guard !usable.isEmpty else { return published }
        let classes = classifier.classes
        var probabilities = [Float](repeating: 0, count: usable.count * classes)
        do {
            try scalars.withUnsafeBufferPointer { x in
                try probabilities.withUnsafeMutableBufferPointer {
                    try classifier.probabilities(x, count: usable.count, into: $0)
                }
            }
        } catch {
            logger.error("model: \(escaping: error)")
            return published
        }
        for (row, i) in usable.enumerated() {
            let p = Array(probabilities[(row * classes)..<((row + 1) * classes)])
            var best = 0
            for k in p.indices where p[k] > p[best] { best = k }
            let verdict = Verdict(
                escalationId: batch[i].payload.id, label: best, probabilities: p,
                modelVersion: answering.manifest.version)
            publish(verdict, to: batch[i], record: true)
            published.append(verdict)
        }
        counters.withLock { $0.batches += 1 }
        metrics?.batchSize.record(usable.count)
        return published
    }

    /// The indices of `batch` in `indices` whose edge can still use a verdict; the others are made terminal
    /// (`expired`: stored for training, not answered), counted, and logged (the first 10, then every 1,000th).
    private func dropExpired(_ indices: [Int], of batch: [Work]) -> [Int] {
        let now = Date().timeIntervalSince1970
        var expired = [(id: UUID, device: String)]()
        let usable = indices.filter { i in
            guard let lastUse = batch[i].payload.lastUse, now > lastUse else { return true }
            expired.append((batch[i].payload.id, batch[i].payload.device))
            return false
        }
        guard !expired.isEmpty else { return usable }
        do {
            let marked = try store.markTerminal(expired.map(\.id), reason: .expired, at: now)
            let (total, first) = counters.withLock {
                let first = $0.expired
                $0.terminal += marked.count
                $0.expired += marked.count
                return ($0.expired, first)
            }
            metrics?.escalationsTerminal(reason: .expired, count: marked.count)
            if first < 10 || total / 1000 > first / 1000 {
                let line =
                    "\(marked.count) escalation(s) past their edge's last use of a verdict, stored for training and not "
                    + "answered (\(total) so far; e.g. \(expired[0].id) from \(expired[0].device.escapingControlCharacters)); "
                    + "a device whose every escalation expires may have a clock behind the cloud's"
                logger.warning("\(line)")
            }
        } catch {
            logger.error("store: \(escaping: error)")
        }
        return usable
    }

    /// The window in the answering full model's standardization (`full`).
    private func appendStandardized(_ p: EscalationPayload, for full: InputSpec, to scalars: inout [Float]) {
        let c = p.channels
        guard let edge = edgeInputs.spec(for: p.modelVersion), edge.mean.count == c, edge.std.count == c,
            full.mean.count == c, full.std.count == c, edge.mean != full.mean || edge.std != full.std
        else {
            scalars.append(contentsOf: p.window)
            return
        }
        for (k, v) in p.window.enumerated() {
            let ch = k % c
            scalars.append((v * edge.std[ch] + edge.mean[ch] - full.mean[ch]) / full.std[ch])
        }
    }

    /// Counts and logs (the first 10, then every 1,000th) a verdict the broker refused; its escalation stays
    /// unanswered, to be tried again until it is given up.
    private func refused(_ verdict: Verdict, _ reasonCode: Int32, _ work: Work) {
        let count = counters.withLock {
            $0.verdictsRefused += 1
            return $0.verdictsRefused
        }
        metrics?.verdictsRefused.increment()
        if count <= 10 || count.isMultiple(of: 1000) {
            let line =
                "the broker refused the verdict for \(verdict.escalationId) on \(escaping: work.responseTopic) (reason "
                + "code \(reasonCode), \(count) refused so far); it is tried again, \(configuration.answerAttempts) times "
                + "in all"
            logger.warning(
                "\(line)",
                metadata: ["escalation": "\(verdict.escalationId)", "device": .escaping(work.payload.device)])
        }
    }

    /// Publishes a verdict; once the broker has it (PUBACK), it counts as answered and, with `record`, is
    /// queued to be stored by the batching thread (``recordAcknowledgedVerdicts()``) — a verdict still in this
    /// process when it dies leaves its escalation unanswered, to be answered again by a live worker.
    private func publish(_ verdict: Verdict, to work: Work, record: Bool) {
        let message = MQTTMessage(
            topic: work.responseTopic, payload: verdict.encoded(), qos: .atLeastOnce, retain: false,
            properties: MQTTPublishProperties(correlationData: work.correlation))
        let stored = SampleStore.StoredVerdict(
            label: verdict.label, probabilities: verdict.probabilities, model: verdict.modelVersion)
        drain.withLock { $0.published() }
        let inTime = Date().timeIntervalSince1970 <= work.payload.deadline ?? .infinity
        counters.withLock { inTime ? ($0.inTime += 1) : ($0.late += 1) }
        metrics?.verdictTimeliness(inTime: inTime)
        do {
            try client.publish(message) { [weak self] result in
                guard let self else { return }
                // Queued for the store before the drain counts it, so a stopping worker records it too.
                defer { drain.withLock { $0.acknowledged() }?.resume() }
                guard case .success(let ack) = result, ack.isAccepted else {
                    if case .success(let ack) = result { refused(verdict, ack.reasonCode, work) }
                    return
                }
                counters.withLock { $0.answered += 1 }
                if let metrics {
                    metrics.verdictsAnswered.increment()
                    let elapsed = (ContinuousClock.now - work.received).components
                    metrics.verdictLatency.recordNanoseconds(
                        elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
                }
                guard record else { return }
                let first = acknowledgedVerdicts.withLock { verdicts in
                    verdicts.append((verdict.escalationId, stored))
                    return verdicts.count == 1
                }
                // An idle batching thread records it now; a busy one after its batch, with the others.
                if first { queue.wake() }
            }
        } catch {
            drain.withLock { $0.acknowledged() }?.resume()
            logger.warning(
                "verdict for \(verdict.escalationId) not sent: \(escaping: error)",
                metadata: ["escalation": "\(verdict.escalationId)", "device": .escaping(work.payload.device)])
        }
    }
}
