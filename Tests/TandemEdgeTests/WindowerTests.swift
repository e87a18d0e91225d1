import TandemCore
import TandemProtocol
import Testing

@testable import TandemEdge

struct WindowerTests {
    func spec(
        window: Int = 4, hop: Int = 2, channels: Int = 2, rate: Double? = nil, mean: [Float] = [], std: [Float] = []
    )
        -> InputSpec
    {
        InputSpec(channels: channels, window: window, hop: hop, sampleRateHz: rate, mean: mean, std: std)
    }

    @Test(
        "windows start every hop samples and hold the newest window in order",
        arguments: [(4, 2), (4, 4), (5, 1), (3, 7)])
    func countsAndHop(window: Int, hop: Int) throws {
        var w = try StreamWindower(spec: spec(window: window, hop: hop, channels: 2))
        var starts = [Double]()
        let n = 40
        for i in 0..<n {
            let outcome = w.append(timestamp: Double(i), values: [Float(i), Float(-i)])
            if outcome == .windowReady {
                let ok = w.withCurrentWindow { win -> Bool in
                    starts.append(win.start)
                    #expect(win.end - win.start == Double(window - 1))
                    for t in 0..<window {
                        let expected = Float(Int(win.start) + t)
                        if win.values[t * 2] != expected || win.values[t * 2 + 1] != -expected { return false }
                    }
                    return true
                }
                #expect(ok == true)
            }
        }
        let expectedCount = n >= window ? (n - window) / hop + 1 : 0
        #expect(starts.count == expectedCount)
        #expect(starts == (0..<expectedCount).map { Double($0 * hop) })
    }

    @Test("a gap longer than 1.5 observed steps restarts the window sequence")
    func gapResetObserved() throws {
        var w = try StreamWindower(spec: spec(window: 4, hop: 4, channels: 1))
        var windows = 0
        for i in 0..<10 where w.append(timestamp: Double(i) * 0.1, values: [1]) == .windowReady { windows += 1 }
        #expect(windows == 2)  // samples 0-3, 4-7; 8, 9 held
        // 0.16 s is within 1.5 × 0.1 of the previous sample: no gap. Then a 1 s gap.
        #expect(w.append(timestamp: 0.9 + 0.14, values: [1]) == .accepted)
        #expect(w.append(timestamp: 2.0, values: [1]) == .accepted)
        #expect(w.gapResets == 1)
        var outcomes = [StreamWindower.Outcome]()
        var start: Double?
        for i in 1...4 {
            outcomes.append(w.append(timestamp: 2.0 + Double(i) * 0.1, values: [1]))
            if outcomes.last == .windowReady { start = w.withCurrentWindow { $0.start } }
        }
        #expect(
            outcomes == [.accepted, .accepted, .windowReady, .accepted], "the window after a gap starts at the gap")
        #expect(start.map { abs($0 - 2.0) < 1e-9 } == true, "the window after the gap: 2.0 … 2.3")
        #expect(w.withCurrentWindow { $0.start } == nil, "a window is served only right after it completes")
    }

    @Test("with a nominal sample rate a gap is measured against 1 / rate")
    func gapResetNominal() throws {
        var w = try StreamWindower(spec: spec(window: 3, hop: 1, channels: 1, rate: 10))
        #expect(w.append(timestamp: 0, values: [0]) == .accepted)
        #expect(w.append(timestamp: 0.1, values: [0]) == .accepted)
        #expect(w.append(timestamp: 0.26, values: [0]) == .accepted)
        #expect(w.gapResets == 1, "0.16 s is more than 1.5 × 0.1 s")
    }

    @Test("one far-future timestamp costs a bounded run of samples, then the stream re-synchronizes")
    func resynchronizesAfterFarFuture() throws {
        var w = try StreamWindower(spec: spec(window: 4, hop: 4, channels: 1))
        for i in 0..<3 { #expect(w.append(timestamp: Double(i) * 0.1, values: [1]) == .accepted) }
        #expect(w.append(timestamp: 1e12, values: [1]) == .windowReady, "a spoofed sample completes a window")
        let run = StreamWindower.resynchronizeAfter
        for i in 0..<run {
            #expect(w.append(timestamp: 0.3 + Double(i) * 0.1, values: [1]) == .rejected(.outOfOrder))
        }
        #expect(w.resynchronizations == 0)
        var outcomes = [StreamWindower.Outcome]()
        for i in 0..<8 { outcomes.append(w.append(timestamp: 10 + Double(i) * 0.1, values: [1])) }
        #expect(w.resynchronizations == 1)
        #expect(
            outcomes == [.accepted, .accepted, .accepted, .windowReady, .accepted, .accepted, .accepted, .windowReady])
        #expect(w.append(timestamp: 9, values: [1]) == .rejected(.outOfOrder), "ordering holds on the new timeline")
    }

    @Test("out-of-order and duplicate timestamps are rejected and leave the window alone")
    func ordering() throws {
        var w = try StreamWindower(spec: spec(window: 2, hop: 1, channels: 1))
        #expect(w.append(timestamp: 1, values: [1]) == .accepted)
        #expect(w.append(timestamp: 1, values: [2]) == .rejected(.duplicateTimestamp))
        #expect(w.append(timestamp: 0.5, values: [3]) == .rejected(.outOfOrder))
        #expect(w.append(timestamp: 2, values: [4]) == .windowReady)
        #expect(w.withCurrentWindow { Array($0.values) } == [1, 4])
        #expect(w.append(timestamp: 3, values: [1, 2]) == .rejected(.wrongChannelCount))
        #expect(w.acceptedSamples == 2)
    }

    @Test("samples are standardized with the spec's mean and std")
    func normalization() throws {
        var w = try StreamWindower(spec: spec(window: 2, hop: 2, channels: 2, mean: [10, -1], std: [2, 0.5]))
        _ = w.append(timestamp: 0, values: [12, 0])
        #expect(w.append(timestamp: 1, values: [8, -2]) == .windowReady)
        var out = [Float](repeating: 0, count: 4)
        let span = out.withUnsafeMutableBufferPointer { w.copyCurrentWindow(into: $0) }
        #expect(span?.start == 0 && span?.end == 1)
        for (a, b) in zip(out, [1, 2, -1, -2] as [Float]) { #expect(abs(a - b) < 1e-6) }
    }

    @Test("the observed step follows a stream that speeds up: a gap is measured against the new rate")
    func gapAfterRateChange() throws {
        var w = try StreamWindower(spec: spec(window: 8, hop: 8, channels: 1))
        var t = 0.0
        for _ in 0..<40 {
            t += 0.1
            _ = w.append(timestamp: t, values: [1])
        }
        for _ in 0..<20 {
            t += 0.01
            _ = w.append(timestamp: t, values: [1])
        }
        #expect(w.gapResets == 0, "a rate change is not a gap")
        #expect(w.observedMedianStep().map { abs($0 - 0.01) < 1e-9 } == true)
        t += 0.05
        _ = w.append(timestamp: t, values: [1])
        #expect(w.gapResets == 1, "0.05 s is 5 steps at the new rate, though half a step at the old one")
    }

    @Test("copyCurrentWindow gives the window in order at every position of the ring")
    func copyAtEveryRingPosition() throws {
        var w = try StreamWindower(spec: spec(window: 5, hop: 1, channels: 3))
        var out = [Float](repeating: .nan, count: 15)
        for i in 0..<23 {
            let outcome = w.append(timestamp: Double(i), values: [Float(i), Float(i) + 0.25, Float(i) + 0.5])
            guard outcome == .windowReady else { continue }
            let span = out.withUnsafeMutableBufferPointer { w.copyCurrentWindow(into: $0) }
            #expect(span?.start == Double(i - 4) && span?.end == Double(i))
            let expected = (i - 4...i).flatMap { [Float($0), Float($0) + 0.25, Float($0) + 0.5] }
            #expect(out == expected, "window ending at sample \(i)")
        }
    }

    @Test("values are kept as binary16: rounded as the payload rounds them, clipped at ±65504")
    func binary16Storage() throws {
        var w = try StreamWindower(spec: spec(window: 2, hop: 2, channels: 3))
        #expect(w.append(timestamp: 0, values: [0.1, 1e6, -1e9]) == .accepted)
        #expect(w.append(timestamp: 1, values: [1, 2049, 3.3]) == .windowReady)
        let values = w.withCurrentWindow { Array($0.values) }
        let expected: [Float] = [
            Float16Bits.decode(Float16Bits.encode(0.1)), 65504, -65504,
            1, 2048, Float16Bits.decode(Float16Bits.encode(3.3)),
        ]
        #expect(values == expected, "2049 has no binary16: ties to even give 2048")
        #expect(values.map { $0.allSatisfy(\.isFinite) } == true)
    }
}
