import TandemProtocol

/// Each device's escalation history on the model it serves, built from the counters of its successive status
/// messages, in the form the ``RetrainingTrigger``'s drift rule reads.
///
/// A status's `windows` and `escalations` count since its agent started, so two successive statuses of a
/// device make one ``RetrainingTrigger/Interval`` (their difference) ending when the later one arrived. A
/// counter that went down means the agent restarted: the new counters are the windows since the restart. A
/// device that reports another model version starts afresh (its next status gives its first interval), so
/// everything kept about a device is about the model it serves now. The same status seen twice adds nothing.
///
/// The baseline of a device is its escalation rate over the intervals that ended more than one drift window
/// before now; the recent rate (the trigger's) is over the last drift window. A device is handed to the trigger
/// only when its baseline rests on at least `minimumWindows` windows, so a device that just changed model has
/// no drift verdict for at least one drift window.
///
/// Memory stays bounded however long a device runs and however often it reports: intervals older than the drift
/// window are folded into running baseline sums, and intervals ending within the same sixtieth of the drift
/// window are merged into one (which moves the window's edge by at most that much), so a device keeps about
/// 61 intervals.
///
/// After a round (``noteRound(startedAt:finishedAt:promoted:)``): a promotion starts every baseline afresh; any
/// other outcome holds drift verdicts back for one drift window after the round finished, so a drift that the
/// round did not cure is reported again at the earliest then.
public struct EscalationHistory: Sendable, Equatable {
    /// The drift window of the trigger, in seconds.
    public let driftWindowSeconds: Double
    /// No drift verdicts before this time (seconds since 1970).
    public private(set) var driftHeldBackUntil = -Double.greatestFiniteMagnitude
    /// The start of the last round noted.
    public private(set) var lastRoundNoted: Double?
    private var histories: [String: DeviceHistory] = [:]

    /// Intervals ending within one bucket (a sixtieth of the drift window) are merged.
    static let bucketsPerWindow = 60.0

    struct DeviceHistory: Sendable, Equatable {
        var modelVersion: String
        /// The counters of the last status taken in.
        var windows: Int
        var escalations: Int
        /// When the last status taken in arrived; nil for a broker's retained copy (of unknown age).
        var statusAt: Double?
        /// Windows and escalations of the intervals folded into the baseline.
        var baselineWindows = 0
        var baselineEscalations = 0
        /// Intervals not folded yet, oldest first.
        var intervals: [RetrainingTrigger.Interval] = []
    }

    /// An empty history.
    ///
    /// - Parameter driftWindowSeconds: The trigger's drift window (``RetrainingTrigger/driftWindowSeconds``).
    public init(driftWindowSeconds: Double) {
        self.driftWindowSeconds = max(driftWindowSeconds, 0)
    }

    /// Takes in a device's status.
    ///
    /// Counters outside 0…``DeviceStatus/maximumCount`` (what ``DeviceStatus/init(validating:)`` refuses) are ignored,
    /// and every sum saturates, so no status, and no number of them, can make the history trap.
    ///
    /// - Parameters:
    ///   - status: The status (its device, model version and counters); one without a model version or
    ///     counters (a last will) adds nothing.
    ///   - at: When it arrived (seconds since 1970), or nil for a broker's retained copy: that sets the
    ///     device's counters without an interval, as its age is unknown.
    public mutating func record(_ status: DeviceStatus, at: Double?) {
        let counts = 0...DeviceStatus.maximumCount
        guard let model = status.modelVersion, let windows = status.windows, let escalations = status.escalations,
            counts.contains(windows), counts.contains(escalations), at?.isFinite ?? true
        else { return }
        let fresh = DeviceHistory(modelVersion: model, windows: windows, escalations: escalations, statusAt: at)
        guard var history = histories[status.device], history.modelVersion == model else {
            histories[status.device] = fresh
            return
        }
        // A status already taken in (sampled again), or a retained copy of a device already followed.
        guard let at, at != history.statusAt else { return }
        let restarted = windows < history.windows || escalations < history.escalations
        let interval = RetrainingTrigger.Interval(
            endsAt: at, windows: restarted ? windows : windows - history.windows,
            escalations: restarted ? escalations : escalations - history.escalations)
        history.windows = windows
        history.escalations = escalations
        history.statusAt = at
        if interval.windows > 0 || interval.escalations > 0 {
            let bucket = driftWindowSeconds / Self.bucketsPerWindow
            if var last = history.intervals.last, bucket > 0,
                (last.endsAt / bucket).rounded(.down) == (at / bucket).rounded(.down) || at < last.endsAt
            {
                last.windows = last.windows.addingSaturated(interval.windows)
                last.escalations = last.escalations.addingSaturated(interval.escalations)
                last.endsAt = max(last.endsAt, at)
                history.intervals[history.intervals.count - 1] = last
            } else {
                history.intervals.append(interval)
            }
        }
        fold(&history, now: at)
        histories[status.device] = history
    }

    /// Moves the intervals that ended a drift window or more before `now` into the baseline sums.
    private func fold(_ history: inout DeviceHistory, now: Double) {
        let old = history.intervals.prefix { $0.endsAt <= now - driftWindowSeconds }
        guard !old.isEmpty else { return }
        history.baselineWindows = old.reduce(history.baselineWindows) { $0.addingSaturated($1.windows) }
        history.baselineEscalations = old.reduce(history.baselineEscalations) { $0.addingSaturated($1.escalations) }
        history.intervals.removeFirst(old.count)
    }

    /// The devices that have a baseline of at least `minimumWindows` windows, for the trigger.
    ///
    /// - Parameters:
    ///   - now: Seconds since 1970.
    ///   - minimumWindows: ``RetrainingTrigger/minimumDriftWindows``; 0 turns drift off (no devices).
    /// - Returns: Each such device with its baseline rate and its intervals of the last drift window, sorted by
    ///   id; none while drift is held back after a round.
    public func devices(now: Double, minimumWindows: Int) -> [RetrainingTrigger.Device] {
        guard minimumWindows > 0, now >= driftHeldBackUntil else { return [] }
        return histories.sorted { $0.key < $1.key }.compactMap { id, history in
            var history = history
            fold(&history, now: now)
            guard history.baselineWindows >= minimumWindows else { return nil }
            return RetrainingTrigger.Device(
                id: id,
                baselineEscalationRate: Double(history.baselineEscalations) / Double(history.baselineWindows),
                intervals: history.intervals)
        }
    }

    /// The windows and escalations behind a device's baseline at `now`, and its intervals not yet folded into it.
    public func baseline(of device: String, now: Double) -> (
        windows: Int, escalations: Int, intervals: [RetrainingTrigger.Interval]
    )? {
        guard var history = histories[device] else { return nil }
        fold(&history, now: now)
        return (history.baselineWindows, history.baselineEscalations, history.intervals)
    }

    /// Devices seen so far.
    public var deviceCount: Int { histories.count }

    /// The model version a device was last seen serving.
    public func modelVersion(of device: String) -> String? { histories[device]?.modelVersion }

    /// Takes in the last recorded round (by any worker sharing the store), once per round.
    ///
    /// - Parameters:
    ///   - startedAt: When the round started; a round already noted is ignored.
    ///   - finishedAt: When it finished.
    ///   - promoted: Whether its candidate was promoted: every baseline then starts afresh (the counters
    ///     are kept, so the next status of each device gives its first new interval). Otherwise drift is held
    ///     back until one drift window after `finishedAt`.
    public mutating func noteRound(startedAt: Double, finishedAt: Double, promoted: Bool) {
        guard startedAt != lastRoundNoted else { return }
        lastRoundNoted = startedAt
        if promoted {
            for id in histories.keys {
                histories[id]?.baselineWindows = 0
                histories[id]?.baselineEscalations = 0
                histories[id]?.intervals = []
            }
        } else {
            holdDriftBack(until: finishedAt + driftWindowSeconds)
        }
    }

    /// No drift verdicts before `time` (seconds since 1970); an earlier time than the one set is ignored.
    public mutating func holdDriftBack(until time: Double) {
        driftHeldBackUntil = max(driftHeldBackUntil, time)
    }
}
