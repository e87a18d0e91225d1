import Foundation
import TandemProtocol
import Testing

/// Every JSON message of the contract, encoded as one side does and decoded as the other does.
struct MessageRoundTripTests {
    @Test("a full status encoded by the edge decodes to the same value on the cloud")
    func statusRoundTrip() throws {
        var status = DeviceStatus(
            device: "press-12", modelVersion: "edge-3", modelUpdate: .rejected("edge-4", reason: "untrusted: key 01"),
            windows: 1200, escalations: 96, escalationRate: 0.08, inputErrors: ["vib": ["nonFinite": 3]])
        status.cappedEscalations = 2
        status.verdictsInTime = 90
        status.corrections = 11
        status.sampleRateMismatchHz = ["vib": 0.5]
        status.meanConfidence = 0.91
        status.threshold = 0.6
        status.uptimeSeconds = 12.5
        status.rssBytes = 18_000_000
        status.outbox = .init(pending: 1, delivered: 95, dropped: 0, refused: 0, journalBytes: 4096)
        status.badVerdicts = 0
        status.connected = true
        let decoded = try #require(DeviceStatus(decoding: status.encoded()))
        #expect(decoded == status)
        #expect(decoded.rejectionReason(for: "edge-4") == "untrusted: key 01")
        #expect(decoded.rejectionReason(for: "edge-3") == nil)
        #expect(decoded.inputErrorTotal == 3)
    }

    @Test("the last will is the device and offline, and keeps the last known numbers when merged")
    func lastWill() throws {
        let will = DeviceStatus.lastWill(device: "a\"b")
        let text = String(decoding: will.encoded(), as: UTF8.self)
        #expect(text == #"{"device":"a\"b","state":"offline"}"#)
        let online = DeviceStatus(device: "a\"b", modelVersion: "v1", windows: 10)
        let merged = online.updated(by: try #require(DeviceStatus(decoding: Array(text.utf8))))
        #expect(merged.state == .offline)
        #expect(merged.windows == 10)
    }

    @Test("a field of the wrong type is absent, unknown keys are ignored, no device means no status")
    func lenientDecoding() throws {
        let status = try #require(
            DeviceStatus(
                decoding: Array(
                    #"{"device":"d","windows":"many","state":"sleeping","modelUpdate":"exploded","extra":[1,2]}"#.utf8))
        )
        #expect(status.windows == nil)
        #expect(status.state == .online)
        #expect(status.modelUpdate == nil)
        #expect(DeviceStatus(decoding: Array(#"{"windows":3}"#.utf8)) == nil)
        #expect(DeviceStatus(decoding: Array("[1]".utf8)) == nil)
        #expect(DeviceStatus(decoding: []) == nil)
    }

    @Test(
        "model update states read back from their wire text",
        arguments: [
            ModelUpdateState.idle, .downloading("v2"), .verifying("edge:7"), .active("edge-3"),
            .rejected("v2", reason: "untrusted: signed by key 0123"), .rejected("v:2", reason: ""),
        ])
    func modelUpdateStates(state: ModelUpdateState) {
        #expect(ModelUpdateState(state.description) == state)
    }

    @Test(
        "text that is not a model update state is refused",
        arguments: ["", "active", "active ", "rejected v2", "gone v1"])
    func badModelUpdateStates(text: String) {
        #expect(ModelUpdateState(text) == nil)
    }

    @Test("a label encodes and decodes, alone and in a list")
    func labelRoundTrip() throws {
        let label = GroundTruthLabel(escalationId: UUID(), label: "bearing-fault")
        #expect(try GroundTruthLabel(decoding: label.encoded()) == label)
        let list =
            "[\(String(decoding: label.encoded(), as: UTF8.self)),\(String(decoding: label.encoded(), as: UTF8.self))]"
        #expect(try GroundTruthLabel.decodingList(Array(list.utf8)) == [label, label])
        #expect(try GroundTruthLabel.decodingList(label.encoded()) == [label])
    }

    @Test(
        "bad labels are refused with the field and element named",
        arguments: [
            ("not json", LabelError.Code.malformed, "not JSON"),
            ("[]", .malformed, "no labels"),
            ("3", .malformed, "expected a JSON object"),
            (#"{"label":"x"}"#, .badEscalationId, "missing"),
            (#"{"escalationId":"nope","label":"x"}"#, .badEscalationId, "not a UUID"),
            (#"{"escalationId":"8A1C8A1C-0000-4000-8000-000000000000","label":""}"#, .badLabel, "label"),
            (#"{"escalationId":"8A1C8A1C-0000-4000-8000-000000000000","label":7}"#, .badLabel, "label"),
            (#"[{"escalationId":"8A1C8A1C-0000-4000-8000-000000000000","label":"a"},[1]]"#, .malformed, "element 1"),
            (
                #"[{"escalationId":"8A1C8A1C-0000-4000-8000-000000000000","label":"a"},{"label":"a"}]"#,
                .badEscalationId,
                "element 1"
            ),
        ])
    func badLabels(text: String, code: LabelError.Code, mention: String) {
        #expect {
            _ = try GroundTruthLabel.decodingList(Array(text.utf8))
        } throws: { error in
            guard let error = error as? LabelError else { return false }
            return error.code == code && error.message.contains(mention)
        }
    }

    @Test("a single-label message refuses an array")
    func singleLabelRefusesArray() {
        #expect(throws: LabelError.self) { try GroundTruthLabel(decoding: Array("[]".utf8)) }
    }

    @Test("an assignment encoded by the cloud decodes on the edge")
    func assignmentRoundTrip() throws {
        let assignment = ModelAssignment(
            version: "edge-3", sha256: String(repeating: "ab", count: 32), size: 14_680,
            topic: DeviceTopics(fleet: "plant", device: "d").artifact(version: "edge-3"))
        #expect(try ModelAssignment(decoding: assignment.encoded()) == assignment)
    }

    @Test("a verdict encoded by the cloud decodes on the edge")
    func verdictRoundTrip() throws {
        let verdict = Verdict(escalationId: UUID(), label: 2, probabilities: [0.1, 0.2, 0.7], modelVersion: "full-2")
        #expect(try Verdict(decoding: verdict.encoded()) == verdict)
    }
}

/// A status is a device's word about itself: numbers out of range are refused before the cloud adds them up.
struct StatusValidationTests {
    static func statusText(_ fields: String) -> [UInt8] {
        Array(#"{"device":"d","state":"online","modelVersion":"v1",\#(fields)}"#.utf8)
    }

    @Test(
        "absurd or negative numbers refuse the whole status, naming the field",
        arguments: [
            (#""windows":-1"#, "windows"),
            (#""escalations":9223372036854775807"#, "escalations"),
            (#""windows":1099511627777"#, "windows"),
            (#""escalationRate":1.5"#, "escalationRate"),
            (#""meanConfidence":-0.1"#, "meanConfidence"),
            (#""uptimeSeconds":-3"#, "uptimeSeconds"),
            (#""outbox":{"pending":-5,"delivered":0,"dropped":0,"refused":0,"journalBytes":0}"#, "outbox.pending"),
            (#""inputErrors":{"a":{"x":-1}}"#, "inputErrors"),
            (#""inputErrors":{"a":{"x":1099511627776},"b":{"x":1099511627776}}"#, "add up"),
            (#""rssBytes":-2"#, "rssBytes"),
        ])
    func refused(fields: String, name: String) {
        #expect {
            try DeviceStatus(validating: Self.statusText(fields))
        } throws: { error in
            (error as? PayloadError).map { $0.code == .malformed && $0.message.contains(name) } ?? false
        }
        #expect(DeviceStatus(decoding: Self.statusText(fields)) == nil)
    }

    @Test("in-range numbers at the limits are accepted")
    func accepted() throws {
        let status = try DeviceStatus(
            validating: Self.statusText(
                #""windows":1099511627776,"escalations":0,"escalationRate":1,"meanConfidence":0,"rssBytes":-1,"inputErrors":{"a":{"x":1099511627776}}"#
            ))
        #expect(status.windows == DeviceStatus.maximumCount)
        #expect(status.inputErrorTotal == DeviceStatus.maximumCount)
    }

    @Test("a status larger than the limit is refused before it is parsed")
    func tooLarge() {
        let padding = String(repeating: " ", count: DeviceStatus.maximumBytes)
        #expect(DeviceStatus(decoding: Self.statusText(#""windows":1"# + padding)) == nil)
    }
}

struct RejectionReasonTests {
    @Test("a long rejection reason is cut, so the status and the rejection still reach the cloud")
    func longReasonIsCut() throws {
        let reason = String(repeating: "class name é, ", count: 400)
        var status = DeviceStatus(device: "d", modelVersion: "v1", modelUpdate: .rejected("v2", reason: reason))
        let decoded = try #require(DeviceStatus(decoding: status.encoded()))
        let cut = try #require(decoded.rejectionReason(for: "v2"))
        #expect(cut.utf8.count <= ModelUpdateState.maximumReasonBytes)
        #expect(cut.hasSuffix("…") && reason.hasPrefix(cut.dropLast()))
        status.modelUpdate = status.modelUpdate?.truncated
        #expect(status.encoded().count < DeviceStatus.maximumBytes)
        #expect(ModelUpdateState.active("v2").truncated == .active("v2"))
    }
}
