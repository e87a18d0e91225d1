import Foundation

/// The fields of a device's retained status message (docs/PROTOCOL.md "Status") that a rollout and the fleet
/// view read.
///
/// Unknown keys are ignored. The last will carries only `device` and `state`; the other fields are then nil.
public struct DeviceStatus: Sendable, Equatable {
    /// The device id.
    public var device: String
    /// `online` or `offline`.
    public var state: String
    /// The model version serving, if reported.
    public var modelVersion: String?
    /// `idle`, `downloading V`, `verifying V`, `active V` or `rejected V: reason`, if reported.
    public var modelUpdate: String?
    /// Windows classified since the agent started.
    public var windows: Int?
    /// Windows escalated since the agent started.
    public var escalations: Int?
    /// Escalations per window since the agent started.
    public var escalationRate: Double?
    /// Rejected input since the agent started, by stream and reason.
    public var inputErrors: [String: [String: Int]]?

    /// Creates a status.
    public init(
        device: String, state: String = "online", modelVersion: String? = nil, modelUpdate: String? = nil,
        windows: Int? = nil, escalations: Int? = nil, escalationRate: Double? = nil,
        inputErrors: [String: [String: Int]]? = nil
    ) {
        self.device = device
        self.state = state
        self.modelVersion = modelVersion
        self.modelUpdate = modelUpdate
        self.windows = windows
        self.escalations = escalations
        self.escalationRate = escalationRate
        self.inputErrors = inputErrors
    }

    /// Reads a status message; nil if it is not a JSON object with a `device` string.
    public init?(decoding bytes: [UInt8]) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let device = object["device"] as? String
        else { return nil }
        func integer(_ value: Any?) -> Int? {
            (value as? NSNumber).flatMap { $0.doubleValue.isFinite ? Int(exactly: $0.doubleValue.rounded()) : nil }
        }
        func integer(_ key: String) -> Int? { integer(object[key]) }
        // `{stream: {reason: count}}`; entries of another shape are left out rather than failing the status.
        let inputErrors = (object["inputErrors"] as? [String: Any]).map { streams in
            streams.compactMapValues { reasons in
                (reasons as? [String: Any]).map { $0.compactMapValues { integer($0) } }
            }
        }
        self.init(
            device: device, state: object["state"] as? String ?? "online",
            modelVersion: object["modelVersion"] as? String, modelUpdate: object["modelUpdate"] as? String,
            windows: integer("windows"), escalations: integer("escalations"),
            escalationRate: (object["escalationRate"] as? NSNumber)?.doubleValue, inputErrors: inputErrors)
    }

    /// The reason a device gave for refusing `version`, if its model update state says it did.
    public func rejectionReason(for version: String) -> String? {
        guard let update = modelUpdate, update.hasPrefix("rejected \(version):") else { return nil }
        return String(update.dropFirst("rejected \(version):".count)).trimmingCharacters(in: .whitespaces)
    }

    /// Input errors over every stream and reason, if reported.
    public var inputErrorTotal: Int? { inputErrors.map { $0.values.reduce(0) { $0 + $1.values.reduce(0, +) } } }

    /// This status updated by a newer one; a last will (no model version) keeps the last known numbers.
    public func updated(by newer: DeviceStatus) -> DeviceStatus {
        guard newer.modelVersion == nil else { return newer }
        var merged = self
        merged.state = newer.state
        return merged
    }
}
