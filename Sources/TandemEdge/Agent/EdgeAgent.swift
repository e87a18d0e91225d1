import Synchronization
import TandemCore
import TandemMQTT
import TandemProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The edge agent: sources → parser → windower → classifier → escalation policy → sinks, one task per stream.
///
/// The agent assembles the stages (``StreamPipeline/Stages``) and runs them: one task per source, feeding
/// the pipelines of its streams, and one receiving verdicts into the tracker. The stages are given what
/// they use and never refer back to the agent.
///
/// Build one with ``make(configuration:log:)`` (what `tandem-edge run` does) or with explicit parts
/// for tests. ``run()`` returns once every source has finished — after ``stop()``, at end of input,
/// or on a source error — having classified every window read and flushed every sink.
public final class EdgeAgent: Sendable {
    /// The configuration it runs.
    public let configuration: AgentConfiguration
    /// The model serving now (see ``install(_:)``).
    public var classifier: any WindowClassifier { stages.model.classifier }
    /// Rejected-input counters per stream and reason.
    public let inputErrors: InputErrorCounters
    let sources: [any LineSource]
    let sinks: [any PredictionSink]
    let escalations: any EscalationTransport
    /// The broker connection, when a broker is configured.
    public let link: EdgeLink?
    /// Where the serving model's file lives (model updates replace it).
    let modelFiles: EdgeModelFiles
    let modelUpdate = Mutex(ModelUpdateState.idle)
    /// The latest remote policy's state and the version in force (nil: agent.yaml alone).
    let remotePolicy = Mutex<(update: ModelUpdateState?, inForce: String?)>((nil, nil))
    let log: @Sendable (String) -> Void
    let metricsEndpoint = Mutex<MetricsEndpoint?>(nil)
    /// What the streams' pipelines are given: the serving model, the policy, the transport, the sinks, the
    /// verdict tracker and the counters.
    let stages: StreamPipeline.Stages

    /// Assembles an agent from parts.
    ///
    /// - Parameters:
    ///   - configuration: A validated configuration; `sources[i]` feeds the streams of
    ///     `configuration.sourceGroups[i]` (one per stream unless streams share a source).
    ///   - classifier: The model.
    ///   - sources: One source per configured stream.
    ///   - sinks: Where records go.
    ///   - escalations: Where escalated windows go.
    ///   - log: Where messages go (standard error by default).
    /// - Throws: ``ConfigurationError`` if a stream's channels differ from the model's or the policy is
    ///   invalid, naming the key.
    public init(
        configuration: AgentConfiguration, classifier: any WindowClassifier, sources: [any LineSource],
        sinks: [any PredictionSink], escalations: any EscalationTransport = OfflineEscalations(),
        link: EdgeLink? = nil, log: @escaping @Sendable (String) -> Void = EdgeAgent.standardError
    ) throws(ConfigurationError) {
        let groups = configuration.sourceGroups
        guard sources.count == groups.count else {
            throw ConfigurationError(
                .invalidValue, key: "streams", "\(groups.count) distinct sources configured but \(sources.count) given")
        }
        for (i, stream) in configuration.streams.enumerated() where stream.channels != classifier.input.channels {
            throw ConfigurationError(
                .invalidValue, key: "streams[\(i)].channels",
                "\(stream.channels), but model \(classifier.modelVersion) takes \(classifier.input.channels) channels")
        }
        let policy = try Self.escalationPolicy(configuration.policy, classifier: classifier)
        self.configuration = configuration
        self.sources = sources
        self.sinks = sinks
        self.escalations = link ?? escalations
        self.link = link
        modelFiles = EdgeModelFiles(path: configuration.model.path)
        self.log = log
        inputErrors = InputErrorCounters(streams: configuration.streams.map(\.name))
        stages = StreamPipeline.Stages(
            model: ServingModel(classifier), policy: policy, escalations: self.escalations, sinks: sinks,
            verdictTracker: VerdictTracker(deadlineSeconds: Double(configuration.verdictDeadlineMs) / 1000),
            inputErrors: inputErrors,
            rejectionLog: RateLimitedLog(
                limit: configuration.log.maxMessages, intervalSeconds: configuration.log.intervalSeconds),
            device: configuration.device.id, topK: configuration.policy.topK, log: log)
    }

    /// Writes a line to standard error.
    public static let standardError: @Sendable (String) -> Void = { message in
        StandardError.write(message + "\n")
    }

    /// Builds the agent a configuration describes: loads and verifies the model, opens sources and sinks.
    ///
    /// - Throws: ``ConfigurationError``, ``ModelLoadError``, ``SourceError`` or ``SinkError`` naming what failed.
    public static func make(
        configuration: AgentConfiguration, log: @escaping @Sendable (String) -> Void = EdgeAgent.standardError
    ) throws -> EdgeAgent {
        try configuration.validate()
        let classifier = try EdgeModelFiles(path: configuration.model.path).open(configuration.model, log: log)
        var sources = [any LineSource]()
        for group in configuration.sourceGroups {
            let i = group[0]
            let s = configuration.streams[i].source
            switch s.kind {
            case .stdin:
                sources.append(StandardInputSource(maximumLineBytes: s.maxLineBytes))
            case .file:
                sources.append(
                    FollowedFileSource(
                        path: s.path, pollIntervalSeconds: Double(s.pollIntervalMs) / 1000, startAtEnd: s.startAtEnd,
                        maximumLineBytes: s.maxLineBytes))
            case .udp:
                sources.append(
                    try UDPSource(
                        host: s.host, port: s.port, allowedSenders: s.allowFrom.compactMap(IPv4Network.init),
                        maximumLineBytes: s.maxLineBytes))
            case .mqtt:
                sources.append(
                    try MQTTTopicSource(
                        url: s.url, topic: s.topic,
                        clientID: "\(configuration.device.fleet)-\(configuration.device.id)-source\(i)",
                        maximumLineBytes: s.maxLineBytes))
            }
        }
        let link = configuration.broker.url.isEmpty ? nil : try EdgeLink(configuration: configuration, log: log)
        var sinks = [any PredictionSink]()
        for (i, sink) in configuration.sinks.enumerated() {
            let interval = Double(sink.flushIntervalMs) / 1000
            switch sink.kind {
            case .stdout: sinks.append(JSONLinesSink.standardOutput(flushIntervalSeconds: interval))
            case .file: sinks.append(try JSONLinesSink.file(path: sink.path, flushIntervalSeconds: interval))
            case .mqtt:
                guard let link else {
                    throw ConfigurationError(
                        .invalidValue, key: "sinks[\(i)].kind", "an mqtt sink needs broker.url (it is empty)")
                }
                sinks.append(
                    MQTTPredictionSink(
                        client: link.client, topic: link.topics.predictions, flushIntervalSeconds: interval))
            }
        }
        return try EdgeAgent(
            configuration: configuration, classifier: classifier, sources: sources, sinks: sinks, link: link, log: log)
    }

    /// Seconds since the agent was created.
    var now: Double { stages.now }

    /// Runs every stream until its source finishes, then flushes the sinks.
    ///
    /// - Throws: The first source error, after the other streams have finished.
    public func run() async throws {
        let flushInterval = sinks.map(\.flushIntervalSeconds).min() ?? 1
        let statusInterval = configuration.statusIntervalSeconds
        let flusher = Task {
            var sinceStatus = 0.0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int(flushInterval * 1000)))
                flushSinks()
                sinceStatus += flushInterval
                if sinceStatus >= statusInterval {
                    sinceStatus = 0
                    let status = statusJSON()
                    log("status \(status)")
                    link?.publishStatus(status)
                }
            }
        }
        var updater: Task<Void, Never>?
        if let link {
            link.start()
            link.publishStatus(statusJSON())
            let modelUpdater = ModelUpdater(
                model: stages.model, configuration: configuration.model, link: link, files: modelFiles, log: log,
                applyPolicy: { [weak self] policy in try self?.apply(policy) },
                onPolicyChange: { [weak self] state, inForce in
                    guard let self else { return }
                    remotePolicy.withLock { current in
                        current.update = state
                        if let inForce { current.inForce = inForce }
                    }
                    link.publishStatus(statusJSON())
                }
            ) { [weak self] state in
                guard let self else { return }
                modelUpdate.withLock { $0 = state }
                link.publishStatus(statusJSON())
            }
            let assignments = link.assignments()
            updater = Task { await modelUpdater.run(assignments) }
        }
        let verdictTask: Task<Void, Never>?
        let expiryTask: Task<Void, Never>?
        if let verdicts = escalations.verdicts() {
            stages.verdictsEnabled.store(true, ordering: .relaxed)
            let classNames = classifier.classNames
            verdictTask = Task {
                for await verdict in verdicts {
                    let now = self.now
                    // Release what is past its deadline first: a verdict that comes after the deadline is a
                    // correction, even when the expiry task has not run yet (a busy machine).
                    let records = stages.verdictTracker.withLock { tracker -> [PredictionRecord] in
                        var out = tracker.expire(now: now)
                        if let record = tracker.received(verdict, classNames: classNames, now: now) {
                            out.append(record)
                        }
                        return out
                    }
                    stages.emit(records)
                }
            }
            let step = min(0.05, Double(configuration.verdictDeadlineMs) / 5000)
            expiryTask = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(max(1, Int(step * 1000))))
                    releaseExpired()
                }
            }
        } else {
            verdictTask = nil
            expiryTask = nil
        }
        var firstError: (any Error)?
        let groups = configuration.sourceGroups
        await withTaskGroup(of: (any Error)?.self) { group in
            for (index, source) in sources.enumerated() {
                group.addTask { [self] in
                    do {
                        var pipeline = try SourcePipeline(
                            streams: groups[index].map { ($0, configuration.streams[$0]) },
                            sourceDescription: source.description, stages: stages)
                        for try await batch in source.batches() { pipeline.process(batch) }
                        pipeline.finish()
                        return nil
                    } catch {
                        let names = groups[index].map { configuration.streams[$0].name }.joined(separator: ", ")
                        log("stream \(names): \(source.description): \(error)")
                        return error
                    }
                }
            }
            for await error in group where firstError == nil { firstError = error }
        }
        if verdictTask != nil {
            // Windows in flight include those waiting for a verdict: give each its deadline, no more.
            let limit = now + Double(configuration.verdictDeadlineMs) / 1000
            while stages.verdictTracker.withLock({ $0.pendingCount }) > 0 && now < limit {
                try? await Task.sleep(for: .milliseconds(10))
                releaseExpired()
            }
            expiryTask?.cancel()
            verdictTask?.cancel()
            stages.emit(stages.verdictTracker.withLock { $0.expire(now: .infinity) })
        }
        flusher.cancel()
        flushSinks()
        updater?.cancel()
        await link?.close(finalStatus: statusJSON(state: .offline), timeout: .seconds(5))
        metricsEndpoint.withLock { endpoint in
            endpoint?.stop()
            endpoint = nil
        }
        if let firstError { throw firstError }
    }

    /// Replaces the serving model without stopping: windows classified after this call use `classifier`.
    ///
    /// The new model must take the same input (window, hop, channels, sample rate) and name the same
    /// classes; its standardization may differ — each stream re-standardizes the samples it holds.
    ///
    /// - Throws: ``ModelLoadError`` (`incompatible`) naming what differs; the old model keeps serving.
    public func install(_ classifier: any WindowClassifier) throws(ModelLoadError) {
        try stages.model.install(classifier)
    }

    /// Asks every source to finish; ``run()`` then drains what was read and returns.
    public func stop() {
        for source in sources { source.stop() }
    }

    /// What the agent has done so far.
    public func currentStatistics() -> AgentStatistics {
        var s = stages.statistics.withLock { $0 }
        s.inputErrors = inputErrors.snapshot()
        s.threshold = stages.policy.withLock { $0.threshold }
        return s
    }

    /// The escalation policy `p` describes, with `classifier`'s calibration for a budget.
    ///
    /// - Throws: ``ConfigurationError`` naming the `policy` key that cannot be used.
    static func escalationPolicy(_ p: AgentConfiguration.Policy, classifier: any WindowClassifier)
        throws(ConfigurationError) -> EscalationPolicy
    {
        let mode: EscalationPolicy.Mode
        if let budget = p.budget {
            let calibration =
                classifier.calibration(for: p.measure)
                ?? (try? CalibrationQuantiles(levels: [0, 1], values: [p.threshold, p.threshold]))
            guard let calibration else {
                throw ConfigurationError(.invalidValue, key: "policy.threshold", "unusable starting threshold")
            }
            mode = .budget(budget, calibration: calibration)
        } else {
            mode = .threshold(p.threshold)
        }
        do {
            return try EscalationPolicy(
                measure: p.measure, mode: mode, maxEscalationsPerSecond: p.maxEscalationsPerSecond, burst: p.burst,
                gain: p.gain, auditShare: p.auditShare, auditSeed: UInt64.random(in: 0...UInt64.max),
                escalatesNovel: p.escalateNovel)
        } catch {
            throw ConfigurationError(.invalidValue, key: "policy", error.message)
        }
    }

    /// agent.yaml's `policy` with what `settings` sets instead: a threshold without a budget turns a local budget
    /// off, a budget turns budget mode on; a setting left out keeps the local value.
    public static func policyConfiguration(_ local: AgentConfiguration.Policy, with settings: AgentPolicy.Settings)
        -> AgentConfiguration.Policy
    {
        var p = local
        if let measure = settings.measure.flatMap(ConfidenceMeasure.init(rawValue:)) { p.measure = measure }
        if let threshold = settings.threshold {
            p.threshold = threshold
            p.budget = settings.budget
        } else if let budget = settings.budget {
            p.budget = budget
        }
        if let rate = settings.maxEscalationsPerSecond { p.maxEscalationsPerSecond = rate }
        if let burst = settings.burst { p.burst = burst }
        return p
    }

    /// Puts a remote agent policy in force between two windows: the escalation policy of every stream is replaced
    /// by one built from agent.yaml's `policy` and what `policy` sets (its threshold adaptation starts over).
    ///
    /// - Throws: ``ConfigurationError`` if the merged settings cannot make a policy; the one in force stays.
    func apply(_ policy: AgentPolicy) throws(ConfigurationError) {
        let merged = Self.policyConfiguration(configuration.policy, with: policy.settings)
        let escalation = try Self.escalationPolicy(merged, classifier: stages.model.classifier)
        stages.policy.withLock { $0 = escalation }
    }

    /// The status message: model, counters, escalation rate, mean confidence, input errors, uptime, RSS.
    ///
    /// - Parameter state: `online` while running, `offline` once stopped (the MQTT last will says the same).
    public func status(state: DeviceStatus.State = .online) -> DeviceStatus {
        let s = currentStatistics()
        var errors = [String: [String: Int]]()
        for (stream, reasons) in s.inputErrors.byStream {
            errors[stream] = Dictionary(uniqueKeysWithValues: reasons.map { ($0.key.rawValue, $0.value) })
        }
        var status = DeviceStatus(
            device: configuration.device.id, state: state, modelVersion: classifier.modelVersion,
            modelUpdate: modelUpdate.withLock { $0 }, windows: s.windows, escalations: s.escalations,
            escalationRate: s.escalationRate, inputErrors: errors)
        status.cappedEscalations = s.cappedEscalations
        if classifier.detectsNovelty {
            status.novelWindows = s.novelWindows
            status.noveltyRate = s.noveltyRate
        }
        status.novelEscalations = s.novelEscalations
        status.auditEscalations = s.auditEscalations
        status.verdictsInTime = s.verdictsInTime
        status.corrections = s.corrections
        status.sampleRateMismatchHz = s.sampleRateMismatchByStream
        status.meanConfidence = s.meanConfidence
        status.threshold = s.threshold
        status.uptimeSeconds = (now * 10).rounded() / 10
        status.rssBytes = Self.residentBytes() ?? -1
        (status.policyUpdate, status.policyVersion) = remotePolicy.withLock { ($0.update, $0.inForce) }
        if let link {
            let outbox = link.outbox.statistics
            let errors = link.errorCounts
            status.outbox = .init(
                pending: outbox.pending, delivered: outbox.delivered, dropped: outbox.droppedOnOverflow,
                refused: errors.refusedEscalations, journalBytes: outbox.journalBytes)
            status.badVerdicts = errors.badVerdicts
            status.connected = link.client.connectionState.isConnected
        }
        return status
    }

    /// ``status(state:)`` as the JSON the agent publishes.
    public func statusJSON(state: DeviceStatus.State = .online) -> String {
        String(decoding: status(state: state).encoded(), as: UTF8.self)
    }

    /// Serves ``prometheusText()`` on `http://host:port/metrics` until ``run()`` returns.
    ///
    /// - Returns: The port (useful when `port` is 0).
    /// - Throws: ``MetricsEndpointError`` if the address cannot be bound.
    @discardableResult
    public func serveMetrics(host: String, port: Int) throws(MetricsEndpointError) -> Int {
        let endpoint = try MetricsEndpoint(host: host, port: port) { [weak self] in self?.prometheusText() ?? "" }
        metricsEndpoint.withLock { $0 = endpoint }
        return endpoint.boundPort
    }

    /// The agent's counters in the Prometheus text format.
    public func prometheusText() -> String {
        let s = currentStatistics()
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
            out += "# HELP tandem_edge_\(name) \(help)\n# TYPE tandem_edge_\(name) \(type)\n"
            for sample in samples {
                let value =
                    sample.value == sample.value.rounded() && abs(sample.value) < 1e15
                    ? String(Int(sample.value)) : String(sample.value)
                out += "tandem_edge_\(name)\(sample.labels.isEmpty ? "" : "{\(sample.labels)}") \(value)\n"
            }
        }
        func quoted(_ text: String) -> String {
            "\""
                + text.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
                .replacing("\n", with: "\\n") + "\""
        }
        let streams = configuration.streams.map(\.name)
        metric(
            "model_info", "gauge", "The model running, by version.", [("version=\(quoted(classifier.modelVersion))", 1)]
        )
        metric(
            "windows_total", "counter", "Windows classified.",
            streams.map { ("stream=\(quoted($0))", Double(s.windowsByStream[$0] ?? 0)) })
        metric("samples_total", "counter", "Samples accepted into windows.", [("", Double(s.samples))])
        metric("escalations_total", "counter", "Windows escalated.", [("", Double(s.escalations))])
        metric(
            "escalations_capped_total", "counter", "Windows wanted for escalation held back by the rate cap.",
            [("", Double(s.cappedEscalations))])
        metric(
            "escalations_by_reason_total", "counter", "Windows escalated, by reason (uncertain, novel, audit).",
            [
                ("reason=\"uncertain\"", Double(s.escalations - s.novelEscalations - s.auditEscalations)),
                ("reason=\"novel\"", Double(s.novelEscalations)), ("reason=\"audit\"", Double(s.auditEscalations)),
            ])
        metric("novel_windows_total", "counter", "Windows the edge model called novel.", [("", Double(s.novelWindows))])
        var errors = [(labels: String, value: Double)]()
        for stream in streams {
            for reason in InputRejection.allCases {
                errors.append(
                    (
                        "stream=\(quoted(stream)),reason=\"\(reason.rawValue)\"",
                        Double(s.inputErrors.byStream[stream]?[reason] ?? 0)
                    ))
            }
        }
        metric("input_errors_total", "counter", "Rejected input lines by stream and reason.", errors)
        metric("threshold", "gauge", "The escalation policy's confidence threshold.", [("", s.threshold)])
        metric("mean_confidence", "gauge", "Mean confidence over all windows.", [("", s.meanConfidence)])
        metric("uptime_seconds", "gauge", "Seconds since the agent started.", [("", (now * 1000).rounded() / 1000)])
        if let rss = Self.residentBytes() {
            metric("resident_memory_bytes", "gauge", "Resident set size of the process.", [("", Double(rss))])
        }
        return out
    }

    /// The process's resident set size from `/proc/self/statm`, if readable.
    public static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    private func releaseExpired() {
        let now = self.now
        stages.emit(stages.verdictTracker.withLock { $0.expire(now: now) })
    }

    func flushSinks() {
        for sink in sinks {
            do { try sink.flush() } catch { log("sink: \(error)") }
        }
    }
}
