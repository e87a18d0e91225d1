import TandemCore
import TandemProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// One source's lines through their streams' pipelines: parse each line and hand its sample to the stream it
/// belongs to. Lines the parser rejects (and over-long lines) count against the group's first stream:
/// a bad line cannot be trusted to name its stream.
struct SourcePipeline {
    let sourceDescription: String
    var parser: SampleLineParser
    var streams: [StreamPipeline]
    /// Streams that received a sample in the current batch, each once (a prefix, written through a buffer
    /// pointer): the per-batch bookkeeping visits only these (a source may feed a thousand streams).
    var touched: [Int]
    var isTouched: [Bool]
    /// One window's values in order, shared by the streams (they run one at a time on this source's thread).
    var windowScratch: [Float]

    /// Builds the pipelines of the streams one source feeds.
    ///
    /// - Parameters:
    ///   - streams: The streams, in the order the source's lines name them (the first takes lines that name
    ///     none), each with its index in the configuration; at least one. The first's channels and line limit
    ///     apply to all.
    ///   - sourceDescription: The source, for messages.
    ///   - stages: What every stream is given.
    /// - Throws: ``ModelLoadError`` if the serving model's input cannot be windowed.
    init(
        streams configured: [(index: Int, stream: AgentConfiguration.Stream)], sourceDescription: String,
        stages: StreamPipeline.Stages
    ) throws {
        self.sourceDescription = sourceDescription
        let first = configured[0].stream
        parser = SampleLineParser(
            channels: first.channels, streamNames: configured.map(\.stream.name),
            maximumLineBytes: first.source.maxLineBytes)
        streams = try configured.map {
            try StreamPipeline(index: $0.index, stream: $0.stream, sourceDescription: sourceDescription, stages: stages)
        }
        isTouched = [Bool](repeating: false, count: streams.count)
        touched = [Int](repeating: 0, count: streams.count)
        windowScratch = [Float](repeating: 0, count: streams.map(\.windowFloats).max() ?? 0)
    }

    mutating func process(_ batch: LineBatch) {
        if batch.overlongLines > 0 {
            streams[0].reject(.lineTooLong, line: batch.firstLineNumber, count: batch.overlongLines)
        }
        if batch.refusedDatagrams > 0 {
            streams[0].reject(.senderNotAllowed, line: batch.firstLineNumber, count: batch.refusedDatagrams)
        }
        var samples = 0
        // Through buffer pointers: indexing the arrays themselves re-checks their uniqueness on every line.
        var touchedCount = 0
        streams.withUnsafeMutableBufferPointer { streams in
            windowScratch.withUnsafeMutableBufferPointer { scratch in
                isTouched.withUnsafeMutableBufferPointer { isTouched in
                    touched.withUnsafeMutableBufferPointer { touched in
                        parser.parseLines(of: batch) { number, outcome, streamIndex, values in
                            switch outcome {
                            case .skipped: return
                            case .rejected(let reason): streams[0].reject(reason, line: number)
                            case .sample(let timestamp):
                                let k = streamIndex < streams.count ? streamIndex : 0
                                if !isTouched[k] {
                                    isTouched[k] = true
                                    touched[touchedCount] = k
                                    touchedCount += 1
                                }
                                if streams[k].accept(
                                    timestamp: timestamp, values: values, line: number, scratch: scratch)
                                {
                                    samples += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        for k in touched[..<touchedCount] {
            streams[k].batchDone()
            isTouched[k] = false
        }
        if samples > 0 { streams[0].stages.statistics.withLock { $0.samples += samples } }
    }

    mutating func finish() {
        for k in streams.indices { streams[k].batchDone() }
    }
}

/// One stream's path after parsing: window the samples, classify each window, decide on escalation,
/// emit the record. Its buffers are allocated once, up front.
///
/// It is given what it uses (``Stages``: the classifier, the policy, the transport, the sinks, the
/// counters, a clock and a log), never the agent that assembled it.
struct StreamPipeline {
    let stages: Stages
    let index: Int
    let name: String
    let sourceDescription: String
    var windower: StreamWindower
    var probabilities: [Float]
    /// Windows classified since the counts were last published.
    var unpublishedWindows = 0
    /// The gap count last published (-1: none yet).
    var publishedGaps = -1
    var publishedResynchronizations = 0
    var rateChecked = false
    /// The model generation the windower's standardization belongs to.
    var generation: Int

    /// Builds the pipeline of one stream.
    ///
    /// - Parameters:
    ///   - index: The stream's index in the configuration (its input-error counters').
    ///   - stream: The stream's configuration (its name and gap factor; its channels are the model's).
    ///   - sourceDescription: The source, for messages.
    ///   - stages: What the stream is given.
    /// - Throws: ``ModelLoadError`` if the serving model's input cannot be windowed.
    init(index: Int, stream: AgentConfiguration.Stream, sourceDescription: String, stages: Stages) throws {
        self.stages = stages
        self.index = index
        name = stream.name
        self.sourceDescription = sourceDescription
        let (classifier, generation) = stages.model.current
        self.generation = generation
        windower = try StreamWindower(spec: classifier.input, gapFactor: stream.gapFactor)
        probabilities = [Float](repeating: 0, count: max(classifier.classNames.count, 1))
    }

    /// Floats in one window of this stream's model input.
    var windowFloats: Int { windower.window * windower.channels }

    /// Windows the sample; classifies the window it completes, using `scratch` (at least
    /// ``windowFloats``) for the window's values. Returns whether the sample was accepted.
    mutating func accept(
        timestamp: Double, values: UnsafeBufferPointer<Float>, line: Int, scratch: UnsafeMutableBufferPointer<Float>
    ) -> Bool {
        switch windower.append(timestamp: timestamp, values: values) {
        case .accepted: return true
        case .windowReady:
            classifyCurrentWindow(scratch: scratch)
            return true
        case .rejected(let reason):
            reject(reason, line: line)
            return false
        }
    }

    mutating func batchDone() {
        checkSampleRate()
        publishCounts()
    }

    /// Compares the observed sample interval with the model's nominal rate once enough samples arrived;
    /// a mismatch over 10 % is reported once per stream (windows then span another duration than the
    /// model was trained on).
    private mutating func checkSampleRate() {
        guard !rateChecked, let nominal = windower.nominalStep, windower.acceptedSamples >= 64,
            let observed = windower.observedMedianStep(), observed > 0
        else { return }
        rateChecked = true
        guard abs(observed - nominal) > 0.1 * nominal else { return }
        let observedHz = 1 / observed, name = self.name
        stages.statistics.withLock { $0.sampleRateMismatchByStream[name] = observedHz }
        stages.log(
            "stream \(name): samples arrive at \(formatted("%.3g", observedHz)) Hz, the model expects "
                + "\(formatted("%.3g", 1 / nominal)) Hz; windows will not span what the model was trained on")
    }

    /// Per-stream counts reach the shared statistics only when they changed: with a thousand streams on
    /// one source nearly every batch touches every stream.
    private mutating func publishCounts() {
        let (windows, gaps, name) = (unpublishedWindows, windower.gapResets, self.name)
        let resyncs = windower.resynchronizations
        guard windows > 0 || gaps != publishedGaps || resyncs != publishedResynchronizations else { return }
        stages.statistics.withLock {
            if windows > 0 { $0.windowsByStream[name, default: 0] += windows }
            if gaps != publishedGaps { $0.gapResetsByStream[name] = gaps }
            if resyncs != publishedResynchronizations { $0.resynchronizationsByStream[name] = resyncs }
        }
        // The first ten, then one line a thousand: a stream that keeps jumping must not flood the log.
        if resyncs != publishedResynchronizations
            && (publishedResynchronizations < 10 || resyncs / 1000 != publishedResynchronizations / 1000)
        {
            stages.log(
                "stream \(name): \(StreamWindower.resynchronizeAfter) samples in a row were older than the last "
                    + "accepted one; re-synchronized on the next (\(resyncs) so far)")
        }
        publishedResynchronizations = resyncs
        unpublishedWindows = 0
        publishedGaps = gaps
    }

    func reject(_ reason: InputRejection, line: Int, count: Int = 1) {
        stages.inputErrors.record(reason, stream: index, count: count)
        stages.reportRejection(reason, stream: name, line: line, source: sourceDescription)
    }

    private mutating func classifyCurrentWindow(scratch: UnsafeMutableBufferPointer<Float>) {
        let completed = ContinuousClock.now
        let (classifier, generation) = stages.model.current
        if generation != self.generation {
            // A new model: the samples held were standardized with the old one's statistics.
            windower.restandardize(mean: classifier.input.mean, std: classifier.input.std)
            self.generation = generation
        }
        guard let span = windower.copyCurrentWindow(into: scratch) else { return }
        let values = UnsafeBufferPointer(rebasing: scratch[0..<windowFloats])
        var failed = false
        var novel = false
        probabilities.withUnsafeMutableBufferPointer { p in
            do { novel = try classifier.classifyDetectingNovelty(values, into: p) } catch {
                stages.log("stream \(name): classification failed: \(error)")
                failed = true
            }
        }
        if failed {
            stages.statistics.withLock { $0.classificationFailures += 1 }
            return
        }
        var best = 0
        for i in probabilities.indices where probabilities[i] > probabilities[best] { best = i }
        let now = stages.now
        let (decision, confidence) = probabilities.withUnsafeBufferPointer { p in
            stages.policy.withLock { policy in
                let confidence = policy.measure.confidence(p)
                return (policy.decide(confidence: confidence, novel: novel, now: now), confidence)
            }
        }
        let escalation =
            decision.escalate
            ? makeEscalation(
                classifier: classifier, window: values, span: span, confidence: confidence,
                reason: decision.reason ?? .uncertain) : nil
        let escalationId = escalation?.payload.id
        let elapsed = ContinuousClock.now - completed
        let record = PredictionRecord(
            stream: name, windowStart: span.start, windowEnd: span.end,
            label: best < classifier.classNames.count ? classifier.classNames[best] : String(best), labelIndex: best,
            probability: probabilities[best], confidence: confidence, origin: .edge,
            provisional: decision.escalate, escalated: decision.escalate, escalationId: escalationId,
            reason: escalationId == nil ? nil : decision.reason,
            modelVersion: classifier.modelVersion,
            latencyMilliseconds: Double(elapsed.components.attoseconds) * 1e-15 + Double(elapsed.components.seconds)
                * 1000)
        if let escalation, stages.awaitsVerdicts {
            // Registered before it is sent: a verdict can come back faster than this thread continues.
            let now = stages.now
            stages.emit(stages.verdictTracker.withLock { $0.escalated(record, id: escalation.payload.id, now: now) })
            stages.escalations.submit(escalation.payload, encoded: escalation.bytes)
        } else {
            if let escalation { stages.escalations.submit(escalation.payload, encoded: escalation.bytes) }
            stages.emit(record)
        }
        unpublishedWindows += 1
        stages.statistics.withLock {
            $0.windows += 1
            $0.confidenceSum += confidence
            if decision.escalate { $0.escalations += 1 }
            if decision.wanted && !decision.escalate { $0.cappedEscalations += 1 }
            if novel { $0.novelWindows += 1 }
            if decision.escalate && decision.reason == .novel { $0.novelEscalations += 1 }
            if decision.escalate && decision.reason == .audit { $0.auditEscalations += 1 }
        }
    }

    /// Builds and encodes the escalation payload of the current window.
    private func makeEscalation(
        classifier: any WindowClassifier, window values: UnsafeBufferPointer<Float>,
        span: (start: Double, end: Double), confidence: Double, reason: EscalationReason
    ) -> (payload: EscalationPayload, bytes: [UInt8])? {
        let id = UUID()
        let window = Array(values)
        let topK = probabilities.withUnsafeBufferPointer {
            EscalationPayload.topK($0, k: stages.topK)
        }
        let payload = EscalationPayload(
            id: id, device: stages.device, stream: name, modelVersion: classifier.modelVersion,
            windowStart: span.start, windowEnd: span.end, sampleRateHz: classifier.input.sampleRateHz,
            channels: classifier.input.channels, length: classifier.input.window, window: window, topK: topK,
            confidence: Float(confidence), deadline: stages.verdictDeadline(from: Date().timeIntervalSince1970),
            reason: reason)
        do {
            return (payload, try payload.encoded())
        } catch {
            stages.log("stream \(name): escalation not encoded: \(error)")
            return nil
        }
    }
}
