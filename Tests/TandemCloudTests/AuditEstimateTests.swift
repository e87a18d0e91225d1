import TandemCloud
import Testing

struct AuditEstimateTests {
    func device(_ audits: Int, agreed: Int, labelled: Int = 0, correct: Int = 0) -> AuditEstimate {
        AuditEstimate(audits: audits, answered: audits, agreed: agreed, labelled: labelled, correct: correct)
    }

    @Test("pooled: one device sending audits at volume counts for twice the median device, not for its volume")
    func oneLoudDevice() {
        let honest = Array(repeating: device(10, agreed: 10, labelled: 2, correct: 2), count: 19)
        let hostile = device(1000, agreed: 0, labelled: 500, correct: 0)
        let pooled = AuditEstimate.pooled(honest + [hostile])
        #expect(pooled == AuditEstimate(audits: 210, answered: 210, agreed: 190, labelled: 48, correct: 38))
        #expect((pooled.verdictAgreement ?? 0) > 0.9, "summed, the agreement would be 190 of 1,190")
    }

    @Test("pooled: devices of similar volume are summed unchanged; none is zero")
    func similarDevices() {
        let devices = [device(9, agreed: 8), device(10, agreed: 9, labelled: 3, correct: 1), device(12, agreed: 12)]
        #expect(
            AuditEstimate.pooled(devices)
                == AuditEstimate(audits: 31, answered: 31, agreed: 29, labelled: 3, correct: 1))
        #expect(AuditEstimate.pooled([device(500, agreed: 400)]) == device(500, agreed: 400), "a single device")
        #expect(AuditEstimate.pooled([]) == AuditEstimate(audits: 0, answered: 0, agreed: 0, labelled: 0, correct: 0))
        let scaled = AuditEstimate.pooled([device(1, agreed: 1), device(1, agreed: 1), device(Int.max, agreed: 7)])
        #expect(scaled.audits == 4 && scaled.agreed == 2, "an extreme count is scaled, never overflows")
    }
}
