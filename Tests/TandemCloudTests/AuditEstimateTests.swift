import TandemCloud
import Testing

struct AuditEstimateTests {
    func device(_ audits: Int, agreed: Int, labelled: Int = 0, correct: Int = 0) -> AuditEstimate {
        AuditEstimate(audits: audits, answered: audits, agreed: agreed, labelled: labelled, correct: correct)
    }

    @Test("pooled: the counts are sums; a device sending audits at volume weighs in the ratios as the median device")
    func oneLoudDevice() {
        let honest = Array(repeating: device(10, agreed: 10, labelled: 2, correct: 2), count: 19)
        let hostile = device(990, agreed: 0, labelled: 495, correct: 0)
        let pooled = AuditEstimate.pooled(honest + [hostile])
        // Weighed as a device of 10 audits: agreement 190 of 200, label accuracy 38 of 43, applied to the sums.
        #expect(pooled == AuditEstimate(audits: 1180, answered: 1180, agreed: 1121, labelled: 533, correct: 471))
        #expect(pooled.verdictAgreement == 0.95, "summed, the agreement would be 190 of 1,180")
    }

    @Test("pooled: devices at or below the median count in full; no count trusted beyond its own total")
    func similarDevices() {
        let devices = [device(9, agreed: 8), device(10, agreed: 9, labelled: 3, correct: 1), device(10, agreed: 10)]
        #expect(
            AuditEstimate.pooled(devices)
                == AuditEstimate(audits: 29, answered: 29, agreed: 27, labelled: 3, correct: 1))
        #expect(AuditEstimate.pooled([device(500, agreed: 400)]) == device(500, agreed: 400), "a single device")
        #expect(AuditEstimate.pooled([]) == AuditEstimate(audits: 0, answered: 0, agreed: 0, labelled: 0, correct: 0))
        let extreme = AuditEstimate.pooled([device(1, agreed: 1), device(1, agreed: 1), device(.max, agreed: .max)])
        #expect(extreme.audits == .max && extreme.answered == .max && extreme.agreed == .max, "sums saturate")
        let unanswered = AuditEstimate(audits: 50, answered: 0, agreed: 0, labelled: 0, correct: 0)
        #expect(AuditEstimate.pooled([unanswered, unanswered]).verdictAgreement == nil)
        let impossible = AuditEstimate(audits: 5, answered: 5, agreed: 9, labelled: 1, correct: 4)
        #expect(
            AuditEstimate.pooled([impossible])
                == AuditEstimate(audits: 5, answered: 5, agreed: 5, labelled: 1, correct: 1))
    }
}
