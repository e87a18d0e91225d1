import TandemCore

/// Accuracy, macro-F1, per-class recall and the confusion matrix of a set of predictions.
public struct ClassificationReport: Codable, Sendable, Equatable {
    /// Class names, in label order.
    public var classNames: [String]
    /// `confusion[truth][predicted]` window counts.
    public var confusion: [[Int]]

    /// Tallies predictions against true labels.
    public init(labels: [Int], predictions: [Int], classNames: [String]) {
        self.classNames = classNames
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classNames.count), count: classNames.count)
        for (truth, predicted) in zip(labels, predictions) { confusion[truth][predicted] += 1 }
        self.confusion = confusion
    }

    /// Number of windows.
    public var count: Int { confusion.reduce(0) { $0 + $1.reduce(0, +) } }

    /// Fraction of windows predicted correctly.
    public var accuracy: Double {
        let correct = confusion.indices.reduce(0) { $0 + confusion[$1][$1] }
        return count == 0 ? 0 : Double(correct) / Double(count)
    }

    /// Recall of each class (`nil`-free: a class with no windows has recall 0).
    public var recall: [Double] {
        confusion.indices.map { c in
            let total = confusion[c].reduce(0, +)
            return total == 0 ? 0 : Double(confusion[c][c]) / Double(total)
        }
    }

    /// Precision of each class.
    public var precision: [Double] {
        confusion.indices.map { c in
            let predicted = confusion.reduce(0) { $0 + $1[c] }
            return predicted == 0 ? 0 : Double(confusion[c][c]) / Double(predicted)
        }
    }

    /// Unweighted mean of the per-class F1 scores, over classes present in the labels.
    public var macroF1: Double {
        let p = precision, r = recall
        let present = confusion.indices.filter { confusion[$0].reduce(0, +) > 0 }
        guard !present.isEmpty else { return 0 }
        let sum = present.reduce(0.0) { total, c in
            p[c] + r[c] == 0 ? total : total + 2 * p[c] * r[c] / (p[c] + r[c])
        }
        return sum / Double(present.count)
    }
}

extension Tensor {
    /// The index of the largest value in each row of a `[rows, width]` tensor.
    public func argmaxRows() -> [Int] {
        let width = shape[1]
        return (0..<shape[0]).map { r in
            var best = 0
            for j in 1..<width where scalars[r * width + j] > scalars[r * width + best] { best = j }
            return best
        }
    }
}
