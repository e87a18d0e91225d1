import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TandemCore
import TandemFleet
import TandemMQTT
import TandemTraining

/// The retraining loop inside a cloud worker: checks the trigger, takes the training lease, runs a
/// ``RetrainingRound``, promotes the fine-tuned full model to the workers when it passes its own gate, and when the
/// edge gate passes registers (signs), publishes and rolls out the new edge model.
///
/// Every `checkIntervalSeconds` the service counts the escalations and labels stored since the last round
/// started, takes each device's escalation history on its current model from the fleet's status messages
/// (an ``EscalationHistory``, sampled every few seconds), and asks the ``RetrainingTrigger``. When a round is
/// due it takes the store's training lease (so of all workers sharing the store exactly one trains) and renews
/// it while it works. The round's current edge model is the registry's production version, so a promoted model
/// is what the next round improves on.
/// The round fine-tunes the full-model registry's production version (`{data-dir}/full`), else the worker's
/// configured model. A fine-tuned full model that passes its gate is registered there (signed) and made production,
/// so every worker of the data directory answers with it from its next batch (``ServingModel``); it stays on trial
/// until enough labelled escalations arrived, and goes back to the version it replaced if its label accuracy on them
/// is lower (``judgeFullModel()``).
/// An edge candidate that passes the gate is registered (checked and signed with the fleet's key), its artifact
/// published retained, and a staged rollout started and driven by a ``RolloutController`` until it is promoted
/// or rolled back. The round is recorded in the store (outcome, version, gate report) and in the audit log.
///
/// The round runs on a thread of its own at a lower scheduling priority (``Configuration/trainerNice``), so the
/// worker's escalations are answered first while it trains.
///
/// As a `Service` it runs until a graceful shutdown or cancellation, which is honoured between phases: a round in
/// training is given up before its next phase (and not recorded), a rollout in canary is left in canary for the
/// next trainer (or `tandem rollout watch`) to drive; either way the lease is released.
public final class RetrainingService: Service, Sendable {
    /// Settings of the loop; the defaults are those of `tandem-cloud serve --trainer`.
    public struct Configuration: Sendable {
        /// The fleet whose devices get the new models.
        public var fleet = "default"
        /// The lease holder's name (the worker id).
        public var holder = "1"
        /// Who automatic registrations and publications are attributed to in the audit log.
        public var actor = "trainer"
        /// Seconds between trigger checks. Default 30.
        public var checkIntervalSeconds = 30.0
        /// How long the lease lasts without renewal, in seconds; it is renewed every third of that. Default 120.
        public var leaseSeconds = 120.0
        /// When a round is due. Default: 1,000 new hard examples, 100 new labels or drift; no schedule.
        public var trigger = RetrainingTrigger()
        /// The round's settings (epochs, gate tolerance, seed).
        public var round = RetrainingRound.Options()
        /// The staged rollout of a candidate that passes. Default: 10 % canary, 10 minutes' soak.
        public var policy = RolloutPolicy(canaryPercent: 10, soakSeconds: 600)
        /// Seconds between rollout steps while a canary runs. Default 5.
        public var rolloutStepSeconds = 5.0
        /// Seconds between passes of the fleet's desired state (``RolloutController/reconcile(now:)``): a device
        /// whose status shows another version than its pin, the canary's or production is assigned it. 0 turns
        /// it off. Default 2.
        public var desiredStateIntervalSeconds = 2.0
        /// A drill: the round trains on the original data with shuffled labels (and hard labels only), so its
        /// candidate is deliberately worse and the gate (or the canary) must stop it. Default off.
        public var trainOnShuffledLabels = false
        /// The nice value (0–19) the round's thread runs at, so the escalation server's threads come first on a
        /// busy machine. Default 10.
        public var trainerNice: Int32 = 10
        /// Labelled escalations a promoted full model's trial waits for before it compares the new version with
        /// the one it replaced (rolling back if it is more than the policy's `maximumAccuracyDrop` worse). Default 50.
        public var fullMinimumLabelledWindows = 50

        /// The defaults.
        public init() {}
    }

    /// How a round ended.
    public enum Outcome: String, Sendable, Codable, CaseIterable {
        /// The candidate failed the gate; nothing was registered.
        case gateFailed = "gate-failed"
        /// The candidate was canaried and promoted: it is production.
        case promoted
        /// The canary regressed and the cohort was returned to the previous version.
        case rolledBack = "rolled-back"
        /// Registering, publishing or starting the rollout failed (the reason says why).
        case rolloutFailed = "rollout-failed"
        /// The service stopped while the canary ran; the rollout stays in canary.
        case leftInCanary = "left-in-canary"
    }

    /// What one finished round did.
    public struct RoundReport: Sendable {
        /// Why it ran.
        public var reasons: [String]
        /// The candidate edge model's version.
        public var version: String
        /// The gate's report.
        public var gate: RetrainingRound.GateReport
        /// How it ended.
        public var outcome: Outcome
        /// One line for logs, the store and the audit log.
        public var summary: String
    }

    /// The settings.
    public let configuration: Configuration
    let full: ModelArtifact
    let data: DataSplit
    let edgeSpec: ModelSpecFile
    let signingKey: Curve25519.Signing.PrivateKey
    let store: any TrainingStore
    let registry: ModelRegistry
    let audit: AuditLog
    let client: MQTTClient
    let catalog: EdgeInputCatalog?
    let logger: Logger
    /// Set by a graceful shutdown or cancellation; the round's training loop checks it between steps.
    let stopping = Atomic<Bool>(false)
    let reports = Mutex<[RoundReport]>([])
    /// The fleet's rollout controller while the loop runs (the HTTP API's rollout and pin routes act through it).
    let runningController = Mutex<RolloutController?>(nil)
    /// The full-model version on trial whose wait for labels from more devices was logged (once a trial).
    let trialWaitLogged = Mutex<String?>(nil)
    let holdsLease = Atomic<Bool>(false)
    /// The running round's step and progress lines (`GET /v1/training`).
    public let progress: RoundProgress
    /// Seconds since 1970 before which no round starts: set after a round that failed with an error, so the
    /// reason that started it does not start another every check.
    let noRoundBefore = Atomic<Double>(0)
    /// Set when a round drift started is promoted, cleared when the next round is recorded (one that fails before its
    /// record keeps it); ``RetrainingTrigger/followUpLabels``.
    let followUpDue = Atomic<Bool>(false)
    let history: Mutex<EscalationHistory>
    /// The full models the rounds fine-tune and the workers answer with (`{data-dir}/full`).
    let fullModels: ModelRegistry
    /// When the service was made: the schedule's start until a round is recorded.
    let createdAt = Date().timeIntervalSince1970

    /// A service for one worker.
    ///
    /// - Parameters:
    ///   - configuration: The settings.
    ///   - full: The full (float) model the worker was configured with; rounds fine-tune the full-model registry's
    ///     production version once there is one, else this.
    ///   - data: The original training data (as `DataSource.load` reads it, windowed like `full`'s input).
    ///   - edgeSpec: The edge model's spec (layers, distillation settings).
    ///   - signingKey: The Ed25519 key devices trust.
    ///   - store: The sample store the workers share (SQLite or PostgreSQL).
    ///   - registry: The model registry (its directory also holds the rollout state and the audit log).
    ///   - client: An MQTT client, not yet started, for publishing and for the fleet's statuses.
    ///   - catalog: Told about each registered version, so this worker maps its windows at once.
    ///   - progress: Where the running round's step and lines are kept for `GET /v1/training`.
    ///   - logger: Where progress lines go (each line of a round with its `round` metadata: the second it
    ///     started).
    public init(
        configuration: Configuration, full: ModelArtifact, data: DataSplit, edgeSpec: ModelSpecFile,
        signingKey: Curve25519.Signing.PrivateKey, store: any TrainingStore, registry: ModelRegistry,
        client: MQTTClient, catalog: EdgeInputCatalog? = nil, progress: RoundProgress = RoundProgress(),
        logger: Logger
    ) throws {
        self.configuration = configuration
        self.full = full
        self.data = data
        self.edgeSpec = edgeSpec
        self.signingKey = signingKey
        self.store = store
        self.registry = registry
        self.audit = AuditLog(url: registry.directory.appendingPathComponent(AuditLog.fileName))
        self.client = client
        self.catalog = catalog
        self.progress = progress
        self.logger = logger
        self.history = Mutex(EscalationHistory(driftWindowSeconds: configuration.trigger.driftWindowSeconds))
        self.fullModels = try ModelRegistry(directory: registry.directory.appendingPathComponent("full"))
    }

    /// The fleet's rollout controller, once the loop has connected and until it stops; nil otherwise.
    public var rolloutController: RolloutController? { runningController.withLock { $0 } }

    /// The rounds this service finished, oldest first.
    public var finishedRounds: [RoundReport] { reports.withLock { $0 } }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Logs a progress line and keeps it for `GET /v1/training` if it belongs to the running round.
    ///
    /// - Parameter round: When the round the line is about started (its `round` metadata), if it is about one.
    func log(_ line: String, _ level: Logger.Level = .info, round: Double? = nil) {
        progress.note(line)
        logger.log(level: level, "\(line)", metadata: round.map { ["round": "\(Int($0))"] })
    }

    /// Checks the trigger every `checkIntervalSeconds` and runs rounds until a graceful shutdown or cancellation.
    public func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            await serve()
        } onCancelOrGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
        }
    }

    private func serve() async {
        let c = configuration
        log(
            "trainer: checking every \(c.checkIntervalSeconds) s (round at \(c.trigger.rules); canary \(c.policy.canaryPercent) %, soak \(c.policy.soakSeconds) s)"
        )
        client.start()
        guard await connected(), let monitor = await monitor() else {
            await client.disconnect()
            log("trainer: stopped")
            return
        }
        // The fleet's assignments are signed with the same key as its artifacts; a revoked key leaves the
        // trainer without a signer, so its rollouts fail with that reason rather than publish what devices refuse.
        let signer: AssignmentSigner?
        do {
            signer = try AssignmentSigner(
                key: signingKey, state: FleetSigningState(directory: registry.directory, fleet: c.fleet))
        } catch {
            log("trainer: cannot sign assignments: \(escaping: error)", .error)
            signer = nil
        }
        let controller = RolloutController(
            registry: registry, distributor: ModelDistributor(client: client, fleet: c.fleet, signer: signer),
            monitor: monitor, audit: audit, actor: c.actor, log: { [self] in log("trainer: rollout: \(escaping: $0)") })
        runningController.withLock { $0 = controller }
        defer { runningController.withLock { $0 = nil } }
        await withTaskGroup(of: Void.self) { group in
            // Statuses are sampled more often than the trigger is checked (and while a round runs), so each
            // interval ends close to when its status arrived.
            group.addTask { [self] in
                while !isStopping && !Task.isCancelled {
                    sample(monitor)
                    // A promoted full model is judged while rounds and canaries run too.
                    do {
                        try judgeFullModel()
                    } catch {
                        log("trainer: full model: cannot judge its trial: \(escaping: error)", .error)
                    }
                    await pause(seconds: min(c.checkIntervalSeconds, 5))
                }
            }
            // A device that comes online on another version (new, reprovisioned, restored from a backup) is
            // assigned the one it should run within seconds, not at the next rollout.
            if c.desiredStateIntervalSeconds > 0 && signer != nil {
                let interval = Duration.milliseconds(Int(min(c.desiredStateIntervalSeconds, 3600) * 1000))
                group.addTask { await controller.maintainDesiredState(interval: interval) }
                // The same for agent policies (`tandem policy`): a device on another policy than production (or its
                // canary's) is signed the one it should have.
                let policies = PolicyController(
                    directory: registry.directory, fleet: c.fleet, client: client, monitor: monitor, key: signingKey,
                    audit: audit, actor: c.actor, log: { [self] in log("trainer: policy: \(escaping: $0)") })
                group.addTask { [self] in
                    var reported = false
                    while !isStopping && !Task.isCancelled {
                        do {
                            try await policies.reconcile()
                            reported = false
                        } catch {
                            if !reported { log("trainer: policy desired state: \(escaping: error)", .warning) }
                            reported = true
                        }
                        try? await Task.sleep(for: interval)
                    }
                }
            }
            while !isStopping && !Task.isCancelled {
                do {
                    try await check(controller)
                } catch {
                    log("trainer: \(escaping: error)", .error)
                }
                await pause(seconds: c.checkIntervalSeconds)
            }
            group.cancelAll()
        }
        releaseLease()
        monitor.stop()
        await client.disconnect()
        log("trainer: stopped")
    }

    /// Whether the client reached the broker before a graceful shutdown or cancellation.
    private func connected() async -> Bool {
        for await state in client.connectionStates().cancelOnGracefulShutdown() {
            if state.isConnected { return true }
            if case .closed = state { return false }
        }
        return false
    }

    private func monitor() async -> FleetMonitor? {
        while !isStopping {
            do {
                return try await FleetMonitor(client: client, fleet: configuration.fleet)
            } catch {
                log("trainer: cannot follow the fleet's statuses, retrying: \(escaping: error)", .warning)
                await pause(seconds: 1)
            }
        }
        return nil
    }

    /// Sleeps up to `seconds`, waking early on a graceful shutdown or cancellation.
    private func pause(seconds: Double) async {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
    }

    /// Takes the fleet's latest statuses into the devices' escalation histories.
    func sample(_ monitor: FleetMonitor) {
        let devices = monitor.devices
        history.withLock { history in
            for device in devices { history.record(device.status, at: device.lastSeen?.timeIntervalSince1970) }
        }
    }

    /// One check: resume a retrained candidate's canary, or run a round if one is due.
    func check(_ controller: RolloutController) async throws {
        if let rollout = try await controller.current(), rollout.phase == .canary {
            // A rollout left in canary (by a trainer that stopped) is driven on; one an operator started is
            // theirs to drive, and no round starts until it ends.
            guard (try? registry.record(version: rollout.version).source) == "retrain", takeLease() else { return }
            log("trainer: resuming the canary of \(rollout.version)")
            let renewal = renewLease()
            defer {
                renewal.cancel()
                releaseLease()
            }
            _ = try await drive(controller)
            return
        }
        let last = try store.lastRound()
        let since = last?.startedAt ?? -Double.greatestFiniteMagnitude
        sample(controller.monitor)
        let now = Date().timeIntervalSince1970
        let trigger = configuration.trigger
        let devices = history.withLock { history in
            // A round recorded by any worker: a promotion restarts the baselines, another outcome holds drift
            // back for a drift window, so the drift that started the round does not start the next one at once.
            if let last {
                history.noteRound(
                    startedAt: last.startedAt, finishedAt: last.finishedAt,
                    promoted: last.outcome == Outcome.promoted.rawValue)
            }
            // Judged over the fleet, each device's baseline needs only its share of the windows.
            let minimum =
                trigger.driftScope == .fleet && trigger.minimumDriftWindows > 0
                ? max(1, trigger.minimumDriftWindows / max(1, history.deviceCount)) : trigger.minimumDriftWindows
            return history.devices(now: now, minimumWindows: minimum)
        }
        let reasons = trigger.reasons(
            for: .init(
                now: now, newHardExamples: try store.hardExampleCount(receivedAfter: since),
                newLabels: try store.labelCount(recordedAfter: since), devices: devices,
                lastRoundStartedAt: last?.startedAt ?? createdAt, followUpDue: followUpDue.load(ordering: .relaxed),
                audits: try auditAgreement(since: last?.startedAt ?? createdAt, now: now)))
        guard !reasons.isEmpty, now >= noRoundBefore.load(ordering: .relaxed), takeLease() else { return }
        let renewal = renewLease()
        defer {
            renewal.cancel()
            releaseLease()
        }
        let report: RoundReport?
        do {
            report = try await runRound(reasons: reasons.map(\.description), startedAt: now, controller)
        } catch {
            // Whatever failed (the data, the store) is likely to fail again at once: wait before the next round.
            let backoff = max(60, 10 * configuration.checkIntervalSeconds)
            noRoundBefore.store(Date().timeIntervalSince1970 + backoff, ordering: .relaxed)
            history.withLock { $0.holdDriftBack(until: Date().timeIntervalSince1970 + trigger.driftWindowSeconds) }
            throw RetrainingError("round failed, next round in \(Int(backoff)) s at the earliest: \(error)")
        }
        if let report { reports.withLock { $0.append(report) } }
        // A round that got as far as a record uses up a due follow-up (one that failed before keeps it due); a
        // promoted drift round makes one due.
        if let report {
            followUpDue.store(report.outcome == .promoted && reasons.contains(where: \.isDrift), ordering: .relaxed)
        }
        // A round that did not get as far as a record (no production model, given up) holds drift back too;
        // a recorded one is noted from the store at the next check.
        if report == nil {
            history.withLock { $0.holdDriftBack(until: Date().timeIntervalSince1970 + trigger.driftWindowSeconds) }
        }
    }

    private func takeLease() -> Bool {
        let acquired =
            (try? store.acquireTrainingLease(
                holder: configuration.holder, durationSeconds: configuration.leaseSeconds,
                now: Date().timeIntervalSince1970)) ?? false
        holdsLease.store(acquired, ordering: .relaxed)
        return acquired
    }

    /// Renews the lease every third of its duration; a renewal that fails (another holder took an expired
    /// lease) makes the round stop at its next phase.
    private func renewLease() -> Task<Void, Never> {
        let interval = max(configuration.leaseSeconds / 3, 0.05)
        return Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
                guard !Task.isCancelled else { return }
                if !takeLease() {
                    log("trainer: lost the training lease; stopping the round", .warning)
                    return
                }
            }
        }
    }

    private func releaseLease() {
        guard holdsLease.exchange(false, ordering: .relaxed) else { return }
        do {
            try store.releaseTrainingLease(holder: configuration.holder)
        } catch {
            log("trainer: cannot release the lease: \(escaping: error)", .error)
        }
    }

    /// Runs a round and acts on its gate; nil when it was given up (stop, lost lease) or could not start.
    func runRound(reasons: [String], startedAt: Double, _ controller: RolloutController) async throws
        -> RoundReport?
    {
        guard let production = try registry.productionVersion() else {
            log(
                "trainer: a round is due (\(escaping: reasons.joined(separator: ", "))) but the registry has no production edge model; publish one with `tandem publish --production`",
                .warning)
            return nil
        }
        let edge = try registry.artifact(version: production)
        progress.start(at: startedAt, reasons: reasons)
        defer { progress.finish() }
        log(
            "trainer: round: starting from \(production) (\(escaping: reasons.joined(separator: ", ")))",
            round: startedAt)
        let (examples, undecodable) = try store.trainingExamples(receivedAfter: nil, limit: nil)
        if undecodable > 0 {
            log("trainer: round: \(undecodable) stored payloads do not decode; skipped", round: startedAt)
        }
        var earlier = [String: InputSpec]()
        for version in Set(examples.map(\.edgeModel)) where version != production {
            if let spec = catalog?.spec(for: version) ?? (try? registry.artifact(version: version))?.manifest.input {
                earlier[version] = spec
            }
        }
        var options = configuration.round
        var data = self.data
        if configuration.trainOnShuffledLabels {
            var generator = SeededGenerator(seed: options.seed &+ 1)
            generator.shuffle(&data.train.labels)
            options.alpha = 1
            log("trainer: round: drill: training on shuffled labels", round: startedAt)
        }
        let currentFull = try currentFullModel()
        var round = try RetrainingRound(full: currentFull, edge: edge, edgeSpec: edgeSpec, options: options)
        round.edgeInputs = earlier
        log(
            "trainer: round: fine-tuning full model \(currentFull.manifest.version) (budget \(RetrainingRound.seconds(options.fineTuneSeconds))), compressing (budget \(RetrainingRound.seconds(options.compressSeconds))); \(examples.count) hard examples, at most \(options.replayWindows.map(String.init) ?? "all") original windows replayed",
            round: startedAt)
        let result: RetrainingRound.Result
        do {
            result = try await onThread(nice: configuration.trainerNice) { [self, round, data] in
                try round.run(
                    data: data, hardExamples: examples,
                    progress: { self.log("trainer: round: \($0)", round: startedAt) },
                    shouldStop: { self.isStopping || !self.holdsLease.load(ordering: .relaxed) })
            }
        } catch let stopped as RetrainingStopped {
            log("trainer: round: given up, \(stopped)", round: startedAt)
            return nil
        }
        let gate = result.gate
        let version = result.edgeCandidate.manifest.version
        let phases = result.phases.map { "\($0.phase) \(String(format: "%.1f", $0.seconds)) s" }
        let total = result.phases.reduce(0) { $0 + $1.seconds }
        log(
            "trainer: round: phases: \(phases.joined(separator: ", ")); \(String(format: "%.1f", total)) s in all",
            round: startedAt)
        var fullPromoted = false
        if gate.fullPassed == true && !configuration.trainOnShuffledLabels {
            do {
                try promoteFullModel(result.fullCandidate, replacing: currentFull, gate: gate, round: startedAt)
                fullPromoted = true
            } catch {
                log(
                    "trainer: full model: \(result.fullCandidate.manifest.version) not promoted: \(escaping: error)",
                    .error, round: startedAt)
            }
        } else {
            log(
                "trainer: full model: \(result.fullCandidate.manifest.version) not promoted: \(gate.fullSummary)",
                round: startedAt)
        }
        guard gate.passed else {
            log(
                "trainer: round: \(version) stopped by the gate: \(gate.reasons.joined(separator: "; "))",
                round: startedAt)
            return try finish(
                reasons: reasons, version: version, gate: gate, outcome: .gateFailed, detail: gate.summary,
                startedAt: startedAt)
        }
        do {
            try register(result, parent: production, fullRegistered: fullPromoted)
            log("trainer: register: \(version) signed and registered", round: startedAt)
            try await controller.distributor.publish(
                version: version, from: registry, audit: audit, actor: configuration.actor, assigningTo: [],
                production: false)
            let rollout = try await controller.start(version: version, policy: configuration.policy)
            log("trainer: rollout: \(version) to the canary cohort \(escaping: rollout.cohort)", round: startedAt)
        } catch {
            log("trainer: rollout of \(version) failed: \(escaping: error)", .error, round: startedAt)
            return try finish(
                reasons: reasons, version: version, gate: gate, outcome: .rolloutFailed, detail: "\(error)",
                startedAt: startedAt)
        }
        let (outcome, detail) = try await drive(controller, round: startedAt)
        return try finish(
            reasons: reasons, version: version, gate: gate, outcome: outcome, detail: detail, startedAt: startedAt)
    }

    /// Writes the candidates, registers the edge model (checked and signed) and tells the catalog about it.
    private func register(_ result: RetrainingRound.Result, parent: String, fullRegistered: Bool) throws {
        let directory = registry.directory
        // The fine-tuned full model is the edge model's teacher (its manifest's parent); kept for the record when
        // the full-model registry did not take it.
        if !fullRegistered {
            try result.fullCandidate.write(
                to: fullModels.directory.appendingPathComponent(
                    "\(result.fullCandidate.manifest.version).\(ModelArtifact.fileExtension)"))
        }
        let incoming = directory.appendingPathComponent(
            ".incoming-\(result.edgeCandidate.manifest.version).\(ModelArtifact.fileExtension)")
        try result.edgeCandidate.write(to: incoming)
        defer { try? FileManager.default.removeItem(at: incoming) }
        let gate = result.gate
        try registry.register(
            artifactAt: incoming, signingKey: signingKey,
            lineage: ModelLineage(
                source: "retrain", parentVersion: nil,
                metrics: [
                    "gate.candidate_accuracy": gate.candidateAccuracy, "gate.current_accuracy": gate.currentAccuracy,
                    "gate.candidate_escalation_rate": gate.candidateEscalationRate,
                    "gate.current_escalation_rate": gate.currentEscalationRate, "gate.threshold": gate.threshold,
                ]))
        try audit.append(
            AuditRecord(
                actor: configuration.actor, action: "register", version: result.edgeCandidate.manifest.version,
                reason: "retrained from \(parent): \(gate.summary)"))
        catalog?.learn(result.edgeCandidate.manifest.version, result.edgeCandidate.manifest.input)
    }

    /// The production edge version's agreement with the cloud's verdicts on its audits since `since`, split at the
    /// start of the drift window; nil when the audit rule is off, the store keeps no audits or there is no production
    /// version.
    private func auditAgreement(since: Double, now: Double) throws -> RetrainingTrigger.AuditAgreement? {
        let trigger = configuration.trigger
        guard trigger.minimumAudits > 0, let audits = store as? any EscalationStore,
            let version = try registry.productionVersion()
        else { return nil }
        // Two ranges that do not overlap: audits stored between the two queries land in the recent one only.
        let boundary = max(since, now - trigger.driftWindowSeconds)
        let before = try audits.auditEstimates(receivedFrom: since, before: boundary)[version]
        let recent = try audits.auditEstimates(receivedFrom: boundary, before: .greatestFiniteMagnitude)[version]
        guard let recent else { return nil }
        return .init(
            version: version, baselineAnswered: before?.answered ?? 0, baselineAgreed: before?.agreed ?? 0,
            recentAnswered: recent.answered, recentAgreed: recent.agreed)
    }

    /// Steps the rollout until it ends or the service stops, with the label accuracies of the candidate and the
    /// version it replaces on the labelled escalations since the canary started, once both have enough.
    ///
    /// - Parameter round: When the round that made the candidate started, if this process ran it.
    private func drive(_ controller: RolloutController, round: Double? = nil) async throws -> (Outcome, String) {
        while true {
            let accuracy = try await controller.current().flatMap { try store.accuracyComparison(for: $0) }
            guard let rollout = try await controller.step(accuracy: accuracy) else {
                return (.rolloutFailed, "the rollout state disappeared")
            }
            switch rollout.phase {
            case .promoted:
                log("trainer: rollout: \(rollout.version) promoted: \(escaping: rollout.endReason ?? "")", round: round)
                return (.promoted, rollout.endReason ?? "promoted")
            case .rolledBack:
                log(
                    "trainer: rollout: \(rollout.version) rolled back: \(escaping: rollout.endReason ?? "")", .warning,
                    round: round)
                return (.rolledBack, rollout.endReason ?? "rolled back")
            default:
                break
            }
            if isStopping || !holdsLease.load(ordering: .relaxed) {
                log("trainer: rollout: \(rollout.version) left in canary", round: round)
                return (.leftInCanary, "the trainer stopped during the canary")
            }
            await pause(seconds: configuration.rolloutStepSeconds)
        }
    }

    /// Records the round in the store and the audit log.
    private func finish(
        reasons: [String], version: String, gate: RetrainingRound.GateReport, outcome: Outcome, detail: String,
        startedAt: Double
    ) throws -> RoundReport {
        let summary = "\(version) \(outcome.rawValue): \(detail)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let report = (try? encoder.encode(gate)).map { String(decoding: $0, as: UTF8.self) }
        try store.recordRound(
            .init(
                startedAt: startedAt, finishedAt: Date().timeIntervalSince1970, passed: gate.passed,
                summary: summary, version: version, outcome: outcome.rawValue, report: report))
        try audit.append(
            AuditRecord(
                actor: configuration.actor, action: "retrain", version: version,
                reason: "\(outcome.rawValue); \(gate.summary); started by \(reasons.joined(separator: ", "))"))
        log("trainer: round: recorded: \(escaping: summary)", round: startedAt)
        return RoundReport(reasons: reasons, version: version, gate: gate, outcome: outcome, summary: summary)
    }
}

/// Runs blocking work (training: seconds to minutes of BLAS) on a thread of its own, off the cooperative pool, at
/// the nice value `nice` (Linux schedules threads on their own: only this thread is lowered).
func onThread<T: Sendable>(nice: Int32 = 0, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        BackgroundThread.start(name: "tandem-trainer") {
            if nice > 0 { TrainerThread.lowerPriority(to: nice) }
            continuation.resume(with: Result { try body() })
        }
    }
}
