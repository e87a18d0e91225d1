import Foundation
import TandemCore
import TandemProtocol

extension RolloutController {
    /// One pass of the desired state: every device whose status shows another version than the one it should
    /// run (``DesiredState``: its pin, the rollout while in canary, else production) is assigned that version,
    /// at most once per ``DesiredState/minimumIntervalSeconds`` per device. Each version's assignments are one
    /// `desired-state` record in the audit log.
    ///
    /// A device on a newer release than its desired version (restored from a backup taken during a rollout
    /// that was rolled back, or unpinned from a newer version) gets a signed rollback, which it needs to go back.
    ///
    /// - Returns: The devices assigned, by version.
    /// - Throws: ``RegistryError`` if the state files cannot be read or a publish fails; the devices of the pass
    ///   count as sent, so they are tried again once the interval has passed.
    @discardableResult
    public func reconcile(now: Date = Date()) async throws(RegistryError) -> [String: [String]] {
        try await exclusive.run { () async throws(RegistryError) -> [String: [String]] in
            desired.production = try registry.productionVersion()
            desired.rollout = try current()
            desired.pins = try pins.read()
            let statuses = monitor.statuses
            let due = desired.due(statuses, now: now)
            for (version, devices) in due.sorted(by: { $0.key < $1.key }) {
                try await assign(version, to: devices, statuses: statuses, reason: "status shows another version")
            }
            return due
        }
    }

    /// Reconciles every `interval` until cancelled; a failed pass is logged and the next one tries again.
    public func maintainDesiredState(interval: Duration) async {
        while !Task.isCancelled {
            do {
                try await reconcile()
            } catch {
                log("desired state: \(error)")
            }
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
        }
    }

    /// Pins `device` to `version` and assigns it now: from then on the device gets and keeps `version`, and
    /// rollouts leave it out.
    ///
    /// - Throws: ``RegistryError``: `badDeviceName` for a device id that cannot be a topic level, `badVersionName`
    ///   or `unknownVersion` for a version that is not registered, `signing` if the version's artifact is signed by
    ///   a key revoked for the fleet (devices would refuse it), `io`, `publishFailed`.
    public func pin(device: String, version: String) async throws(RegistryError) {
        try await exclusive.run { () async throws(RegistryError) -> Void in
            try Self.checkDeviceName(device)
            let record = try registry.record(version: version)
            _ = try registry.artifactBytes(version: version)
            let signing = FleetSigningState(directory: registry.directory, fleet: distributor.fleet)
            if let revoked = try signing.revocationList()?.revokedKeyIDs, revoked.contains(record.keyID) {
                throw RegistryError(
                    .signing,
                    "version \(version) is signed by key \(record.keyID), which is revoked for fleet \(distributor.fleet); "
                        + "devices refuse it")
            }
            try pins.pin(device, to: version)
            try await assign(version, to: [device], statuses: monitor.statuses, reason: "pinned", now: Date())
        }
    }

    /// Removes the pin of `device` and assigns it the version it should run now (production, or the rollout's
    /// while in canary).
    ///
    /// - Returns: The version it was pinned to.
    /// - Throws: ``RegistryError``: `badDeviceName`; `rolloutState` if the device is not pinned; `io`,
    ///   `publishFailed`.
    @discardableResult
    public func unpin(device: String) async throws(RegistryError) -> String {
        try await exclusive.run { () async throws(RegistryError) -> String in
            try Self.checkDeviceName(device)
            guard let was = try pins.unpin(device) else {
                throw RegistryError(.rolloutState, "device \(device) of fleet \(distributor.fleet) is not pinned")
            }
            desired.production = try registry.productionVersion()
            desired.rollout = try current()
            desired.pins = try pins.read()
            if let wanted = desired.version(for: device), wanted != was {
                try await assign(wanted, to: [device], statuses: monitor.statuses, reason: "unpinned from \(was)")
            }
            return was
        }
    }

    /// Publishes `version`'s artifact and assigns it to `devices` — as a signed rollback to those whose status
    /// shows a newer release — and records it.
    private func assign(
        _ version: String, to devices: [String], statuses: [String: DeviceStatus], reason: String,
        now: Date = Date()
    ) async throws(RegistryError) {
        guard !devices.isEmpty else { return }
        let bytes = try registry.artifactBytes(version: version)
        let assignment: ModelAssignment
        if publishedArtifacts.contains(version) {
            assignment = ModelAssignment(
                version: version, sha256: ModelArtifact.fileDigestHex(bytes), size: bytes.count,
                topic: distributor.artifactTopic(version: version))
        } else {
            assignment = try await distributor.publishArtifact(bytes, version: version)
            publishedArtifacts.insert(version)
        }
        let releases =
            (try? FleetSigningState(directory: registry.directory, fleet: distributor.fleet).assignments().releases)
            ?? [:]
        let back = devices.filter { device in
            guard let serving = statuses[device]?.modelVersion, let from = releases[serving],
                let to = releases[version]
            else { return false }
            return to < from
        }
        let forward = devices.filter { !back.contains($0) }
        try await distributor.assign(assignment, to: forward)
        try await distributor.assign(assignment, to: back, rollback: true)
        desired.noteSent(version, to: devices, at: now)
        try audit.append(
            AuditRecord(
                actor: "desired-state", action: "desired-state", version: version, devices: devices, reason: reason))
        log("desired state: \(version) → \(devices.joined(separator: ", ")): \(reason)")
    }

    static func checkDeviceName(_ device: String) throws(RegistryError) {
        do {
            try DeviceProvisioner.validateName(device, what: "device")
        } catch {
            throw RegistryError(.badDeviceName, error.description)
        }
    }
}
