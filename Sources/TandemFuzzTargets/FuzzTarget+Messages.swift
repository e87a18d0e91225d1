import Foundation
import TandemEdge
import TandemProtocol

extension FuzzTarget {
    /// A model assignment through the edge's reading of it: the artifact topic it would fetch, the update state
    /// it reports, and that state through the status the cloud reads (where a rollout looks for rejections).
    ///
    /// Checks: a decoded assignment encodes back to itself; the reported state, refusal reasons included, survives
    /// the status message and reads back as the same state.
    static let assignment = FuzzTarget(
        name: "assignment",
        summary: "ModelAssignment(decoding:) → the edge's update state → its status → the cloud's reading of it"
    ) { bytes in
        let payload = Array(bytes)
        let topics = DeviceTopics(fleet: "plant", device: "dev-1")
        let state: ModelUpdateState
        var outcome = Outcome.refused
        do {
            let assignment = try ModelAssignment(decoding: payload)
            let again = try? ModelAssignment(decoding: assignment.encoded())
            FuzzCheck.require(again == assignment, "a decoded assignment does not encode back to itself")
            _ = assignment.topic ?? topics.artifact(version: assignment.version)
            state = .downloading(assignment.version)
            outcome = .accepted
        } catch {
            state = .rejected("?", reason: "\(topics.modelAssignment): \(error)")
        }
        let reported = state.truncated
        let status = DeviceStatus(device: "dev-1", modelVersion: "edge-1", modelUpdate: reported)
        let read = try? DeviceStatus(validating: status.encoded())
        FuzzCheck.require(read?.modelUpdate == reported, "the cloud does not read back the update state \(reported)")
        if case .rejected(let version, let reason) = reported {
            FuzzCheck.require(read?.rejectionReason(for: version) == reason, "a rollout would miss the rejection")
        }
        return outcome
    }

    /// An agent policy through the edge's reading of it: the settings merged into agent.yaml's, and the policy state
    /// through the status the cloud reads (where a policy rollout looks for refusals).
    ///
    /// Checks: a decoded policy encodes back to itself and signs the same bytes; the merged settings stay within the
    /// ranges agent.yaml allows; the reported state survives the status message.
    static let policy = FuzzTarget(
        name: "policy",
        summary: "AgentPolicy(decoding:) → merged with agent.yaml's policy → the status's policyUpdate → the cloud"
    ) { bytes in
        let topics = DeviceTopics(fleet: "plant", device: "dev-1")
        let state: ModelUpdateState
        var outcome = Outcome.refused
        do {
            let policy = try AgentPolicy(decoding: Array(bytes))
            let again = try? AgentPolicy(decoding: policy.encoded())
            FuzzCheck.require(again == policy, "a decoded policy does not encode back to itself")
            FuzzCheck.require(again?.signedBytes == policy.signedBytes, "a re-encoded policy signs other bytes")
            var local = AgentConfiguration.Policy()
            local.budget = 0.1
            let merged = EdgeAgent.policyConfiguration(local, with: policy.settings)
            FuzzCheck.require(
                (0...1).contains(merged.threshold) && merged.budget.map { $0 > 0 && $0 < 1 } != false
                    && merged.maxEscalationsPerSecond >= 0 && merged.burst.map { $0 >= 1 } != false,
                "a policy merged into agent.yaml's leaves a setting out of range: \(merged)")
            state = .active(policy.version)
            outcome = .accepted
        } catch {
            state = .rejected("?", reason: "\(topics.policy): \(error)")
        }
        let reported = state.truncated
        var status = DeviceStatus(device: "dev-1", modelVersion: "edge-1")
        status.policyUpdate = reported
        let read = try? DeviceStatus(validating: status.encoded())
        FuzzCheck.require(read?.policyUpdate == reported, "the cloud does not read back the policy state \(reported)")
        return outcome
    }

    /// A verdict through the edge: the tracker holding escalated windows (answered in time, late with a
    /// correction, unknown), then the prediction record the sinks write.
    ///
    /// Input: a byte choosing when the verdict arrives, then the verdict. Checks: a decoded verdict encodes back to
    /// itself; every record the tracker releases is a JSON line that parses.
    static let verdict = FuzzTarget(
        name: "verdict",
        summary: "Verdict(decoding:) → VerdictTracker → the prediction record's JSON line"
    ) { bytes in
        var input = FuzzInput(bytes)
        let arrival = [0.5, 1.5, 100][input.choose(3)]
        let payload = Array(input.rest)
        guard let verdict = try? Verdict(decoding: payload) else { return .refused }
        let again = try? Verdict(decoding: verdict.encoded())
        FuzzCheck.require(again == verdict, "a decoded verdict does not encode back to itself")
        var tracker = VerdictTracker(deadlineSeconds: 1, correctionWindowSeconds: 10)
        var released = [PredictionRecord]()
        for (k, id) in MessageFixture.escalated.enumerated() {
            released += tracker.escalated(MessageFixture.record(id: id, labelIndex: k), id: id, now: 0)
        }
        if arrival > 1 { released += tracker.expire(now: arrival) }
        if let record = tracker.received(verdict, classNames: MessageFixture.classNames, now: arrival) {
            released.append(record)
        }
        for record in released {
            var line = [UInt8]()
            record.appendJSONLine(to: &line)
            let object = try? JSONSerialization.jsonObject(with: Data(line))
            FuzzCheck.require(object is [String: Any], "a prediction record is not a JSON line: \(line)")
        }
        return .accepted
    }
}

enum MessageFixture {
    static let classNames = ["normal", "bearing-fault", "imbalance"]
    /// The escalations the edge waits on: the seed verdicts answer the first two.
    static let escalated = [
        UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)),
        UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2)),
    ]

    static func record(id: UUID, labelIndex: Int) -> PredictionRecord {
        PredictionRecord(
            stream: "vibration", windowStart: 10, windowEnd: 12, label: classNames[labelIndex], labelIndex: labelIndex,
            probability: 0.55, confidence: 0.4, escalated: true, escalationId: id, modelVersion: "edge-1",
            latencyMilliseconds: 3)
    }
}
