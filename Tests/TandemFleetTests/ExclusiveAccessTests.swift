import Testing

@testable import TandemFleet

/// ``ExclusiveAccess`` keeps an actor's read–decide–publish–save sequences from interleaving at their awaits.
struct ExclusiveAccessTests {
    actor Probe {
        let gate = ExclusiveAccess()
        var inside = 0
        var mostInside = 0
        var finished: [Int] = []

        func operation(_ i: Int, exclusive: Bool) async {
            if exclusive {
                await gate.run { await body(i) }
            } else {
                await body(i)
            }
        }

        private func body(_ i: Int) async {
            inside += 1
            mostInside = max(mostInside, inside)
            try? await Task.sleep(for: .milliseconds(20))
            finished.append(i)
            inside -= 1
        }
    }

    @Test("operations through the gate never overlap, and all run; without it the actor interleaves them")
    func serializes() async {
        for exclusive in [true, false] {
            let probe = Probe()
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<5 { group.addTask { await probe.operation(i, exclusive: exclusive) } }
            }
            #expect(await probe.finished.sorted() == [0, 1, 2, 3, 4])
            if exclusive {
                #expect(await probe.mostInside == 1)
            } else {
                #expect(await probe.mostInside > 1, "the actor alone lets them interleave at the sleep")
            }
        }
    }
}
