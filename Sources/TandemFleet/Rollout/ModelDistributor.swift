import TandemCore
import TandemMQTT
import TandemProtocol

/// Puts models on the broker for a fleet: each artifact retained on `tandem/v1/{fleet}/models/{version}`,
/// each device's signed assignment retained on `tandem/v1/{fleet}/{device}/model`, the fleet's signed key
/// revocation list on `tandem/v1/{fleet}/keys/revocations` (docs/PROTOCOL.md).
///
/// Every publish is QoS 1 and waits for the broker's PUBACK; a refusal (e.g. an ACL denial, reason code
/// 135) is an error, so a caller that returns has the messages stored on the broker. Assignments are signed by
/// the ``AssignmentSigner`` (format 2, with the fleet's next sequence); a distributor without one can publish
/// artifacts but not assign them.
public struct ModelDistributor: Sendable {
    /// The connected client that publishes.
    public let client: MQTTClient
    /// The fleet (second topic level).
    public let fleet: String
    /// Signs assignments; nil for a distributor that only reads or publishes artifacts.
    public let signer: AssignmentSigner?

    /// A distributor publishing with `client` for `fleet`, signing assignments with `signer`.
    ///
    /// - Precondition: `signer`, if given, signs for `fleet`.
    public init(client: MQTTClient, fleet: String, signer: AssignmentSigner?) {
        precondition(signer == nil || signer?.fleet == fleet, "the signer signs for another fleet")
        self.client = client
        self.fleet = fleet
        self.signer = signer
    }

    /// The topic the artifact of `version` is retained on.
    public func artifactTopic(version: String) -> String {
        DeviceTopics(fleet: fleet, device: "_").artifact(version: version)
    }

    /// The topic `device`'s assignment is retained on.
    public func assignmentTopic(device: String) -> String {
        DeviceTopics(fleet: fleet, device: device).modelAssignment
    }

    /// Publishes the artifact `bytes` of `version`, retained, and waits for the acknowledgement.
    ///
    /// - Returns: The assignment that points devices at it.
    /// - Throws: ``RegistryError`` (`publishFailed`) naming the topic.
    @discardableResult
    public func publishArtifact(_ bytes: [UInt8], version: String) async throws(RegistryError) -> ModelAssignment {
        let topic = artifactTopic(version: version)
        try await publish(MQTTMessage(topic: topic, payload: bytes, qos: .atLeastOnce, retain: true))
        return ModelAssignment(
            version: version, sha256: ModelArtifact.fileDigestHex(bytes), size: bytes.count, topic: topic)
    }

    /// Signs `assignment` for each of `devices` and publishes each retained on its model topic, waiting for every
    /// acknowledgement.
    ///
    /// - Parameters:
    ///   - assignment: The artifact to run (version, SHA-256, size, topic), as ``publishArtifact(_:version:)``
    ///     returns it.
    ///   - devices: The devices.
    ///   - rollback: Whether this deliberately returns the devices to an older version; devices refuse an older
    ///     version without it.
    /// - Throws: ``RegistryError``: `signing` without a signer or if signing fails, `io` if the sequence cannot be
    ///   taken, `publishFailed` naming the first topic that failed (the devices before it are assigned).
    public func assign(_ assignment: ModelAssignment, to devices: [String], rollback: Bool = false)
        async throws(RegistryError)
    {
        guard !devices.isEmpty else { return }
        guard let signer else {
            throw RegistryError(.signing, "assigning \(assignment.version) needs the fleet's signing key")
        }
        for (device, signed) in try signer.sign(assignment, for: devices, rollback: rollback) {
            try await publish(
                MQTTMessage(
                    topic: assignmentTopic(device: device), payload: signed.encoded(), qos: .atLeastOnce, retain: true))
        }
    }

    /// Publishes the fleet's signed key revocation list, retained.
    ///
    /// - Throws: ``RegistryError`` (`publishFailed`).
    public func publishRevocations(_ list: KeyRevocationList) async throws(RegistryError) {
        try await publish(
            MQTTMessage(
                topic: ProtocolTopics.revocations(fleet: fleet), payload: list.encoded(), qos: .atLeastOnce,
                retain: true))
    }

    private func publish(_ message: MQTTMessage) async throws(RegistryError) {
        let result: MQTTPublishResult
        do {
            result = try await client.publish(message)
        } catch {
            throw RegistryError(.publishFailed, "publishing to \(message.topic): \(error)")
        }
        guard result.isAccepted else {
            throw RegistryError(
                .publishFailed, "the broker refused the publish to \(message.topic) (reason code \(result.reasonCode))")
        }
    }
}
