import Foundation
import Testing

@testable import TandemCloud

/// The retraining round's thread runs below the serving threads.
struct TrainerThreadTests {
    @Test("the trainer's thread gets the nice value asked for while the thread that started it keeps its own")
    func onlyTheTrainerThreadIsLowered() async throws {
        #if os(Linux)
            let before = try #require(TrainerThread.currentNice)
            let inside = try await onThread(nice: 12) { TrainerThread.currentNice }
            #expect(inside == max(before, 12), "the round's thread runs at nice 12")
            #expect(TrainerThread.currentNice == before, "the calling thread is not lowered")
            let plain = try await onThread { TrainerThread.currentNice }
            #expect(plain == before, "nice 0 leaves a thread as it was started")
        #endif
    }
}
