/// Cuts windows out of contiguous runs of an interleaved `[time, channels]` buffer.
enum WindowCutter {
    /// Cuts every run separately, so no window spans a gap between runs.
    ///
    /// - Returns: Windows as `[count, window, channels]` and one label per window.
    static func cut(
        samples: UnsafeBufferPointer<Float>, channels: Int, runs: [Range<Int>], labels: [Int], classCount: Int,
        window: Int, hop: Int, labelRule: WindowLabelRule
    ) -> (windows: Tensor, labels: [Int]) {
        precondition(window > 0 && hop > 0, "window and hop must be positive")
        var windowCount = 0
        for run in runs where run.count >= window { windowCount += (run.count - window) / hop + 1 }
        let rowSize = window * channels
        var scalars = [Float](repeating: 0, count: windowCount * rowSize)
        var windowLabels = [Int]()
        windowLabels.reserveCapacity(windowCount)
        var votes = [Int](repeating: 0, count: max(classCount, 1))
        scalars.withUnsafeMutableBufferPointer { target in
            guard let targetBase = target.baseAddress, let sourceBase = samples.baseAddress else { return }
            var row = 0
            for run in runs where run.count >= window {
                var start = run.lowerBound
                while start + window <= run.upperBound {
                    (targetBase + row * rowSize).update(from: sourceBase + start * channels, count: rowSize)
                    windowLabels.append(
                        label(of: start..<(start + window), labels: labels, rule: labelRule, votes: &votes))
                    row += 1
                    start += hop
                }
            }
        }
        return (Tensor(shape: [windowCount, window, channels], scalars: scalars), windowLabels)
    }

    private static func label(of range: Range<Int>, labels: [Int], rule: WindowLabelRule, votes: inout [Int]) -> Int {
        switch rule {
        case .lastSample:
            return labels[range.upperBound - 1]
        case .majority:
            for i in votes.indices { votes[i] = 0 }
            var best = 0
            for i in range { votes[labels[i]] += 1; best = max(best, votes[labels[i]]) }
            for i in range.reversed() where votes[labels[i]] == best { return labels[i] }
            return labels[range.upperBound - 1]
        }
    }
}
