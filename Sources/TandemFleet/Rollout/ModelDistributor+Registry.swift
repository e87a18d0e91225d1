import TandemProtocol

extension ModelDistributor {
    /// Publishes the registered `version`'s artifact retained, optionally assigns it to `devices` and makes it
    /// production, and records each step in `audit`.
    ///
    /// - Parameters:
    ///   - version: A registered version.
    ///   - registry: Where it is registered.
    ///   - audit: The audit log.
    ///   - actor: Who, for the audit log.
    ///   - devices: Devices to assign it to right away (no canary); empty for none.
    ///   - production: Whether it becomes the production version (the baseline of the next rollout).
    ///   - rollback: Whether assigning it deliberately returns `devices` to an older version.
    /// - Returns: The assignment that points at the artifact (unsigned: what the signed ones describe).
    /// - Throws: ``RegistryError`` (`unknownVersion`, `publishFailed`, `signing`, `io`).
    @discardableResult
    public func publish(
        version: String, from registry: ModelRegistry, audit: AuditLog, actor: String, assigningTo devices: [String],
        production: Bool, rollback: Bool = false
    ) async throws(RegistryError) -> ModelAssignment {
        let bytes = try registry.artifactBytes(version: version)
        let assignment = try await publishArtifact(bytes, version: version)
        try audit.append(
            AuditRecord(
                actor: actor, action: "publish", version: version,
                reason: "artifact retained on \(artifactTopic(version: version)) (\(bytes.count) bytes)"))
        if !devices.isEmpty {
            try await assign(assignment, to: devices, rollback: rollback)
            try audit.append(
                AuditRecord(
                    actor: actor, action: "assign", version: version, devices: devices,
                    reason: rollback ? "assigned directly as a rollback" : "assigned directly, without a canary"))
        }
        if production {
            try registry.setProduction(version)
            try audit.append(
                AuditRecord(actor: actor, action: "production", version: version, reason: "set at publication"))
        }
        return assignment
    }
}
