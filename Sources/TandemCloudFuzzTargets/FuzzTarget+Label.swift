import Foundation
import Logging
import TandemCloud
import TandemFuzzTargets
import TandemProtocol

extension FuzzTarget {
    /// A ground-truth label message through the cloud's label intake (MQTT form) and, as a list, through the
    /// `POST /v1/labels` form.
    ///
    /// Checks: a label that decodes encodes back to itself; the intake counts each message once, stored or refused.
    static let label = FuzzTarget(
        name: "label",
        summary: "GroundTruthLabel(decoding:) and decodingList → LabelIntake (MQTT and POST /v1/labels)"
    ) { bytes in
        let payload = Array(bytes)
        let decoded = try? GroundTruthLabel(decoding: payload)
        if let decoded {
            let again = try? GroundTruthLabel(decoding: decoded.encoded())
            FuzzCheck.require(again == decoded, "a decoded label does not encode back to itself")
        }
        let intake = LabelFixture.intake
        let before = intake.statistics
        let stored = intake.receive(payload: payload, topic: "tandem/v1/plant/dev-1/labels")
        let after = intake.statistics
        let change =
            (after.stored - before.stored) + (after.rejected.values.reduce(0, +) - before.rejected.values.reduce(0, +))
        FuzzCheck.require(change == 1, "one label message changed the intake's counts by \(change)")
        FuzzCheck.require(!stored || decoded != nil, "the intake stored a label that does not decode")
        if let list = try? GroundTruthLabel.decodingList(payload) {
            FuzzCheck.require(!list.isEmpty, "a label list decoded empty")
            try? intake.submit(list, from: "fuzz")
        }
        return stored ? .accepted : .refused
    }
}

enum LabelFixture {
    static let intake = LabelIntake(
        classNames: ["normal", "bearing-fault", "imbalance"], store: FuzzStore.shared,
        logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
}
