import TandemProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Holds escalated windows' records until the cloud answers or the verdict deadline passes.
///
/// The agent registers each escalated window's edge record with ``escalated(_:id:now:)``. A verdict
/// that arrives before the deadline replaces it with the cloud's answer (`source: cloud`, not
/// provisional). At the deadline ``expire(now:)`` releases the edge record marked `provisional`; if a
/// verdict still arrives later (within `correctionWindowSeconds`) and names another class, a
/// `correction` record follows. Verdicts are idempotent on the escalation id (QoS 1 may deliver one
/// twice); unknown or repeated ids yield nothing.
///
/// Pure and deterministic: the caller passes the time. The MQTT link feeds it verdicts.
public struct VerdictTracker: Sendable {
    /// Seconds the edge waits for a verdict.
    public let deadlineSeconds: Double
    /// Seconds after the deadline a late verdict can still correct a provisional record.
    public let correctionWindowSeconds: Double
    /// The most windows waiting for a verdict; beyond it the oldest is released provisional at once.
    public let maximumPending: Int
    /// The most provisional records kept for a late correction; beyond it the oldest is forgotten (a
    /// verdict for it is then ignored), so memory stays bounded when escalations come faster than usual
    /// (a replay, a storm while the cloud is away). 4,096 (about 330 KiB) cover the 60 s correction window
    /// of 1,000 streams at 50 Hz escalating 8 % of their windows (780 windows/s).
    public let maximumProvisional: Int

    private var pending: [UUID: (record: PredictionRecord, deadline: Double)] = [:]
    private var pendingOrder: [UUID] = []
    private var pendingHead = 0
    private var provisional: [UUID: Provisional] = [:]
    private var provisionalOrder: [UUID] = []
    private var provisionalHead = 0

    /// Verdicts that arrived in time.
    public private(set) var answeredInTime = 0
    /// Windows released provisional at the deadline.
    public private(set) var expired = 0
    /// Correction records produced.
    public private(set) var corrections = 0
    /// Verdicts for unknown, already answered or too-old escalations.
    public private(set) var ignoredVerdicts = 0
    /// Provisional records forgotten before their correction window ended (``maximumProvisional``).
    public private(set) var forgottenProvisional = 0

    /// Creates a tracker.
    public init(
        deadlineSeconds: Double, correctionWindowSeconds: Double = 60, maximumPending: Int = 10_000,
        maximumProvisional: Int = 4096
    ) {
        self.deadlineSeconds = max(deadlineSeconds, 0)
        self.correctionWindowSeconds = max(correctionWindowSeconds, 0)
        self.maximumPending = max(maximumPending, 1)
        self.maximumProvisional = max(maximumProvisional, 0)
    }

    /// Windows waiting for a verdict.
    public var pendingCount: Int { pending.count }

    /// Registers an escalated window's edge record; returns records to emit now (the oldest pending
    /// one, released provisional, if the tracker was full).
    public mutating func escalated(_ record: PredictionRecord, id: UUID, now: Double) -> [PredictionRecord] {
        var released = [PredictionRecord]()
        if pending.count >= maximumPending {
            released = expire(now: .infinity, limit: 1)
        }
        pending[id] = (record, now + deadlineSeconds)
        pendingOrder.append(id)
        return released
    }

    /// Handles a verdict: the cloud's final record if the window was waiting, a correction if its
    /// provisional record named another class, else nil.
    ///
    /// - Parameter classNames: The class names the verdict's label indexes (the cloud model's).
    public mutating func received(_ verdict: Verdict, classNames: [String], now: Double) -> PredictionRecord? {
        let label = verdict.label < classNames.count ? classNames[verdict.label] : String(verdict.label)
        let probability =
            verdict.probabilities.indices.contains(verdict.label) ? verdict.probabilities[verdict.label] : 0
        if let entry = pending.removeValue(forKey: verdict.escalationId) {
            answeredInTime += 1
            var record = entry.record
            record.origin = .cloud
            record.provisional = false
            record.label = label
            record.labelIndex = verdict.label
            record.probability = probability
            record.modelVersion = verdict.modelVersion
            record.latencyMilliseconds += max(0, now - (entry.deadline - deadlineSeconds)) * 1000
            return record
        }
        if let entry = provisional.removeValue(forKey: verdict.escalationId), now <= entry.until {
            guard entry.labelIndex != verdict.label else { return nil }
            corrections += 1
            return PredictionRecord(
                kind: .correction, stream: entry.stream, windowStart: entry.windowStart, windowEnd: entry.windowEnd,
                label: label, labelIndex: verdict.label, probability: probability, confidence: entry.confidence,
                origin: .cloud, provisional: false, escalated: true, escalationId: verdict.escalationId,
                reason: entry.reason, modelVersion: verdict.modelVersion,
                latencyMilliseconds: entry.latencyMilliseconds)
        }
        ignoredVerdicts += 1
        return nil
    }

    /// Releases every window whose deadline has passed, marked provisional, oldest first.
    public mutating func expire(now: Double) -> [PredictionRecord] {
        expire(now: now, limit: .max)
    }

    private mutating func expire(now: Double, limit: Int) -> [PredictionRecord] {
        var released = [PredictionRecord]()
        while pendingHead < pendingOrder.count && released.count < limit {
            let id = pendingOrder[pendingHead]
            guard let entry = pending[id] else {
                pendingHead += 1  // answered already
                continue
            }
            guard entry.deadline <= now else { break }
            pendingHead += 1
            pending[id] = nil
            expired += 1
            var record = entry.record
            record.provisional = true
            released.append(record)
            provisional[id] = Provisional(record, until: entry.deadline + correctionWindowSeconds)
            provisionalOrder.append(id)
        }
        compact(now: now)
        return released
    }

    /// Forgets provisional records too old to correct or beyond ``maximumProvisional``, and trims the
    /// order queues.
    private mutating func compact(now: Double) {
        while provisional.count > maximumProvisional && provisionalHead < provisionalOrder.count {
            if provisional.removeValue(forKey: provisionalOrder[provisionalHead]) != nil { forgottenProvisional += 1 }
            provisionalHead += 1
        }
        while provisionalHead < provisionalOrder.count {
            let id = provisionalOrder[provisionalHead]
            if let entry = provisional[id], entry.until >= now, now.isFinite { break }
            if now.isFinite { provisional[id] = nil } else if provisional[id] != nil { break }
            provisionalHead += 1
        }
        if pendingHead > 1024 && pendingHead * 2 > pendingOrder.count {
            pendingOrder.removeFirst(pendingHead)
            pendingHead = 0
        }
        if provisionalHead > 1024 && provisionalHead * 2 > provisionalOrder.count {
            provisionalOrder.removeFirst(provisionalHead)
            provisionalHead = 0
        }
    }
}

/// What a provisional record keeps for a possible correction: the fields a correction repeats, about half
/// a full record (an agent escalating 100 windows a second holds 6,000 of them for the correction window).
private struct Provisional {
    let stream: String
    let windowStart: Double
    let windowEnd: Double
    let labelIndex: Int
    let confidence: Double
    let reason: EscalationReason?
    let latencyMilliseconds: Double
    let until: Double

    init(_ record: PredictionRecord, until: Double) {
        stream = record.stream
        windowStart = record.windowStart
        windowEnd = record.windowEnd
        labelIndex = record.labelIndex
        confidence = record.confidence
        reason = record.reason
        latencyMilliseconds = record.latencyMilliseconds
        self.until = until
    }
}
