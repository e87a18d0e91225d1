import Dispatch
import Foundation
import Synchronization
import TandemCloud
import TandemTestSupport
import Testing

struct SampleStoreOpeningTests {
    @Test("workers opening a new store at once all succeed: one of them migrates, the others find it done")
    func concurrentFirstOpen() throws {
        for round in 0..<20 {
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let path = scratch.url.appendingPathComponent("tandem.sqlite").path
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 16) { _ in
                do {
                    _ = try SampleStore(path: path)
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 }.isEmpty, "round \(round): \(failures.withLock { $0 })")
        }
    }
}
