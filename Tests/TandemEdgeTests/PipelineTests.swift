import Foundation
import Synchronization
import TandemCore
import TandemProtocol
import Testing

@testable import TandemEdge

/// The stream pipeline built from its stages alone (a classifier, a policy, a transport, a sink, counters),
/// with no agent: what each stage receives is all it needs.
struct PipelineTests {
    /// 40 samples at 10 Hz: windows of 8 with hop 4, so 9 windows starting every 0.4 s. A window's first
    /// value is 5 when its index is even (confident with ``ScriptedClassifier``) and −5 when odd (unsure).
    static let samples: [(timestamp: Double, values: [Float])] = (0..<40).map { (i: Int) in
        let first: Float = i % 8 < 4 ? 5 : -5
        return (Double(i) * 0.1, [first, Float(i), 1])
    }

    /// A threshold of 0.5 without a rate cap, the transport and sinks given, and a log limit of two messages.
    static func stages(
        transport: any EscalationTransport, sinks: [any PredictionSink],
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws -> StreamPipeline.Stages {
        StreamPipeline.Stages(
            model: ServingModel(try ScriptedClassifier()),
            policy: try EscalationPolicy(measure: .maxProbability, mode: .threshold(0.5)),
            escalations: transport, sinks: sinks, verdictTracker: VerdictTracker(deadlineSeconds: 1),
            inputErrors: InputErrorCounters(streams: ["s", "t"]), rejectionLog: RateLimitedLog(limit: 2), device: "box",
            topK: 2, log: log)
    }

    /// Feeds `samples` to `pipeline` as one batch; returns how many it accepted.
    static func feed(_ samples: ArraySlice<(timestamp: Double, values: [Float])>, to pipeline: inout StreamPipeline)
        -> Int
    {
        var scratch = [Float](repeating: 0, count: pipeline.windowFloats)
        var accepted = 0
        for (line, sample) in zip(1..., samples) {
            let ok = sample.values.withUnsafeBufferPointer { values in
                scratch.withUnsafeMutableBufferPointer { scratch in
                    pipeline.accept(timestamp: sample.timestamp, values: values, line: line, scratch: scratch)
                }
            }
            if ok { accepted += 1 }
        }
        pipeline.batchDone()
        return accepted
    }

    @Test("escalated windows reach the transport, every window's record reaches the sink, the counters add up")
    func stagesWithoutAgent() throws {
        let sink = CollectingSink()
        let transport = RecordingTransport()
        let stages = try Self.stages(transport: transport, sinks: [sink])
        var pipeline = try StreamPipeline(
            index: 0, stream: .init(name: "s", channels: 3), sourceDescription: "test", stages: stages)
        #expect(Self.feed(Self.samples[...], to: &pipeline) == 40)

        let records = sink.snapshot
        #expect(records.count == 9)
        #expect(zip(records.indices, records).allSatisfy { k, r in abs(r.windowStart - Double(k) * 0.4) < 1e-9 })
        let escalated = records.filter(\.escalated)
        #expect(escalated.map(\.windowStart).map { ($0 / 0.4).rounded() } == [1, 3, 5, 7], "the unsure windows")
        #expect(escalated.allSatisfy { $0.provisional && $0.origin == .edge && abs($0.probability - 0.4) < 1e-6 })
        let confident = records.filter { !$0.escalated }
        #expect(confident.allSatisfy { !$0.provisional && $0.escalationId == nil && $0.label == "class0" })

        let payloads = transport.snapshot
        #expect(payloads.map(\.id) == escalated.compactMap(\.escalationId), "each escalated record names its payload")
        for (payload, record) in zip(payloads, escalated) {
            #expect(payload.device == "box" && payload.stream == "s" && payload.modelVersion == "test-1")
            #expect(payload.windowStart == record.windowStart && payload.windowEnd == record.windowEnd)
            #expect(payload.channels == 3 && payload.length == 8 && payload.window.count == 24)
            #expect(abs(payload.window[0] - (-5 - 0.5) / 2) < 1e-3, "the window as the model saw it, standardized")
            #expect(payload.topK.map(\.label) == [0, 1], "topK 2, most probable first")
            #expect(abs(payload.confidence - 0.4) < 1e-6)
        }

        let statistics = stages.statistics.withLock { $0 }
        #expect(statistics.windows == 9 && statistics.escalations == 4 && statistics.cappedEscalations == 0)
        #expect(statistics.windowsByStream == ["s": 9] && statistics.gapResetsByStream == ["s": 0])
        #expect(abs(statistics.confidenceSum - (5 * 0.9 + 4 * 0.4)) < 1e-5)
    }

    @Test("when verdicts come back, an escalated window's record waits in the tracker; its verdict becomes the record")
    func verdictsThroughTracker() throws {
        let sink = CollectingSink()
        let transport = RecordingTransport()
        let stages = try Self.stages(transport: transport, sinks: [sink])
        stages.verdictsEnabled.store(true, ordering: .relaxed)
        var pipeline = try StreamPipeline(
            index: 0, stream: .init(name: "s", channels: 3), sourceDescription: "test", stages: stages)
        _ = Self.feed(Self.samples[...], to: &pipeline)

        #expect(sink.snapshot.count == 5 && sink.snapshot.allSatisfy { !$0.escalated }, "only the confident ones")
        #expect(transport.snapshot.count == 4)
        #expect(stages.verdictTracker.withLock { $0.pendingCount } == 4)

        let id = try #require(transport.snapshot.first?.id)
        let verdict = Verdict(escalationId: id, label: 2, probabilities: [0.1, 0.1, 0.8], modelVersion: "full-1")
        let now = stages.now
        let answer = stages.verdictTracker.withLock {
            $0.received(verdict, classNames: ["class0", "class1", "class2"], now: now)
        }
        stages.emit(try #require(answer))
        let record = try #require(sink.snapshot.last)
        #expect(record.escalationId == id && record.origin == .cloud && !record.provisional && record.label == "class2")
        #expect(stages.statistics.withLock { $0.verdictsInTime } == 1)
    }

    @Test("a model installed between windows classifies the next one, over samples re-standardized for it")
    func modelSwap() throws {
        let sink = CollectingSink()
        let stages = try Self.stages(transport: RecordingTransport(), sinks: [sink])
        var pipeline = try StreamPipeline(
            index: 0, stream: .init(name: "s", channels: 3), sourceDescription: "test", stages: stages)
        _ = Self.feed(Self.samples[..<20], to: &pipeline)  // windows 0–3
        // Standardized with mean −10, −5 becomes 2.5: every window is now confident.
        try stages.model.install(try ScriptedClassifier(version: "test-2", mean: -10))
        #expect(stages.model.current.generation == 1)
        _ = Self.feed(Self.samples[20...], to: &pipeline)  // windows 4–8

        let records = sink.snapshot
        let versions = Array(repeating: "test-1", count: 4) + Array(repeating: "test-2", count: 5)
        #expect(records.map(\.modelVersion) == versions)
        #expect(records.map(\.escalated) == [false, true, false, true, false, false, false, false, false])
    }

    @Test("a model that takes other input is refused and the serving one stays")
    func incompatibleModel() throws {
        let model = ServingModel(try ScriptedClassifier())
        let otherHop = try ScriptedClassifier(version: "test-2", hop: 2)
        #expect(throws: ModelLoadError.self) { try model.install(otherHop) }
        #expect(model.current.classifier.modelVersion == "test-1" && model.current.generation == 0)
    }

    @Test("a source's pipeline routes samples by stream name; bad lines count against its first stream, rate-limited")
    func sourcePipeline() throws {
        let sink = CollectingSink()
        let messages = Mutex<[String]>([])
        let stages = try Self.stages(
            transport: RecordingTransport(), sinks: [sink], log: { m in messages.withLock { $0.append(m) } })
        var source = try SourcePipeline(
            streams: [(0, .init(name: "s", channels: 3)), (1, .init(name: "t", channels: 3))],
            sourceDescription: "test", stages: stages)
        var lines = [String]()
        for (i, sample) in Self.samples.enumerated() {
            let values = sample.values.map { String($0) }.joined(separator: ",")
            lines.append("{\"ts\":\(sample.timestamp),\"values\":[\(values)],\"stream\":\"t\"}")
            if i < 12 { lines.append("\(sample.timestamp),\(values)") }  // no stream field: the first, s
            if i < 5 { lines.append("\(sample.timestamp),nan,1,2") }
        }
        var batch = LineBatch()
        for line in lines { batch.append(line) }
        source.process(batch)
        source.finish()

        let statistics = stages.statistics.withLock { $0 }
        #expect(statistics.samples == 40 + 12)
        #expect(statistics.windowsByStream == ["s": 2, "t": 9])
        #expect(Set(sink.snapshot.map(\.stream)) == ["s", "t"])
        #expect(stages.inputErrors.snapshot().byStream == ["s": [.nonFinite: 5]])
        let logged = messages.withLock { $0 }
        #expect(logged.count == 2 && logged.allSatisfy { $0.contains("stream s: test line") }, "two a period")
    }
}

/// Confident (0.9 on class 0) when a window's first standardized value is positive, unsure (0.4) otherwise.
struct ScriptedClassifier: WindowClassifier {
    let manifest: ModelManifest

    init(version: String = "test-1", mean: Float = 0.5, hop: Int = 4) throws {
        var manifest = try TestModel.artifact(version: version).manifest
        manifest.input.mean = [mean, 0.5, 0.5]
        manifest.input.hop = hop
        self.manifest = manifest
    }

    func classify(_ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>) {
        let confident = window[0] > 0
        probabilities[0] = confident ? 0.9 : 0.4
        probabilities[1] = confident ? 0.06 : 0.35
        probabilities[2] = confident ? 0.04 : 0.25
    }
}

/// Keeps every escalation submitted, in order; delivers no verdicts.
final class RecordingTransport: EscalationTransport {
    let payloads = Mutex<[EscalationPayload]>([])
    func submit(_ payload: EscalationPayload, encoded: [UInt8]) { payloads.withLock { $0.append(payload) } }
    var snapshot: [EscalationPayload] { payloads.withLock { $0 } }
}
