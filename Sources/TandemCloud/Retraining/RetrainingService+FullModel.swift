import Foundation
import TandemCore
import TandemFleet

/// A fine-tuned full model that the workers answer with since `since`, on trial against the version it replaced
/// (`{data-dir}/full/trial.json`, so a restarted trainer goes on judging it).
struct FullModelTrial: Codable, Sendable, Equatable {
    /// The promoted version.
    var version: String
    /// The version it replaced, production again if the trial fails.
    var previous: String
    /// When it was promoted, seconds since 1970: labelled escalations received after it judge it.
    var since: Double
}

/// How a full model's trial compares the two versions on the labelled escalations since its promotion.
public struct FullModelComparison: Sendable, Equatable {
    /// Labelled escalations scored, pooled over the devices they came from (see ``init(devices:labels:promoted:previous:)``).
    public var windows: Int
    /// The promoted version's accuracy on them.
    public var accuracy: Double
    /// The replaced version's accuracy on the same windows.
    public var previousAccuracy: Double

    /// Creates a comparison.
    public init(windows: Int, accuracy: Double, previousAccuracy: Double) {
        self.windows = windows
        self.accuracy = accuracy
        self.previousAccuracy = previousAccuracy
    }

    /// How many windows of these devices (one entry per window) a comparison rests on once pooled.
    public static func pooledWindows(devices: [String]) -> Int {
        var counts = [String: Int]()
        for device in devices { counts[device, default: 0] += 1 }
        return AccuracyComparison.Tally.pooled(counts.values.map { .init(correct: 0, labelled: $0) }).labelled
    }

    /// The comparison of two models' predictions of the same labelled windows, pooled over the devices the windows
    /// came from as a canary's label accuracy is (``AccuracyComparison/Tally/pooled(_:)``): a device counts at most
    /// as many windows as the lower-median device, so one device labelling its own escalations by the hundred —
    /// with labels picked to favour either model — weighs no more than that device (it decides alone only when it is
    /// the only one with labels). Nil without any window.
    ///
    /// - Parameters: the device, label and both predictions of each window, in the same order.
    public init?(devices: [String], labels: [Int], promoted: [Int], previous: [Int]) {
        var tallies = [String: (promoted: AccuracyComparison.Tally, previous: AccuracyComparison.Tally)]()
        for (i, device) in devices.enumerated() where i < labels.count && i < promoted.count && i < previous.count {
            var tally = tallies[device] ?? (.init(correct: 0, labelled: 0), .init(correct: 0, labelled: 0))
            tally.promoted.labelled += 1
            tally.previous.labelled += 1
            if promoted[i] == labels[i] { tally.promoted.correct += 1 }
            if previous[i] == labels[i] { tally.previous.correct += 1 }
            tallies[device] = tally
        }
        let ordered = tallies.keys.sorted().compactMap { tallies[$0] }
        let promotedTally = AccuracyComparison.Tally.pooled(ordered.map(\.promoted))
        let previousTally = AccuracyComparison.Tally.pooled(ordered.map(\.previous))
        guard promotedTally.labelled > 0 else { return nil }
        self.init(
            windows: promotedTally.labelled,
            accuracy: Double(promotedTally.correct) / Double(promotedTally.labelled),
            previousAccuracy: Double(previousTally.correct) / Double(previousTally.labelled))
    }
}

extension RetrainingService {
    /// The full model a round fine-tunes and compares with: the full-model registry's production version, else the
    /// worker's configured model.
    func currentFullModel() throws -> ModelArtifact {
        guard let version = try fullModels.productionVersion() else { return full }
        return try fullModels.artifact(version: version)
    }

    var trialURL: URL { fullModels.directory.appendingPathComponent("trial.json") }

    func readTrial() -> FullModelTrial? {
        guard let data = try? Data(contentsOf: trialURL) else { return nil }
        return try? JSONDecoder().decode(FullModelTrial.self, from: data)
    }

    func writeTrial(_ trial: FullModelTrial?) throws {
        guard let trial else {
            try? FileManager.default.removeItem(at: trialURL)
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(trial)) + [0x0A], to: trialURL)
    }

    /// Registers the round's fine-tuned full model (checked and signed like every version) in the full-model registry
    /// and makes it production there, so every worker of this data directory swaps to it between two batches; its
    /// trial starts now. The version it replaces is registered first if it is not yet (the worker's configured
    /// model), so a rollback has something to return to.
    ///
    /// - Parameters:
    ///   - candidate: The fine-tuned full model (unsigned).
    ///   - current: The full model it was fine-tuned from.
    ///   - gate: The gate's report (its full-model numbers become the record's metrics).
    func promoteFullModel(
        _ candidate: ModelArtifact, replacing current: ModelArtifact, gate: RetrainingRound.GateReport, round: Double
    ) throws {
        let previous = current.manifest.version
        if (try? fullModels.record(version: previous)) == nil {
            try register(current, in: fullModels, lineage: ModelLineage(source: "initial", parentVersion: nil))
        }
        var metrics = [
            "gate.candidate_full_accuracy": gate.candidateFullAccuracy,
            "gate.current_full_accuracy": gate.currentFullAccuracy,
        ]
        if let recent = gate.candidateFullRecentAccuracy { metrics["gate.candidate_full_recent_accuracy"] = recent }
        if let recent = gate.currentFullRecentAccuracy { metrics["gate.current_full_recent_accuracy"] = recent }
        try register(
            candidate, in: fullModels,
            lineage: ModelLineage(source: "retrain", parentVersion: previous, metrics: metrics))
        let version = candidate.manifest.version
        try fullModels.setProduction(version)
        try writeTrial(FullModelTrial(version: version, previous: previous, since: Date().timeIntervalSince1970))
        try audit.append(
            AuditRecord(
                actor: configuration.actor, action: "promote-full", version: version,
                reason: "replaces \(previous): \(gate.fullSummary)"))
        log(
            "trainer: full model: \(version) signed, registered and promoted (was \(previous)); the workers answer with it from their next batch",
            round: round)
    }

    private func register(_ artifact: ModelArtifact, in registry: ModelRegistry, lineage: ModelLineage) throws {
        let incoming = registry.directory.appendingPathComponent(
            ".incoming-\(artifact.manifest.version).\(ModelArtifact.fileExtension)")
        try artifact.write(to: incoming)
        defer { try? FileManager.default.removeItem(at: incoming) }
        try registry.register(artifactAt: incoming, signingKey: signingKey, lineage: lineage)
    }

    /// Judges the full model on trial, if there is one: once ``Configuration/fullMinimumLabelledWindows`` labelled
    /// escalations arrived since its promotion (pooled over their devices: ``FullModelComparison``), it and the
    /// version it replaced classify the same windows; if its accuracy is more than the rollout policy's
    /// ``RolloutPolicy/maximumAccuracyDrop`` below the previous version's, the previous version is production again
    /// (the workers swap back), else it stays. Either way the trial ends.
    ///
    /// - Returns: The comparison, once there were enough labelled escalations.
    @discardableResult
    func judgeFullModel() throws -> FullModelComparison? {
        guard let trial = readTrial() else { return nil }
        guard try fullModels.productionVersion() == trial.version else {
            // Someone else moved production (an operator, another trainer): not this trial's to judge any more.
            try writeTrial(nil)
            return nil
        }
        // A count first (it includes labels of older escalations, so it never says too few): the windows are
        // read only once there can be enough of them.
        let minimum = max(1, configuration.fullMinimumLabelledWindows)
        guard try store.labelCount(recordedAfter: trial.since) >= minimum else { return nil }
        let (examples, _) = try store.trainingExamples(receivedAfter: trial.since, limit: nil)
        let labelled = examples.filter { $0.source == .groundTruth }
        guard labelled.count >= minimum else { return nil }
        let promoted = try FloatModel(artifact: fullModels.artifact(version: trial.version))
        let previousArtifact = try fullModels.artifact(version: trial.previous)
        let previous = try FloatModel(artifact: previousArtifact)
        let input = previousArtifact.manifest.input
        let size = input.window * input.channels
        var scalars = [Float]()
        var labels = [Int]()
        var devices = [String]()
        scalars.reserveCapacity(labelled.count * size)
        for example in labelled where example.window.count == size && example.label < promoted.classes {
            var window = example.window
            RetrainingRound.restandardize(&window, from: catalog?.spec(for: example.edgeModel), to: input)
            scalars += window
            labels.append(example.label)
            devices.append(example.device)
        }
        // Counted before either model runs: a device labelling its own escalations by the thousand must not make
        // every check classify them all again while the pooled windows are still too few.
        let pooled = FullModelComparison.pooledWindows(devices: devices)
        let sources = "\(labels.count) labelled escalations from \(Set(devices).count) device(s)"
        guard pooled >= minimum else {
            let first = trialWaitLogged.withLock { logged in
                defer { logged = trial.version }
                return logged != trial.version
            }
            if first {
                log(
                    "trainer: full model: \(trial.version) stays on trial: \(sources) count as \(pooled) once pooled (no device more than the median one), fewer than the \(minimum) needed; it is judged when labels come from more devices"
                )
            }
            return nil
        }
        let windows = Tensor(shape: [labels.count, input.window, input.channels], scalars: scalars)
        guard
            let comparison = FullModelComparison(
                devices: devices, labels: labels, promoted: try promoted.logits(for: windows).argmaxRows(),
                previous: try previous.logits(for: windows).argmaxRows())
        else { return nil }
        let numbers =
            "\(RetrainingRound.GateReport.percent(comparison.accuracy)) vs \(RetrainingRound.GateReport.percent(comparison.previousAccuracy)) for \(trial.previous) on \(comparison.windows) pooled windows (\(sources)) since its promotion"
        if comparison.accuracy < comparison.previousAccuracy - configuration.policy.maximumAccuracyDrop {
            try fullModels.setProduction(trial.previous)
            try writeTrial(nil)
            try audit.append(
                AuditRecord(
                    actor: configuration.actor, action: "rollback-full", version: trial.version,
                    reason: "label accuracy \(numbers); back to \(trial.previous)"))
            log(
                "trainer: full model: \(trial.version) rolled back to \(trial.previous): label accuracy \(numbers), more than \(configuration.policy.maximumAccuracyDrop) below",
                .warning)
        } else {
            try writeTrial(nil)
            log("trainer: full model: \(trial.version) kept: label accuracy \(numbers)")
        }
        return comparison
    }
}
