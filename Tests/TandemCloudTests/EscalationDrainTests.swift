import Testing

@testable import TandemCloud

/// The stopping escalation server's wait for its batching thread and the broker's acknowledgements, without a
/// broker: which transition hands back the waiter to resume.
struct EscalationDrainTests {
    /// A continuation that is never awaited; only its identity in the state matters here.
    func withWaiter(_ body: (CheckedContinuation<Void, Never>) -> Void) async {
        await withCheckedContinuation { continuation in
            body(continuation)
            continuation.resume()
        }
    }

    @Test("the waiter is handed back once the batches are done and the last verdict is acknowledged, not before")
    func drainsInEitherOrder() async {
        for batchesFirst in [true, false] {
            var drain = EscalationServer.Drain.serving(unacknowledged: 0, batchesDone: false)
            drain.published()
            drain.published()
            var handedBack = 0
            await withWaiter { waiter in
                let resumeNow = drain.wait(waiter)
                #expect(!resumeNow, "not drained yet: wait")
                var early: [CheckedContinuation<Void, Never>?] = []
                if batchesFirst {
                    early.append(drain.batchesFinished())
                    early.append(drain.acknowledged())
                    if drain.acknowledged() != nil { handedBack += 1 }
                } else {
                    early.append(drain.acknowledged())
                    early.append(drain.acknowledged())
                    if drain.batchesFinished() != nil { handedBack += 1 }
                }
                #expect(early.allSatisfy { $0 == nil }, "handed back before both were done")
            }
            #expect(handedBack == 1)
            let late = drain.giveUp()
            #expect(late == nil, "nobody waits any more")
        }
    }

    @Test("a server already drained does not wait; a wait that gives up is handed back once")
    func alreadyDrainedAndGivingUp() async {
        var drained = EscalationServer.Drain.serving(unacknowledged: 0, batchesDone: false)
        drained.published()
        _ = drained.acknowledged()
        _ = drained.batchesFinished()
        await withWaiter { waiter in
            let resumeNow = drained.wait(waiter)
            #expect(resumeNow, "resume at once")
        }

        var stuck = EscalationServer.Drain.serving(unacknowledged: 0, batchesDone: true)
        stuck.published()
        var handedBack = 0
        await withWaiter { waiter in
            let resumeNow = stuck.wait(waiter)
            #expect(!resumeNow)
            if stuck.giveUp() != nil { handedBack += 1 }
            let late = stuck.acknowledged()
            #expect(late == nil, "a late acknowledgement finds nobody")
        }
        #expect(handedBack == 1)

        var early = EscalationServer.Drain.serving(unacknowledged: 3, batchesDone: false)
        let nobody = early.giveUp()
        #expect(nobody == nil)
        await withWaiter { waiter in
            let resumeNow = early.wait(waiter)
            #expect(resumeNow, "the time was up before the wait began")
        }
    }
}
