import Foundation
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemCloud

/// A round bounded in data and time: a replay sample of the original windows, a budget per training phase.
@Suite(.timeLimit(.minutes(5)))
struct RetrainingRoundBudgetTests {
    @Test(
        "the replay sample has the size asked for, keeps each class's share, has no repeats, and changes with the seed")
    func replaySample() {
        let labels = (0..<1000).map { $0 < 700 ? 0 : $0 < 950 ? 1 : 2 }
        let sample = RetrainingRound.replaySample(labels: labels, count: 200, seed: 42)
        #expect(sample.count == 200)
        #expect(Set(sample).count == 200 && sample == sample.sorted())
        let counts = [0, 1, 2].map { c in sample.filter { labels[$0] == c }.count }
        #expect(abs(counts[0] - 140) <= 1 && abs(counts[1] - 50) <= 1 && abs(counts[2] - 10) <= 1, "\(counts)")
        #expect(RetrainingRound.replaySample(labels: labels, count: 200, seed: 43) != sample)
        #expect(RetrainingRound.replaySample(labels: labels, count: 5000, seed: 42) == Array(0..<1000))
        // A class too rare for its share still gets a window while the count allows.
        let rare = RetrainingRound.replaySample(labels: (0..<100).map { $0 == 99 ? 1 : 0 }, count: 10, seed: 1)
        #expect(rare.count == 10 && rare.contains(99))
    }

    @Test(
        "a round with a tiny time budget per phase stops each training phase at it, keeps what it had and says so; the replay sample bounds the original windows"
    )
    func budgets() throws {
        let fixture = try RetrainingFixture.shared.get()
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let store = try SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path)
        _ = try fixture.storeEscalations(in: store)
        var options = RetrainingRound.Options()
        options.fineTuneEpochs = 50
        options.distillationEpochs = 500
        options.fineTuneSeconds = 0.2
        options.compressSeconds = 0.2
        options.replayWindows = 60
        options.edgeVersion = "edge-2"
        options.fullVersion = "full-2"
        let round = try RetrainingRound(
            full: fixture.full, edge: fixture.edge, edgeSpec: fixture.edgeSpec, options: options)
        var lines = [String]()
        let started = ContinuousClock.now
        let result = try round.run(data: fixture.data, hardExamples: try store.trainingExamples().examples) {
            lines.append($0)
        }
        let elapsed = ContinuousClock.now - started
        #expect(result.fineTuneOutOfTime && result.compressOutOfTime, "\(lines)")
        let seconds = Dictionary(uniqueKeysWithValues: result.phases.map { ($0.phase, $0.seconds) })
        // The budget plus one batch, one validation pass and the scoring after it.
        #expect((seconds["fine-tune"] ?? 99) < 3 && (seconds["compress"] ?? 99) < 4, "\(result.phases)")
        #expect(elapsed < .seconds(15), "\(elapsed)")
        #expect(lines[0].contains("60 of 300 original training windows replayed"), "\(lines[0])")
        #expect(lines[1].contains("time budget of 0.2 s reached"), "\(lines[1])")
        #expect(lines[2].contains("time budget of 0.2 s reached"), "\(lines[2])")
        // Stopped early or not, the candidates are whole models the gate scored.
        #expect(result.gate.holdoutWindows > 0 && result.gate.fullPassed != nil)
        #expect(lines[3].contains("full-model gate"), "\(lines[3])")
    }
}
