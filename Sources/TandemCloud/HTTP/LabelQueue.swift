import Foundation

/// Answered escalations waiting for ground truth, ranked by what a label on them is worth.
///
/// A label teaches most where the full model itself was unsure: the worth of a window is one minus the margin
/// between the full model's two most likely classes, plus ½ when the edge model's class differs from the full
/// model's (one of the two is wrong, and the next edge model learns from the full model's answer). No device gets
/// more than ``maximumPerDevice`` places, so one noisy box cannot fill the queue.
public struct LabelQueue: Sendable {
    /// One window of the queue.
    public struct Entry: Sendable, Encodable, Equatable {
        /// The escalation id (what `POST /v1/labels` names).
        public var escalationId: UUID
        /// The fleet, if known.
        public var fleet: String?
        /// The device.
        public var device: String
        /// The stream.
        public var stream: String
        /// The edge model's class name.
        public var edgeClass: String
        /// The edge model's confidence.
        public var edgeConfidence: Double
        /// The full model's class name.
        public var cloudClass: String
        /// The margin between the full model's two most likely classes, 0…1.
        public var cloudMargin: Double
        /// The ranking score (higher: worth more).
        public var worth: Double
        /// Seconds since 1970 when it arrived.
        public var receivedAt: Double
        /// The window's start on the device's clock, if known.
        public var windowStart: Double?
    }

    /// The most places one device may take.
    public var maximumPerDevice: Int
    /// The queue's length.
    public var length: Int

    /// Creates a ranking rule; both numbers are at least 1.
    public init(length: Int = 50, maximumPerDevice: Int = 10) {
        self.length = max(1, length)
        self.maximumPerDevice = max(1, maximumPerDevice)
    }

    /// The margin between the two most likely classes of `probabilities`, 0…1 (non-finite entries ignored).
    public static func margin(of probabilities: [Float]) -> Double {
        var first: Float = 0
        var second: Float = 0
        for p in probabilities where p.isFinite {
            if p > first {
                second = first
                first = p
            } else if p > second {
                second = p
            }
        }
        return min(1, max(0, Double(first - second)))
    }

    /// The worth of a label on `row` (see the type's description); 0…1.5.
    public static func worth(of row: SampleStore.UnlabelledEscalation) -> Double {
        (1 - margin(of: row.probabilities)) + (row.edgeLabel != row.verdictLabel ? 0.5 : 0)
    }

    /// The queue over `rows`, the most worth first (the newest first among equals), class indices named by
    /// `classNames` (an index it does not hold is shown as `#n`).
    public func rank(_ rows: [SampleStore.UnlabelledEscalation], classNames: [String]) -> [Entry] {
        func name(_ index: Int) -> String { classNames.indices.contains(index) ? classNames[index] : "#\(index)" }
        let scored = rows.map { (row: $0, worth: Self.worth(of: $0)) }.sorted {
            $0.worth != $1.worth ? $0.worth > $1.worth : $0.row.receivedAt > $1.row.receivedAt
        }
        var perDevice: [String: Int] = [:]
        var entries: [Entry] = []
        for (row, worth) in scored where entries.count < length {
            let key = "\(row.fleet ?? "")/\(row.device)"
            guard perDevice[key, default: 0] < maximumPerDevice else { continue }
            perDevice[key, default: 0] += 1
            entries.append(
                Entry(
                    escalationId: row.id, fleet: row.fleet, device: row.device, stream: row.stream,
                    edgeClass: name(row.edgeLabel), edgeConfidence: row.edgeConfidence,
                    cloudClass: name(row.verdictLabel), cloudMargin: Self.margin(of: row.probabilities),
                    worth: worth, receivedAt: row.receivedAt, windowStart: row.windowStart))
        }
        return entries
    }
}
