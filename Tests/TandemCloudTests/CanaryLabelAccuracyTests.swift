import Foundation
import TandemCloud
import TandemFleet
import TandemTestSupport
import Testing

/// Label accuracy fed to a canary: the edge predictions on labelled escalations in a real SQLite store, candidate
/// against the version it replaces, since the canary started.
struct CanaryLabelAccuracyTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let devices = (1...20).map { "box-\($0)" }

    /// A rollout of v2 over v1 in canary since `t0`.
    func canary(minimumLabelledWindows: Int = 20) throws -> Rollout {
        var rollout = try Rollout.plan(
            fleet: "plant", version: "v2", previousVersion: "v1", devices: devices,
            policy: RolloutPolicy(
                canaryPercent: 50, soakSeconds: 3600, maximumAccuracyDrop: 0.05,
                minimumLabelledWindows: minimumLabelledWindows), now: t0)
        _ = try rollout.start(now: t0)
        return rollout
    }

    /// Stores `count` escalations of `model` from `device` of `fleet` at `time`, the edge predicting class 1; the
    /// first `correct` are labelled 1 and the rest of the first `labelled` labelled 2; the others get no label.
    static func store(
        _ store: any EscalationStore, model: String, at time: Date, count: Int, labelled: Int, correct: Int,
        device: String,
        fleet: String = "plant", payload: [UInt8] = [0]
    ) throws {
        var labels = [(id: UUID, label: Int)]()
        for k in 0..<count {
            let id = UUID()
            try store.insert(
                SampleStore.Escalation(
                    id: id, device: device, stream: "vib", payload: payload, responseTopic: "t", edgeLabel: 1,
                    edgeConfidence: 0.4, edgeModel: model, receivedAt: time.timeIntervalSince1970, fleet: fleet))
            if k < labelled { labels.append((id, k < correct ? 1 : 2)) }
        }
        try store.recordLabels(labels)
    }

    @Test("a canary whose labelled accuracy drops beyond the bound is rolled back; the counts are the canary's")
    func rollsBack() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let samples = try SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path)
        var rollout = try canary()
        let (inCohort, outside) = (rollout.cohort[0], rollout.others[0])
        // Before the canary: v2 (say, from a test device) was always right; that must not count.
        try Self.store(samples, model: "v2", at: t0 - 60, count: 100, labelled: 100, correct: 100, device: inCohort)
        // Since: v1 right on 27 of 30 labelled (90 %), v2 on 18 of 30 (60 %); unlabelled ones and another
        // version do not count.
        try Self.store(samples, model: "v1", at: t0 + 10, count: 40, labelled: 30, correct: 27, device: outside)
        try Self.store(samples, model: "v2", at: t0 + 10, count: 45, labelled: 30, correct: 18, device: inCohort)
        try Self.store(samples, model: "v0", at: t0 + 10, count: 30, labelled: 30, correct: 0, device: outside)
        // A device outside the cohort, or of another fleet, claiming the candidate does not speak for it.
        try Self.store(samples, model: "v2", at: t0 + 10, count: 50, labelled: 50, correct: 50, device: outside)
        try Self.store(
            samples, model: "v2", at: t0 + 10, count: 50, labelled: 50, correct: 50, device: inCohort,
            fleet: "elsewhere")
        try Self.store(
            samples, model: "v1", at: t0 + 10, count: 50, labelled: 50, correct: 0, device: outside, fleet: "elsewhere")

        let tallies = try samples.edgeAccuracy(of: ["v1", "v2", "v9"], receivedSince: t0.timeIntervalSince1970)
        #expect(tallies == ["v1": .init(correct: 27, labelled: 80), "v2": .init(correct: 118, labelled: 130)])
        let comparison = try #require(try samples.accuracyComparison(for: rollout))
        #expect(abs(comparison.candidate - 0.6) < 1e-12 && abs(comparison.baseline - 0.9) < 1e-12)
        #expect(comparison.candidateWindows == 30 && comparison.baselineWindows == 30)

        let actions = rollout.observe([:], accuracy: comparison, now: t0 + 60)
        #expect(rollout.phase == .rolledBack)
        #expect(actions.first?.kind == .rollBack && actions.first?.version == "v1")
        let reason = rollout.endReason ?? ""
        #expect(reason.contains("label accuracy 60.0 % of v2 on 30 labelled windows"), "\(reason)")
        #expect(reason.contains("baseline 90.0 % on 30 labelled windows"), "\(reason)")
        #expect(try samples.accuracyComparison(for: rollout) == nil, "no comparison once the canary is over")
    }

    @Test("labelled audits decide once both versions have the minimum of them; before that, every labelled escalation")
    func auditsFirst() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let samples = try SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path)
        var rollout = try canary(minimumLabelledWindows: 20)
        // The uncertain escalations make v2 look worse (60 % against 90 %): it escalates fewer, harder windows.
        try Self.store(
            samples, model: "v1", at: t0 + 5, count: 30, labelled: 30, correct: 27, device: rollout.others[0])
        try Self.store(
            samples, model: "v2", at: t0 + 5, count: 30, labelled: 30, correct: 18, device: rollout.cohort[0])
        // Audits (payload magic, version 3, reason 2): 19 of v2's so far, all right; v1 right on 20 of 25.
        let audit: [UInt8] = [0x54, 0x45, 0x03, 0x02, 0]
        try Self.store(
            samples, model: "v1", at: t0 + 5, count: 25, labelled: 25, correct: 20, device: rollout.others[0],
            payload: audit)
        try Self.store(
            samples, model: "v2", at: t0 + 5, count: 19, labelled: 19, correct: 19, device: rollout.cohort[0],
            payload: audit)
        let all = try #require(try samples.accuracyComparison(for: rollout))
        #expect(!all.onAudits && all.candidateWindows == 49 && all.baselineWindows == 55, "19 audits are too few")
        try Self.store(
            samples, model: "v2", at: t0 + 6, count: 1, labelled: 1, correct: 1, device: rollout.cohort[0],
            payload: audit)
        let audits = try #require(try samples.accuracyComparison(for: rollout))
        #expect(audits.onAudits && audits.candidate == 1 && abs(audits.baseline - 0.8) < 1e-12)
        #expect(audits.candidateWindows == 20 && audits.baselineWindows == 25)
        #expect(rollout.observe([:], accuracy: audits, now: t0 + 60).isEmpty && rollout.phase == .canary)
        // Had the audits said the opposite, the reason names them.
        let worse = AccuracyComparison(
            candidate: 0.5, baseline: 0.9, candidateWindows: 20, baselineWindows: 25, onAudits: true)
        _ = rollout.observe([:], accuracy: worse, now: t0 + 61)
        #expect(rollout.phase == .rolledBack)
        #expect((rollout.endReason ?? "").contains("of v2 on 20 labelled audit windows"), "\(rollout.endReason ?? "")")
    }

    /// A canary of v2 over v1 where nine cohort devices label 10 of their escalations each (9 right) and the tenth
    /// labels 600 of its own, all wrong; the ten other devices label 10 of v1's each (9 right).
    static func loudCohortDevice(_ samples: any EscalationStore, _ rollout: Rollout, at time: Date) throws {
        for device in rollout.cohort.dropLast() {
            try store(samples, model: "v2", at: time, count: 10, labelled: 10, correct: 9, device: device)
        }
        try store(samples, model: "v2", at: time, count: 600, labelled: 600, correct: 0, device: rollout.cohort.last!)
        for device in rollout.others {
            try store(samples, model: "v1", at: time, count: 10, labelled: 10, correct: 9, device: device)
        }
    }

    /// What ``loudCohortDevice(_:_:at:)`` must give for a cohort of `n` devices: the loud one counts as many windows
    /// as the median device (10), so v2 scores 9(n − 1) / 10n on 10n windows — 78.75 % on 80 for 8 — where a plain
    /// sum gives 9(n − 1) / (10(n − 1) + 600), 9.4 % for 8.
    static func expectLoudDeviceBounded(_ comparison: AccuracyComparison?, rollout: Rollout) {
        let n = rollout.cohort.count
        #expect(comparison?.candidateWindows == 10 * n && comparison?.baselineWindows == 10 * rollout.others.count)
        let pooled = Double(9 * (n - 1)) / Double(10 * n)
        #expect(abs((comparison?.candidate ?? 0) - pooled) < 1e-12, "\(String(describing: comparison))")
        #expect(abs((comparison?.baseline ?? 0) - 0.9) < 1e-12)
    }

    @Test("one cohort device labelling hundreds of its own escalations weighs as much as the median device (SQLite)")
    func loudDeviceSQLite() throws {
        typealias Tally = AccuracyComparison.Tally
        #expect(Tally.pooled([]) == Tally(correct: 0, labelled: 0))
        #expect(Tally.pooled([Tally(correct: 3, labelled: 7)]) == Tally(correct: 3, labelled: 7), "a single device")
        // Two devices: 30 right of 30 and 1 wrong of 1 rest on 2 pooled windows, below any minimum, where a plain
        // sum would call it 30 of 31 — or, with the ratio pooled but not the count, 16 of 31 on one label.
        #expect(
            Tally.pooled([Tally(correct: 30, labelled: 30), Tally(correct: 0, labelled: 1)])
                == Tally(correct: 1, labelled: 2))
        #expect(
            Tally.pooled([Tally(correct: 9, labelled: 4), Tally(correct: -2, labelled: -1)])
                == Tally(correct: 1, labelled: 1),
            "more right than labelled counts as all right, negatives as none")
        #expect(
            Tally.pooled([Tally(correct: .max, labelled: .max), Tally(correct: .max, labelled: .max)])
                == Tally(correct: .max, labelled: .max))
        let short = AccuracyComparison(
            candidate: Tally.pooled([Tally(correct: 30, labelled: 30), Tally(correct: 0, labelled: 1)]),
            baseline: Tally(correct: 90, labelled: 100), minimumWindows: 20)
        #expect(short == nil, "no comparison on 2 pooled windows")

        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let samples = try SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path)
        let rollout = try canary()
        #expect(rollout.cohort.count >= 5 && !rollout.others.isEmpty, "a cohort of several devices")
        try Self.loudCohortDevice(samples, rollout, at: t0 + 5)
        Self.expectLoudDeviceBounded(try samples.accuracyComparison(for: rollout), rollout: rollout)
    }

    @Test("no comparison until both versions have the minimum of labelled windows; a small drop is kept")
    func waitsForLabels() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let samples = try SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path)
        var rollout = try canary(minimumLabelledWindows: 20)
        try Self.store(
            samples, model: "v1", at: t0 + 5, count: 20, labelled: 20, correct: 20, device: rollout.others[0])
        try Self.store(samples, model: "v2", at: t0 + 5, count: 19, labelled: 19, correct: 0, device: rollout.cohort[0])
        #expect(try samples.accuracyComparison(for: rollout) == nil, "19 labelled candidate windows are too few")
        #expect(rollout.observe([:], accuracy: nil, now: t0 + 60).isEmpty && rollout.phase == .canary)
        // The 20th candidate window is right: 1 of 20 (5 %) against 100 %.
        try Self.store(samples, model: "v2", at: t0 + 6, count: 1, labelled: 1, correct: 1, device: rollout.cohort[0])
        let low = try #require(try samples.accuracyComparison(for: rollout))
        #expect(abs(low.candidate - 0.05) < 1e-12 && low.candidateWindows == 20)

        // Within the bound (0.05): 96 % against 100 % keeps the canary going.
        let scratch2 = try ScratchDirectory()
        defer { scratch2.remove() }
        let close = try SampleStore(path: scratch2.url.appendingPathComponent("tandem.sqlite").path)
        try Self.store(close, model: "v1", at: t0 + 5, count: 25, labelled: 25, correct: 25, device: rollout.others[0])
        try Self.store(close, model: "v2", at: t0 + 5, count: 25, labelled: 25, correct: 24, device: rollout.cohort[0])
        let small = try #require(try close.accuracyComparison(for: rollout))
        #expect(rollout.observe([:], accuracy: small, now: t0 + 60).isEmpty && rollout.phase == .canary)
    }

    @Test("a rollout state file written before the labelled-window minimum existed reads with its default")
    func oldStateFile() throws {
        let rollout = try canary(minimumLabelledWindows: 7)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        var object = try #require(
            try JSONSerialization.jsonObject(with: encoder.encode(rollout)) as? [String: Any])
        var policy = try #require(object["policy"] as? [String: Any])
        #expect(policy["minimumLabelledWindows"] as? Int == 7)
        policy["minimumLabelledWindows"] = nil
        object["policy"] = policy
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("rollout-plant.json")
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        let read = try Rollout.read(from: url)
        #expect(read.policy.minimumLabelledWindows == 200 && read.version == "v2" && read.phase == .canary)
    }
}
