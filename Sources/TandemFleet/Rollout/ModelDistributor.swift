import TandemCore
import TandemMQTT
import TandemProtocol

/// Puts models on the broker for a fleet: each artifact retained on `tandem/v1/{fleet}/models/{version}`,
/// each device's assignment retained on `tandem/v1/{fleet}/{device}/model` (docs/PROTOCOL.md).
///
/// Every publish is QoS 1 and waits for the broker's PUBACK; a refusal (e.g. an ACL denial, reason code
/// 135) is an error, so a caller that returns has the messages stored on the broker.
public struct ModelDistributor: Sendable {
    /// The connected client that publishes.
    public let client: MQTTClient
    /// The fleet (second topic level).
    public let fleet: String

    /// A distributor publishing with `client` for `fleet`.
    public init(client: MQTTClient, fleet: String) {
        self.client = client
        self.fleet = fleet
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

    /// Publishes `assignment` retained on each device's model topic, waiting for every acknowledgement.
    ///
    /// - Throws: ``RegistryError`` (`publishFailed`) naming the first topic that failed; the devices
    ///   before it are assigned.
    public func assign(_ assignment: ModelAssignment, to devices: [String]) async throws(RegistryError) {
        let payload = assignment.encoded()
        for device in devices {
            try await publish(
                MQTTMessage(topic: assignmentTopic(device: device), payload: payload, qos: .atLeastOnce, retain: true))
        }
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
