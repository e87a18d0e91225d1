import Foundation

/// What the registry knows about one model version: the `models/{version}.json` file next to its artifact.
///
/// The lineage (parent version, source) and the metrics come from the registration; the digest, size and
/// key id describe the signed artifact file exactly as devices receive it.
public struct ModelVersionRecord: Codable, Sendable, Equatable {
    /// The version, unique in the registry and topic-safe.
    public var version: String
    /// The model's name from its manifest (`edge`, `fcn`, …).
    public var name: String
    /// The version this one was derived from, if any.
    public var parentVersion: String?
    /// Lower-case hex SHA-256 of the whole signed artifact file (what an assignment names).
    public var sha256: String
    /// The signed artifact's size in bytes.
    public var size: Int
    /// The id (16 hex digits) of the key that signed it.
    public var keyID: String
    /// When it was registered, ISO 8601 in UTC.
    public var created: String
    /// Evaluation metrics: the artifact manifest's, overridden by those given at registration.
    public var metrics: [String: Double]
    /// Where it came from: `initial`, `retrain`, `manual`, ….
    public var source: String
}

/// What the caller says about a model when registering it.
public struct ModelLineage: Sendable, Equatable {
    /// Where the model came from: `initial`, `retrain`, `manual`, ….
    public var source: String
    /// The version it was derived from; nil takes the artifact manifest's `parentVersion`.
    public var parentVersion: String?
    /// Metrics to record besides (and over) the artifact manifest's own.
    public var metrics: [String: Double]

    /// Creates a lineage.
    public init(source: String, parentVersion: String? = nil, metrics: [String: Double] = [:]) {
        self.source = source
        self.parentVersion = parentVersion
        self.metrics = metrics
    }
}
