import Foundation
import Synchronization
import TandemCloud
import TandemTestSupport
import Testing

/// The training lease: one trainer across workers, through one SQLite file opened by several handles.
struct TrainingLeaseTests {
    @Test("two store handles racing for the lease: exactly one wins every contest")
    func exclusive() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("tandem.sqlite").path
        let stores = [try SampleStore(path: path), try SampleStore(path: path)]
        let contests = 40
        let wins = Mutex([[Bool]](repeating: [false, false], count: contests))
        for contest in 0..<contests {
            // Each contest starts after the previous lease expired (100 s later, 10 s leases).
            let now = Double(contest) * 100
            DispatchQueue.concurrentPerform(iterations: 2) { worker in
                let won =
                    (try? stores[worker].acquireTrainingLease(
                        holder: "worker-\(worker)", durationSeconds: 10, now: now)) ?? false
                wins.withLock { $0[contest][worker] = won }
            }
        }
        let results = wins.withLock { $0 }
        for (contest, pair) in results.enumerated() {
            #expect(pair.filter { $0 }.count == 1, "contest \(contest): \(pair)")
        }
        let lease = try #require(try stores[0].trainingLease())
        let lastWinner = try #require(results.last?.firstIndex(of: true))
        #expect(lease.holder == "worker-\(lastWinner)")
        #expect(abs(lease.expiresAt - (Double(contests - 1) * 100 + 10)) < 1e-9)
    }

    @Test("a lease blocks others until it expires or is released; its holder renews it")
    func expiry() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("tandem.sqlite").path
        let a = try SampleStore(path: path)
        let b = try SampleStore(path: path)
        #expect(try a.acquireTrainingLease(holder: "a", durationSeconds: 10, now: 1000))
        #expect(try !b.acquireTrainingLease(holder: "b", durationSeconds: 10, now: 1005))
        #expect(try a.acquireTrainingLease(holder: "a", durationSeconds: 10, now: 1008), "the holder renews")
        #expect(try !b.acquireTrainingLease(holder: "b", durationSeconds: 10, now: 1015), "renewed until 1018")
        #expect(try b.acquireTrainingLease(holder: "b", durationSeconds: 10, now: 1019), "expired: b takes it")
        #expect(try !a.acquireTrainingLease(holder: "a", durationSeconds: 10, now: 1020))
        try a.releaseTrainingLease(holder: "a")
        #expect(try a.trainingLease()?.holder == "b", "only the holder can release")
        try b.releaseTrainingLease(holder: "b")
        #expect(try a.trainingLease() == nil)
        #expect(try a.acquireTrainingLease(holder: "a", durationSeconds: 10, now: 1021), "released: a takes it")
    }
}
