import Foundation

/// One line an agent wrote to its records (the fields the demo reads; docs/EDGE.md has them all).
struct DemoRecord {
    /// True for a late verdict's correction of an earlier provisional prediction.
    var isCorrection: Bool
    /// Timestamp of the window's last sample, in stream seconds.
    var windowEnd: Double
    /// The class name the record settles on.
    var label: String
    /// Whether the window was escalated.
    var escalated: Bool
    /// The escalation id, when escalated.
    var escalationId: UUID?
    /// True when the cloud answered in time (the label is its verdict).
    var fromCloud: Bool
    /// The model that produced the label.
    var modelVersion: String
    /// True when the verdict missed the deadline and the label is the edge's own, for now.
    var provisional: Bool

    /// Reads one JSON line; nil for anything that is not a prediction or correction record.
    init?(line: Substring) {
        guard
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let type = object["type"] as? String, type == "prediction" || type == "correction",
            let end = object["end"] as? Double, let label = object["label"] as? String
        else { return nil }
        isCorrection = type == "correction"
        windowEnd = end
        self.label = label
        escalated = object["escalated"] as? Bool ?? false
        escalationId = (object["escalationId"] as? String).flatMap { UUID(uuidString: $0) }
        fromCloud = object["source"] as? String == "cloud"
        modelVersion = object["modelVersion"] as? String ?? "?"
        provisional = object["provisional"] as? Bool ?? false
    }
}

/// Every window the fleet classified, scored against the simulator's truth, in buckets of stream time.
///
/// A window counts once, with the label the device settled on: its prediction, or the correction a late
/// verdict made of a provisional one.
struct DemoLedger {
    /// The windows whose last sample falls in one interval of stream time.
    struct Bucket: Equatable {
        var windows = 0
        var escalated = 0
        var correct = 0
        /// Windows the edge model decided (not escalated), by edge model version.
        var edgeModels: [String: Int] = [:]

        var escalationRate: Double? { windows > 0 ? Double(escalated) / Double(windows) : nil }
        var accuracy: Double? { windows > 0 ? Double(correct) / Double(windows) : nil }

        static func + (a: Bucket, b: Bucket) -> Bucket {
            Bucket(
                windows: a.windows + b.windows, escalated: a.escalated + b.escalated, correct: a.correct + b.correct,
                edgeModels: a.edgeModels.merging(b.edgeModels, uniquingKeysWith: +))
        }
    }

    /// Seconds of stream time per bucket.
    let bucketSeconds: Double
    /// Bucket `i` holds windows ending in [i·bucketSeconds, (i+1)·bucketSeconds).
    private(set) var buckets: [Bucket] = []
    /// Corrections that changed a window's label.
    private(set) var corrections = 0
    /// Records the demo could not place (no truth at their time).
    private(set) var unplaced = 0
    /// Provisional predictions a correction may still change: where they were counted and whether right.
    private var provisional: [UUID: (bucket: Int, correct: Bool)] = [:]

    init(bucketSeconds: Double) {
        precondition(bucketSeconds > 0, "buckets must last a positive time")
        self.bucketSeconds = bucketSeconds
    }

    /// Counts one record; `truth` is the simulator's class at the window's end (nil: unknown).
    mutating func add(_ record: DemoRecord, truth: String?) {
        guard let truth, record.windowEnd >= 0 else {
            unplaced += 1
            return
        }
        let right = record.label == truth
        if record.isCorrection {
            guard let id = record.escalationId, let earlier = provisional.removeValue(forKey: id) else { return }
            corrections += 1
            if earlier.correct != right { buckets[earlier.bucket].correct += right ? 1 : -1 }
            return
        }
        let index = Int(record.windowEnd / bucketSeconds)
        if index >= buckets.count {
            buckets.append(contentsOf: repeatElement(Bucket(), count: index + 1 - buckets.count))
        }
        buckets[index].windows += 1
        if right { buckets[index].correct += 1 }
        if record.escalated {
            buckets[index].escalated += 1
            if record.provisional, let id = record.escalationId { provisional[id] = (index, right) }
        } else {
            buckets[index].edgeModels[record.modelVersion, default: 0] += 1
        }
    }

    /// The sum of the buckets that start in `[from, to)` seconds.
    func total(from: Double = 0, to: Double = .infinity) -> Bucket {
        var sum = Bucket()
        for (i, bucket) in buckets.enumerated() {
            let start = Double(i) * bucketSeconds
            if start >= from && start < to { sum = sum + bucket }
        }
        return sum
    }
}
