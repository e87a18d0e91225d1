import Foundation
import TandemCore

/// Drives ``Rollout``s for one fleet: keeps the current one in `rollout.json` in the data directory,
/// feeds it the fleet's statuses, carries out its actions (the canary's start, each step of a phased rollout,
/// promotion or roll-back) through the ``ModelDistributor`` (which signs each
/// assignment; a roll-back's carry the rollback flag, so devices take the older version) and the
/// ``ModelRegistry``, and records every action in the ``AuditLog``.
///
/// One rollout per data directory and fleet at a time. A transition's actions are carried out first and
/// the state file is replaced atomically after them: if publishing fails or the process dies in between,
/// the saved state is the one before, the next step decides the same again, and the retained messages it
/// publishes once more are idempotent. The file is re-read before every step, so an operator's
/// `tandem rollout promote|rollback` from another process is seen by a running `tandem rollout start`
/// at its next step.
public actor RolloutController {
    /// The registry the versions come from.
    public nonisolated let registry: ModelRegistry
    /// Publishes artifacts and assignments.
    public nonisolated let distributor: ModelDistributor
    /// The fleet's statuses.
    public nonisolated let monitor: FleetMonitor
    /// Where actions are recorded.
    public nonisolated let audit: AuditLog
    /// Who operator actions are attributed to.
    public nonisolated let actor: String
    let log: @Sendable (String) -> Void
    /// One state-changing operation at a time (an actor lets calls interleave at every await).
    let exclusive = ExclusiveAccess()
    /// What every device should run, and when each was last assigned it.
    var desired: DesiredState
    /// Versions whose artifact this controller published: the desired state publishes each once, not at every
    /// device it assigns (every device of the fleet receives a retained artifact again when it is republished).
    var publishedArtifacts: Set<String> = []

    /// The fleet's pinned devices: `{data}/pins-{fleet}.json`.
    public nonisolated var pins: DevicePins { DevicePins(directory: registry.directory, fleet: distributor.fleet) }

    /// The state file: `{data}/rollout-{fleet}.json`.
    public nonisolated var stateURL: URL {
        registry.directory.appendingPathComponent("rollout-\(distributor.fleet).json")
    }

    /// Creates a controller.
    ///
    /// - Parameters:
    ///   - registry: The model registry (its directory holds the state file and the audit log).
    ///   - distributor: Publishes for the fleet.
    ///   - monitor: The same fleet's statuses.
    ///   - audit: The audit log.
    ///   - actor: The operator's name, for the audit log.
    ///   - reassignmentIntervalSeconds: The shortest time between two desired-state assignments of the same
    ///     version to a device whose status has not moved to it (``DesiredState/minimumIntervalSeconds``).
    ///   - log: Progress lines.
    public init(
        registry: ModelRegistry, distributor: ModelDistributor, monitor: FleetMonitor, audit: AuditLog,
        actor: String, reassignmentIntervalSeconds: Double = 30, log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        desired = DesiredState(minimumIntervalSeconds: reassignmentIntervalSeconds)
        self.registry = registry
        self.distributor = distributor
        self.monitor = monitor
        self.audit = audit
        self.actor = actor
        self.log = log
    }

    /// The fleet's rollout as last saved, if any.
    ///
    /// - Throws: ``RegistryError`` (`io`) if the state file exists but cannot be read.
    public func current() throws(RegistryError) -> Rollout? {
        let url = stateURL
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try Rollout.read(from: url)
    }

    /// Plans and starts a rollout of `version` against the production version: the cohort, chosen among the
    /// devices whose status is on the broker now, is assigned the candidate.
    ///
    /// - Throws: ``RegistryError``: `rolloutState` if a rollout is in canary, there is no production version
    ///   or no device falls in the cohort; `unknownVersion`; `publishFailed`; `io`.
    public func start(version: String, policy: RolloutPolicy, now: Date = Date()) async throws(RegistryError)
        -> Rollout
    {
        try await exclusive.run { () async throws(RegistryError) -> Rollout in
            if let running = try current(), running.phase == .canary {
                throw RegistryError(
                    .rolloutState, "the rollout of \(running.version) is still in canary; promote or roll it back first"
                )
            }
            guard let production = try registry.productionVersion() else {
                throw RegistryError(
                    .rolloutState,
                    "no production version to roll out against; publish one with `tandem publish --production`")
            }
            _ = try registry.record(version: version)
            await monitor.settle()
            let pinned = try pins.read()
            var rollout = try Rollout.plan(
                fleet: distributor.fleet, version: version, previousVersion: production,
                devices: monitor.statuses.keys.filter { pinned[$0] == nil }, policy: policy, now: now)
            let actions = try rollout.start(now: now)
            try await perform(actions)
            try save(rollout)
            return rollout
        }
    }

    /// Feeds the current statuses (and `accuracy`, if known) to the rollout and carries out what it decides.
    ///
    /// - Returns: The rollout after the step, or nil if there is none.
    /// - Throws: ``RegistryError`` if carrying out an action fails; the state is then left as it was, so
    ///   the next step decides (and tries) the same again.
    @discardableResult
    public func step(accuracy: AccuracyComparison? = nil, now: Date = Date()) async throws(RegistryError) -> Rollout? {
        try await exclusive.run { () async throws(RegistryError) -> Rollout? in
            guard var rollout = try current() else { return nil }
            let actions = rollout.observe(monitor.statuses, accuracy: accuracy, now: now)
            try await perform(actions)
            try save(rollout)
            return rollout
        }
    }

    /// Steps every `interval` until the rollout is promoted or rolled back (by itself or an operator).
    ///
    /// - Returns: The finished rollout, or nil if there is none.
    public func run(interval: Duration, accuracy: (@Sendable () -> AccuracyComparison?)? = nil)
        async throws(RegistryError) -> Rollout?
    {
        while true {
            guard let rollout = try await step(accuracy: accuracy?()) else { return nil }
            if rollout.isFinished { return rollout }
            if let waiting = rollout.lastObservation?.waitingFor { log("rollout of \(rollout.version): \(waiting)") }
            do {
                try await Task.sleep(for: interval)
            } catch {
                return rollout
            }
        }
    }

    /// Promotes the rollout in canary now.
    ///
    /// - Throws: ``RegistryError`` (`rolloutState`) if there is no rollout in canary, or as ``step(accuracy:now:)``.
    public func promote(reason: String, now: Date = Date()) async throws(RegistryError) -> Rollout {
        try await exclusive.run { () async throws(RegistryError) -> Rollout in
            var rollout = try requireCurrent()
            let pinned = try pins.read()
            let actions = try rollout.promote(
                reason: reason, devices: monitor.statuses.keys.filter { pinned[$0] == nil }, now: now)
            try await perform(actions)
            try save(rollout)
            return rollout
        }
    }

    /// Rolls the rollout in canary back now.
    ///
    /// - Throws: ``RegistryError`` (`rolloutState`) if there is no rollout in canary, or as ``step(accuracy:now:)``.
    public func rollBack(reason: String, now: Date = Date()) async throws(RegistryError) -> Rollout {
        try await exclusive.run { () async throws(RegistryError) -> Rollout in
            var rollout = try requireCurrent()
            let actions = try rollout.rollBack(reason: reason, now: now)
            try await perform(actions)
            try save(rollout)
            return rollout
        }
    }

    private func requireCurrent() throws(RegistryError) -> Rollout {
        guard let rollout = try current() else {
            throw RegistryError(.rolloutState, "fleet \(distributor.fleet) has no rollout")
        }
        return rollout
    }

    /// Publishes the version's artifact (again: a retained message may have been cleared), assigns it to the
    /// action's devices that are not pinned, makes a promoted version production, and records the action.
    private func perform(_ actions: [RolloutAction]) async throws(RegistryError) {
        let pinned = actions.isEmpty ? [:] : try pins.read()
        for action in actions {
            let devices = action.devices.filter { pinned[$0] == nil }
            // A step whose percentage adds no device (a small fleet) is recorded, but re-publishing the artifact
            // for nobody would only make every device receive it again.
            if action.kind != .step || !devices.isEmpty {
                let bytes = try registry.artifactBytes(version: action.version)
                let assignment = try await distributor.publishArtifact(bytes, version: action.version)
                publishedArtifacts.insert(action.version)
                try await distributor.assign(assignment, to: devices, rollback: action.kind == .rollBack)
                desired.noteSent(action.version, to: devices, at: Date())
            }
            if action.kind == .promote { try registry.setProduction(action.version) }
            try audit.append(
                AuditRecord(
                    actor: action.automatic ? "rollout" : actor, action: action.kind.rawValue,
                    version: action.version, devices: devices, reason: action.reason))
            log("\(action.kind.rawValue) \(action.version) → \(devices.count) devices: \(action.reason)")
        }
    }

    private func save(_ rollout: Rollout) throws(RegistryError) {
        let contents = try rollout.stateFileContents()
        do {
            try AtomicFile.write(contents, to: stateURL)
        } catch {
            throw RegistryError(.io, "\(error)", path: stateURL.path)
        }
    }
}
