extension LabeledWindows {
    /// The same windows with labels re-indexed into `classNames`.
    ///
    /// - Precondition: `classNames` contains every one of this set's class names.
    public func relabeled(to classNames: [String]) -> LabeledWindows {
        let index = Dictionary(classNames.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
        let remap = self.classNames.map { name -> Int in
            guard let i = index[name] else { preconditionFailure("class '\(name)' is not in \(classNames)") }
            return i
        }
        return LabeledWindows(windows: windows, labels: labels.map { remap[$0] }, classNames: classNames)
    }

    /// How many windows each class has, indexed like ``classNames``.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for label in labels { counts[label] += 1 }
        return counts
    }

    /// Gives a train and a test set the same class list: the train set's classes in their order,
    /// then any the test set adds. Labels of both are re-indexed into that list.
    public static func unifyingClasses(train: LabeledWindows, test: LabeledWindows) -> (
        train: LabeledWindows, test: LabeledWindows
    ) {
        var names = train.classNames
        for name in test.classNames where !names.contains(name) { names.append(name) }
        return (train.relabeled(to: names), test.relabeled(to: names))
    }

    /// The windows lengthened to `length` by repeating each window's last sample, as
    /// ``TSArchive/LengthPolicy/padTo(_:)`` pads.
    ///
    /// - Precondition: `length` is at least ``length``.
    func paddedRepeatingLastSample(to length: Int) -> LabeledWindows {
        precondition(length >= self.length, "cannot pad \(self.length) samples down to \(length)")
        guard length != self.length else { return self }
        let (count, old, channels) = (self.count, self.length, self.channels)
        var scalars = [Float](repeating: 0, count: count * length * channels)
        windows.scalars.withUnsafeBufferPointer { source in
            scalars.withUnsafeMutableBufferPointer { target in
                for i in 0..<count {
                    for t in 0..<length {
                        let from = (i * old + min(t, old - 1)) * channels
                        let to = (i * length + t) * channels
                        for c in 0..<channels { target[to + c] = source[from + c] }
                    }
                }
            }
        }
        return LabeledWindows(
            windows: Tensor(shape: [count, length, channels], scalars: scalars), labels: labels, classNames: classNames)
    }
}

extension LabeledWindows {
    /// The windows whose class is not in `excluded`, with those classes removed from the class list (the
    /// remaining classes keep their order; labels are re-indexed). Names not in the set are ignored.
    public func excluding(classes excluded: Set<String>) -> LabeledWindows {
        guard classNames.contains(where: excluded.contains) else { return self }
        let kept = classNames.filter { !excluded.contains($0) }
        let index = Dictionary(kept.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
        let indices = labels.indices.filter { index[classNames[labels[$0]]] != nil }
        return LabeledWindows(
            windows: windows.gathering(indices), labels: indices.map { index[classNames[labels[$0]]] ?? 0 },
            classNames: kept)
    }
}
