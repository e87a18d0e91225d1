import Crypto
import Foundation
import TandemCore
import TandemMQTT
import TandemProtocol

/// Stages a fleet's agent policies as ``RolloutController`` stages models: a ``Rollout`` whose versions are policy
/// versions, judged on the statuses as policies show them (``DeviceStatus/asPolicyStatus``: the policy in force, a
/// refused policy as a rejection), with the same canary cohort, steps, abort criteria and audit log.
///
/// Each action signs the version's settings for each of its devices (``AgentPolicy``, with the fleet's signing key
/// and the next number of the fleet's one order of signed messages) and publishes it retained on the device's
/// `policy` topic; a roll-back signs the previous version again with a newer number. The policies are kept in
/// ``PolicyBook`` (`policies-{fleet}.json`), the rollout in `policy-rollout-{fleet}.json`; both are re-read
/// before every step, so `tandem policy rollback` from another process is seen at the next one. Unlike a model
/// rollout, a transition is saved before its policies are signed: the desired-state pass (``reconcile(now:)``) signs
/// every device what the saved state says, so it never undoes a transition in progress and makes good a publish that
/// failed.
public actor PolicyController {
    /// The data directory (the registry's).
    public nonisolated let directory: URL
    /// The fleet.
    public nonisolated let fleet: String
    /// Publishes the policies.
    public nonisolated let client: MQTTClient
    /// The fleet's statuses.
    public nonisolated let monitor: FleetMonitor
    /// Where actions are recorded.
    public nonisolated let audit: AuditLog
    /// Who operator actions are attributed to.
    public nonisolated let actor: String
    let key: Curve25519.Signing.PrivateKey?
    let validitySeconds: UInt64
    let log: @Sendable (String) -> Void
    /// One state-changing operation at a time (an actor lets calls interleave at every await).
    let exclusive = ExclusiveAccess()
    /// What every device should run and when it was last sent it (new devices get the production policy).
    var desired = DesiredState(minimumIntervalSeconds: 30)

    /// The rollout state file: `{data}/policy-rollout-{fleet}.json`.
    public nonisolated var stateURL: URL { directory.appendingPathComponent("policy-rollout-\(fleet).json") }

    /// Creates a controller.
    ///
    /// - Parameters:
    ///   - directory: The data directory.
    ///   - fleet: The fleet.
    ///   - client: A connected client allowed to publish on the fleet's device `policy` topics.
    ///   - monitor: The fleet's statuses.
    ///   - key: The fleet's signing key (nil: a controller that reads but cannot publish).
    ///   - audit: The audit log.
    ///   - actor: The operator's name.
    ///   - validitySeconds: How long a signed policy stays valid (30 days by default).
    ///   - log: Progress lines.
    public init(
        directory: URL, fleet: String, client: MQTTClient, monitor: FleetMonitor,
        key: Curve25519.Signing.PrivateKey?, audit: AuditLog, actor: String,
        validitySeconds: UInt64 = AssignmentSigner.defaultValiditySeconds,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.directory = directory
        self.fleet = fleet
        self.client = client
        self.monitor = monitor
        self.key = key
        self.audit = audit
        self.actor = actor
        self.validitySeconds = max(60, validitySeconds)
        self.log = log
    }

    /// The fleet's policies.
    ///
    /// - Throws: ``RegistryError`` (`io`).
    public nonisolated func book() throws(RegistryError) -> PolicyBook {
        try PolicyBook.read(in: directory, fleet: fleet)
    }

    /// The fleet's policy rollout as last saved, if any.
    ///
    /// - Throws: ``RegistryError`` (`io`).
    public nonisolated func current() throws(RegistryError) -> Rollout? {
        guard FileManager.default.fileExists(atPath: stateURL.path) else { return nil }
        return try Rollout.read(from: stateURL)
    }

    /// The statuses as a policy rollout reads them.
    nonisolated var policyStatuses: [String: DeviceStatus] { monitor.statuses.mapValues(\.asPolicyStatus) }

    /// Adds `version` with `settings` to the book and starts its staged rollout against the production policy:
    /// the cohort is signed it now.
    ///
    /// - Throws: ``RegistryError``: as ``PolicyBook/add(_:_:)``; `rolloutState` while another policy rollout runs or
    ///   if no known device falls in the cohort; `signing`, `io`, `publishFailed` as publishing fails.
    public func start(version: String, settings: AgentPolicy.Settings, policy: RolloutPolicy, now: Date = Date())
        async throws(RegistryError) -> Rollout
    {
        try await exclusive.run { () async throws(RegistryError) -> Rollout in
            if let running = try current(), !running.isFinished {
                throw RegistryError(
                    .rolloutState,
                    "fleet \(fleet) is rolling out policy \(running.version); promote or roll it back first")
            }
            var book = try book()
            try book.add(version, settings)
            var rollout = try Rollout.plan(
                fleet: fleet, version: version, previousVersion: book.production,
                devices: Array(monitor.statuses.keys), policy: policy, now: now)
            let actions = try rollout.start(now: now)
            try book.write(in: directory)
            try await perform(actions, saving: rollout)
            return rollout
        }
    }

    /// Feeds the statuses (as policies show them) to the rollout and carries out what it decides.
    ///
    /// - Returns: The rollout after the step, or nil if there is none.
    @discardableResult
    public func step(now: Date = Date()) async throws(RegistryError) -> Rollout? {
        try await exclusive.run { () async throws(RegistryError) -> Rollout? in
            guard var rollout = try current() else { return nil }
            let actions = rollout.observe(policyStatuses, now: now)
            try await perform(actions, saving: rollout)
            return rollout
        }
    }

    /// Steps every `interval` until the rollout ends; returns it (nil if there is none).
    public func run(interval: Duration) async throws(RegistryError) -> Rollout? {
        while true {
            guard let rollout = try await step() else { return nil }
            if rollout.isFinished { return rollout }
            do {
                try await Task.sleep(for: interval)
            } catch {
                return rollout
            }
        }
    }

    /// Promotes the running policy rollout now.
    ///
    /// - Throws: ``RegistryError`` (`rolloutState`) if none is in canary.
    public func promote(reason: String, now: Date = Date()) async throws(RegistryError) -> Rollout {
        try await exclusive.run { () async throws(RegistryError) -> Rollout in
            var rollout = try requireCurrent()
            let actions = try rollout.promote(reason: reason, devices: monitor.statuses.keys, now: now)
            try await perform(actions, saving: rollout)
            return rollout
        }
    }

    /// Rolls the running policy rollout back now.
    ///
    /// - Throws: ``RegistryError`` (`rolloutState`) if none is in canary.
    public func rollBack(reason: String, now: Date = Date()) async throws(RegistryError) -> Rollout {
        try await exclusive.run { () async throws(RegistryError) -> Rollout in
            var rollout = try requireCurrent()
            let actions = try rollout.rollBack(reason: reason, now: now)
            try await perform(actions, saving: rollout)
            return rollout
        }
    }

    /// Signs the policy every online device should have (the canary's for the cohort while a rollout runs, else
    /// production) for those whose status shows another, each at most once per back-off interval.
    ///
    /// - Returns: The devices signed each version.
    @discardableResult
    public func reconcile(now: Date = Date()) async throws(RegistryError) -> [String: [String]] {
        try await exclusive.run { () async throws(RegistryError) -> [String: [String]] in
            let book = try book()
            desired.production = book.production
            desired.rollout = try current()
            let due = desired.due(policyStatuses, now: now)
            for (version, devices) in due.sorted(by: { $0.key < $1.key }) {
                try await publish(version, to: devices, book: book)
                try audit.append(
                    AuditRecord(
                        actor: "desired-state", action: "policy-desired-state", version: version, devices: devices,
                        reason: "the device's status shows another policy"))
            }
            return due
        }
    }

    private func requireCurrent() throws(RegistryError) -> Rollout {
        guard let rollout = try current() else {
            throw RegistryError(.rolloutState, "fleet \(fleet) has no policy rollout")
        }
        return rollout
    }

    /// Signs and publishes each action's version to its devices, makes a promoted version production, and records it.
    private func perform(_ actions: [RolloutAction], saving rollout: Rollout) async throws(RegistryError) {
        // What the fleet should run is saved before anything is signed, so a desired-state pass running meanwhile
        // (the trainer's, or another process's) signs the same policy rather than the one being replaced; a publish
        // that fails is made good by the next pass.
        var book = try book()
        if let promoted = actions.last(where: { $0.kind == .promote }) {
            book.production = promoted.version
            try book.write(in: directory)
        }
        try save(rollout)
        for action in actions {
            try await publish(action.version, to: action.devices, book: book)
            let kind = action.kind.rawValue.replacingOccurrences(of: "rollout-", with: "policy-")
            try audit.append(
                AuditRecord(
                    actor: action.automatic ? "rollout" : actor, action: kind, version: action.version,
                    devices: action.devices, reason: action.reason))
            log("\(kind) \(action.version) → \(action.devices.count) devices: \(action.reason)")
        }
    }

    /// Signs `version`'s settings for each of `devices` (one sequence for all) and publishes each retained.
    private func publish(_ version: String, to devices: [String], book: PolicyBook) async throws(RegistryError) {
        guard !devices.isEmpty else { return }
        guard let key else {
            throw RegistryError(.signing, "publishing policy \(version) needs the fleet's signing key")
        }
        let settings = try book.settings(of: version)
        let state = FleetSigningState(directory: directory, fleet: fleet)
        let keyID = ArtifactSignature.keyIDHex(for: key.publicKey)
        if let revoked = try state.revocationList(), revoked.revokedKeyIDs.contains(keyID) {
            throw RegistryError(.signing, "signing key \(keyID) is revoked for fleet \(fleet); devices refuse it")
        }
        let sequence = try state.nextSequence()
        let expiresAt = UInt64(max(0, Date().timeIntervalSince1970)) + validitySeconds
        for device in devices {
            var policy = AgentPolicy(
                version: version, settings: settings, fleet: fleet, device: device, sequence: sequence,
                expiresAt: expiresAt)
            do {
                let signature = try ArtifactSignature(signing: policy.signedBytes, with: key)
                policy.signature = MessageSignature(keyID: signature.keyID, signature: signature.signature)
            } catch {
                throw RegistryError(.signing, "cannot sign policy \(version) for \(device): \(error)")
            }
            let topic = DeviceTopics(fleet: fleet, device: device).policy
            let result: MQTTPublishResult
            do {
                result = try await client.publish(
                    MQTTMessage(topic: topic, payload: policy.encoded(), qos: .atLeastOnce, retain: true))
            } catch {
                throw RegistryError(.publishFailed, "publishing to \(topic): \(error)")
            }
            guard result.isAccepted else {
                throw RegistryError(
                    .publishFailed, "the broker refused the publish to \(topic) (reason code \(result.reasonCode))")
            }
        }
        desired.noteSent(version, to: devices, at: Date())
    }

    private func save(_ rollout: Rollout) throws(RegistryError) {
        do {
            try AtomicFile.write(try rollout.stateFileContents(), to: stateURL)
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError(.io, "\(error)", path: stateURL.path)
        }
    }
}
