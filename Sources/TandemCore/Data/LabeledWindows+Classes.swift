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
}
