import TandemCloud
import TandemProtocol
import Testing

/// Drift from status messages: successive counters become intervals, a baseline on the current model, bounded memory.
struct EscalationHistoryTests {
    func status(_ device: String = "d", model: String? = "m1", windows: Int?, escalations: Int?) -> DeviceStatus {
        DeviceStatus(device: device, modelVersion: model, windows: windows, escalations: escalations)
    }

    /// A device reporting every `every` seconds from `start` for `seconds`, `perStatus` windows each time at
    /// `rate`, continuing from `counters`; returns the counters after the last status.
    @discardableResult
    func feed(
        _ history: inout EscalationHistory, device: String = "d", model: String = "m1", from start: Double,
        seconds: Double, every: Double = 10, perStatus: Int = 100, rate: Double,
        counters: (windows: Int, escalations: Int) = (0, 0)
    ) -> (windows: Int, escalations: Int) {
        var (windows, escalations) = counters
        var t = start + every
        while t <= start + seconds {
            windows += perStatus
            escalations += Int((Double(perStatus) * rate).rounded())
            history.record(status(device, model: model, windows: windows, escalations: escalations), at: t)
            t += every
        }
        return (windows, escalations)
    }

    @Test("successive counters become intervals; a retained copy and a status seen twice add nothing")
    func intervals() throws {
        var history = EscalationHistory(driftWindowSeconds: 6000)  // buckets of 100 s: no merging below
        history.record(status(windows: 500, escalations: 50), at: nil)  // retained: counters only
        history.record(status(windows: 700, escalations: 70), at: 1000)
        history.record(status(windows: 700, escalations: 70), at: 1000)  // sampled again
        history.record(status(windows: 750, escalations: 90), at: nil)  // a retained copy later: ignored
        history.record(status(windows: 1000, escalations: 130), at: 1200)
        history.record(status(windows: 1000, escalations: 130), at: 1400)  // idle: no interval
        let intervals = try #require(history.baseline(of: "d", now: 1400)?.intervals)
        #expect(
            intervals == [
                .init(endsAt: 1000, windows: 200, escalations: 20), .init(endsAt: 1200, windows: 300, escalations: 60),
            ])
        // A last will carries no counters and changes nothing.
        history.record(DeviceStatus(device: "d", state: .offline), at: 1500)
        #expect(history.baseline(of: "d", now: 1500)?.intervals == intervals)
    }

    @Test("a counter going down (the agent restarted) counts from zero: the new counters are the interval")
    func counterReset() throws {
        var history = EscalationHistory(driftWindowSeconds: 6000)
        history.record(status(windows: 5000, escalations: 400), at: 100)
        history.record(status(windows: 5300, escalations: 430), at: 300)
        history.record(status(windows: 120, escalations: 30), at: 500)  // restarted
        history.record(status(windows: 220, escalations: 35), at: 700)
        let intervals = try #require(history.baseline(of: "d", now: 700)?.intervals)
        #expect(
            intervals == [
                .init(endsAt: 300, windows: 300, escalations: 30), .init(endsAt: 500, windows: 120, escalations: 30),
                .init(endsAt: 700, windows: 100, escalations: 5),
            ], "no negative interval, nothing lost after the restart")
        // Only the escalation counter going down is a restart too.
        history.record(status(windows: 300, escalations: 2), at: 900)
        #expect(history.baseline(of: "d", now: 900)?.intervals.last == .init(endsAt: 900, windows: 300, escalations: 2))
    }

    @Test("a device changing model starts afresh: no interval across the swap, no baseline from the old model")
    func modelChange() throws {
        var history = EscalationHistory(driftWindowSeconds: 600)
        let counters = feed(&history, from: 0, seconds: 3000, rate: 0.1)
        #expect((history.baseline(of: "d", now: 3000)?.windows ?? 0) >= 20_000)
        #expect(history.devices(now: 3000, minimumWindows: 1000).map(\.id) == ["d"])
        // The agent swaps to m2 without restarting: its counters go on.
        history.record(
            status(model: "m2", windows: counters.windows + 100, escalations: counters.escalations + 50), at: 3010)
        #expect(history.modelVersion(of: "d") == "m2")
        let fresh = try #require(history.baseline(of: "d", now: 3010))
        #expect(fresh.windows == 0 && fresh.escalations == 0 && fresh.intervals.isEmpty)
        #expect(history.devices(now: 3010, minimumWindows: 1000).isEmpty)
        // Its next status is its first interval on m2.
        history.record(
            status(model: "m2", windows: counters.windows + 300, escalations: counters.escalations + 60), at: 3020)
        #expect(history.baseline(of: "d", now: 3020)?.intervals == [.init(endsAt: 3020, windows: 200, escalations: 10)])
    }

    @Test("the baseline is the rate before the drift window, the recent rate the window's; the trigger sees the jump")
    func baselineAndRecent() throws {
        var trigger = RetrainingTrigger()
        trigger.driftWindowSeconds = 600
        trigger.minimumDriftWindows = 1000
        var history = EscalationHistory(driftWindowSeconds: 600)
        // 10 % for 10 minutes: 6,000 windows, all within the drift window, none behind a baseline yet.
        var counters = feed(&history, from: 0, seconds: 600, rate: 0.1)
        #expect(history.devices(now: 600, minimumWindows: 1000).isEmpty, "no baseline yet, so no verdict")
        // 10 more minutes at 10 %: the first 10 minutes are now the baseline; no drift.
        counters = feed(&history, from: 600, seconds: 600, rate: 0.1, counters: counters)
        let steady = history.devices(now: 1200, minimumWindows: 1000)
        #expect(steady.count == 1 && abs((steady.first?.baselineEscalationRate ?? -1) - 0.1) < 1e-12)
        #expect(trigger.reasons(for: .init(now: 1200, newHardExamples: 0, newLabels: 0, devices: steady)).isEmpty)
        // Then 30 % for 5 minutes: the last 10 minutes average 20 %, the baseline (the first 10) stays 10 %.
        feed(&history, from: 1200, seconds: 300, rate: 0.3, counters: counters)
        let drifting = history.devices(now: 1500, minimumWindows: 1000)
        let device = try #require(drifting.first)
        #expect(abs(device.baselineEscalationRate - 0.1) < 1e-12, "\(device.baselineEscalationRate)")
        let reasons = trigger.reasons(for: .init(now: 1500, newHardExamples: 0, newLabels: 0, devices: drifting))
        guard case .drift(let id, let baseline, let recent, let windows) = reasons.first else {
            Issue.record("expected drift, got \(reasons)")
            return
        }
        #expect(id == "d" && abs(baseline - 0.1) < 1e-12 && windows == 6000, "\(reasons)")
        #expect(abs(recent - 0.2) < 1e-12, "\(recent)")
        // The baseline must rest on the minimum: with 10,000 it has only 9,000 windows (minutes 0–15).
        #expect(history.devices(now: 1500, minimumWindows: 10_000).isEmpty)
        #expect(history.devices(now: 1500, minimumWindows: 0).isEmpty, "0 turns drift off")
        var off = trigger
        off.minimumDriftWindows = 0
        #expect(off.reasons(for: .init(now: 1500, newHardExamples: 0, newLabels: 0, devices: drifting)).isEmpty)
    }

    @Test("memory stays bounded: old intervals fold into the baseline sums and close ones merge, nothing is lost")
    func memoryBound() throws {
        var history = EscalationHistory(driftWindowSeconds: 600)
        // A day of a status every second.
        let counters = feed(&history, from: 0, seconds: 86_400, every: 1, perStatus: 10, rate: 0.2)
        let kept = try #require(history.baseline(of: "d", now: 86_400))
        #expect(kept.intervals.count <= 61, "\(kept.intervals.count) intervals kept")
        // Everything after the first status is in the sums or the intervals.
        let total = kept.windows + kept.intervals.reduce(0) { $0 + $1.windows }
        #expect(total == counters.windows - 10, "\(total) of \(counters.windows - 10)")
        let escalations = kept.escalations + kept.intervals.reduce(0) { $0 + $1.escalations }
        #expect(escalations == counters.escalations - 2)
        #expect(kept.intervals.allSatisfy { $0.endsAt > 86_400 - 600 })
        // The recent window still holds its 6,000 windows, to within the one bucket (10 s, 100 windows) by which
        // merging moves its edge.
        let recent = kept.intervals.reduce(0) { $0 + $1.windows }
        #expect((5900...6100).contains(recent), "\(recent)")
    }

    @Test("after a promotion baselines start afresh; after another outcome drift waits one window; once per round")
    func afterRounds() throws {
        var history = EscalationHistory(driftWindowSeconds: 600)
        let counters = feed(&history, from: 0, seconds: 1800, rate: 0.1)
        #expect(history.devices(now: 1800, minimumWindows: 1000).count == 1)

        var failed = history
        failed.noteRound(startedAt: 1700, finishedAt: 1800, promoted: false)
        #expect(failed.devices(now: 1800, minimumWindows: 1000).isEmpty)
        #expect(failed.devices(now: 2399, minimumWindows: 1000).isEmpty)
        #expect(failed.devices(now: 2400, minimumWindows: 1000).count == 1, "one drift window after the round")
        failed.noteRound(startedAt: 1700, finishedAt: 3000, promoted: false)
        #expect(failed.devices(now: 2400, minimumWindows: 1000).count == 1, "the same round is noted once")

        var promoted = history
        promoted.noteRound(startedAt: 1700, finishedAt: 1800, promoted: true)
        let fresh = try #require(promoted.baseline(of: "d", now: 1800))
        #expect(fresh.windows == 0 && fresh.intervals.isEmpty)
        // The counters were kept: the next status is a new interval, not everything since the agent started.
        feed(&promoted, from: 1800, seconds: 10, rate: 0.5, counters: counters)
        #expect(
            promoted.baseline(of: "d", now: 1810)?.intervals == [.init(endsAt: 1810, windows: 100, escalations: 50)])
        // A new baseline needs a drift window of history before a verdict.
        feed(
            &promoted, from: 1810, seconds: 590, rate: 0.5,
            counters: (counters.windows + 100, counters.escalations + 50))
        #expect(promoted.devices(now: 2400, minimumWindows: 1000).isEmpty)
    }
}
