import Crypto
import Foundation
import TandemCore

/// The cloud's model versions on disk, their lineage and metrics, and which one is in production.
///
/// Layout under the data directory:
///
/// * `models/{version}.tandem` — the signed artifact, exactly the bytes devices receive;
/// * `models/{version}.json` — its ``ModelVersionRecord`` (lineage, digest, size, key id, metrics);
/// * `production.json` — `{"version": …, "since": …}`, the version the fleet runs outside a rollout.
///
/// Every file is written atomically (temporary file, fsync, rename, directory fsync), the artifact before
/// its record, so a version exists exactly when its record does. Files that do not fit (a record that is
/// not JSON, an artifact without a record, a record whose artifact is missing or of another size) are
/// reported with their path by ``list()`` and skipped, never fatal.
public struct ModelRegistry: Sendable {
    /// The data directory.
    public let directory: URL
    /// `directory/models`.
    public var modelsDirectory: URL { directory.appendingPathComponent("models") }
    /// `directory/production.json`.
    public var productionURL: URL { directory.appendingPathComponent("production.json") }

    /// A file in the registry that could not be used, and why.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// The file.
        public var path: String
        /// What is wrong with it.
        public var message: String
        /// `path: message`.
        public var description: String { "\(path): \(message)" }
    }

    /// Opens (creating if needed) the registry in `directory`.
    ///
    /// - Throws: ``RegistryError`` (`io`) if the directories cannot be created.
    public init(directory: URL) throws(RegistryError) {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(
                at: directory.appendingPathComponent("models"), withIntermediateDirectories: true)
        } catch {
            throw RegistryError(.io, "cannot create the registry directory: \(error)", path: directory.path)
        }
    }

    /// The artifact file of `version`.
    public func artifactURL(version: String) -> URL {
        modelsDirectory.appendingPathComponent("\(version).\(ModelArtifact.fileExtension)")
    }

    /// The record file of `version`.
    public func recordURL(version: String) -> URL {
        modelsDirectory.appendingPathComponent("\(version).json")
    }

    // MARK: - Registering

    /// Signs the artifact at `url` and adds it to the registry under its manifest's version.
    ///
    /// The artifact is read and checked as a device would (structure, checksums, input spec, golden-input
    /// self-test; an existing signature is replaced). Unless
    /// `force` is set, a model whose input (channels, window, hop, sample rate) or class names differ from
    /// the production model's is refused: devices would reject it (docs/EDGE.md "Model updates").
    /// Standardization statistics may differ.
    ///
    /// - Parameters:
    ///   - url: The `.tandem` artifact, signed or not.
    ///   - signingKey: The Ed25519 key devices trust.
    ///   - lineage: Where the model came from, its parent and extra metrics.
    ///   - force: Register even if the input spec differs from production's.
    /// - Returns: The new version's record.
    /// - Throws: ``RegistryError``: `badArtifact` (unreadable or corrupt), `badVersionName`,
    ///   `duplicateVersion`, `incompatible`, `io`.
    @discardableResult
    public func register(
        artifactAt url: URL, signingKey: Curve25519.Signing.PrivateKey, lineage: ModelLineage, force: Bool = false
    ) throws(RegistryError) -> ModelVersionRecord {
        let artifact: ModelArtifact
        do {
            artifact = try ModelArtifact.read(from: url)
        } catch {
            throw RegistryError(.badArtifact, "not a usable model artifact: \(error)", path: url.path)
        }
        // The checks a device makes besides the signature: a valid input spec, weights that fit the
        // architecture, and the golden-input self-test. A model that fails them must not reach the fleet.
        do {
            _ = try VerifiedModel(artifact: artifact, source: url.path)
        } catch {
            throw RegistryError(.badArtifact, "would not load on a device: \(error)", path: url.path)
        }
        let version = artifact.manifest.version
        try Self.checkVersionName(version)
        if FileManager.default.fileExists(atPath: recordURL(version: version).path) {
            throw RegistryError(
                .duplicateVersion, "version \(version) is registered already; give the model a new version",
                path: recordURL(version: version).path)
        }
        if !force, let production = try productionVersion() {
            let current = try self.artifact(version: production)
            if let difference = Self.incompatibility(of: artifact.manifest, with: current.manifest) {
                throw RegistryError(
                    .incompatible,
                    "\(version) does not fit production \(production): \(difference) (use force to register anyway)",
                    path: url.path)
            }
        }
        let signed: ModelArtifact
        do {
            signed = try artifact.signed(with: signingKey)
        } catch {
            throw RegistryError(.badArtifact, "cannot sign: \(error)", path: url.path)
        }
        let bytes = signed.serialized()
        var metrics = artifact.manifest.metrics
        metrics.merge(lineage.metrics) { _, given in given }
        let record = ModelVersionRecord(
            version: version, name: artifact.manifest.name,
            parentVersion: lineage.parentVersion ?? artifact.manifest.parentVersion,
            sha256: ModelArtifact.fileDigestHex(bytes), size: bytes.count,
            keyID: signed.signature?.keyIDHex ?? "", created: Date().ISO8601Format(), metrics: metrics,
            source: lineage.source)
        try write(bytes, to: artifactURL(version: version))
        try write(try Self.encode(record), to: recordURL(version: version))
        return record
    }

    /// What makes `candidate` unfit to replace `current` on devices, or nil if it fits.
    public static func incompatibility(of candidate: ModelManifest, with current: ModelManifest) -> String? {
        let differences = candidate.input.replacementDifferences(
            classNames: candidate.classNames, replacing: current.input, currentClasses: current.classNames)
        return differences.isEmpty ? nil : differences.joined(separator: ", ")
    }

    static func checkVersionName(_ version: String) throws(RegistryError) {
        guard !version.isEmpty, !version.contains(where: { "/+#".contains($0) || $0.isWhitespace }),
            version != ".", version != ".."
        else {
            throw RegistryError(.badVersionName, "version '\(version)' is not a topic-safe name")
        }
    }

    // MARK: - Reading

    /// Every usable version, oldest first, and the files that were skipped with why.
    public func list() -> (versions: [ModelVersionRecord], problems: [Problem]) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: modelsDirectory.path).sorted()
        } catch {
            return ([], [Problem(path: modelsDirectory.path, message: "cannot list: \(error)")])
        }
        var versions: [ModelVersionRecord] = []
        var problems: [Problem] = []
        var recorded = Set<String>()
        for name in names where !name.hasPrefix(".") {
            let path = modelsDirectory.appendingPathComponent(name).path
            if name.hasSuffix(".json") {
                do {
                    let record = try readRecord(at: URL(fileURLWithPath: path))
                    recorded.insert(record.version)
                    versions.append(record)
                } catch {
                    problems.append(Problem(path: path, message: error.message))
                }
            } else if !name.hasSuffix(".\(ModelArtifact.fileExtension)") {
                problems.append(Problem(path: path, message: "not a registry file (expected VERSION.tandem or .json)"))
            }
        }
        for name in names where name.hasSuffix(".\(ModelArtifact.fileExtension)") && !name.hasPrefix(".") {
            let version = String(name.dropLast(ModelArtifact.fileExtension.count + 1))
            if !recorded.contains(version), !problems.contains(where: { $0.path.hasSuffix("/\(version).json") }) {
                problems.append(
                    Problem(
                        path: modelsDirectory.appendingPathComponent(name).path,
                        message: "artifact without a record (\(version).json); not registered"))
            }
        }
        versions.sort { ($0.created, $0.version) < ($1.created, $1.version) }
        return (versions, problems)
    }

    /// The record of `version`.
    ///
    /// - Throws: ``RegistryError`` `unknownVersion` if it is not registered or its files are damaged.
    public func record(version: String) throws(RegistryError) -> ModelVersionRecord {
        try Self.checkVersionName(version)
        let url = recordURL(version: version)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw RegistryError(.unknownVersion, "version \(version) is not registered", path: url.path)
        }
        return try readRecord(at: url)
    }

    /// The signed artifact file of `version`, checked against its record's size and SHA-256.
    ///
    /// - Throws: ``RegistryError`` `unknownVersion` if the version is not registered or the file does not
    ///   match its record.
    public func artifactBytes(version: String) throws(RegistryError) -> [UInt8] {
        let record = try record(version: version)
        let url = artifactURL(version: version)
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: url))
        } catch {
            throw RegistryError(.unknownVersion, "cannot read the artifact of \(version): \(error)", path: url.path)
        }
        let digest = ModelArtifact.fileDigestHex(bytes)
        guard bytes.count == record.size, digest == record.sha256 else {
            throw RegistryError(
                .unknownVersion,
                "the artifact of \(version) is \(bytes.count) bytes with SHA-256 \(digest); its record says "
                    + "\(record.size) bytes, \(record.sha256)", path: url.path)
        }
        return bytes
    }

    /// The artifact of `version`, parsed.
    ///
    /// - Throws: ``RegistryError`` `unknownVersion` as ``artifactBytes(version:)``, `badArtifact` if it does
    ///   not parse.
    public func artifact(version: String) throws(RegistryError) -> ModelArtifact {
        let bytes = try artifactBytes(version: version)
        do {
            return try ModelArtifact(bytes: bytes)
        } catch {
            throw RegistryError(.badArtifact, "\(error)", path: artifactURL(version: version).path)
        }
    }

    // MARK: - Production

    /// The version in production, or nil if none was set.
    ///
    /// - Throws: ``RegistryError`` `io` if `production.json` exists but cannot be read or parsed.
    public func productionVersion() throws(RegistryError) -> String? {
        let url = productionURL
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        struct Production: Decodable { var version: String }
        do {
            return try JSONDecoder().decode(Production.self, from: Data(contentsOf: url)).version
        } catch {
            throw RegistryError(.io, "not a production state file ({\"version\": …}): \(error)", path: url.path)
        }
    }

    /// Makes `version` the production version.
    ///
    /// - Throws: ``RegistryError`` `unknownVersion` if it is not registered, `io` if writing fails.
    public func setProduction(_ version: String) throws(RegistryError) {
        _ = try record(version: version)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let payload = ["version": version, "since": Date().ISO8601Format()]
        let data = (try? encoder.encode(payload)) ?? Data()
        try write(Array(data) + [0x0A], to: productionURL)
    }

    // MARK: - Files

    private func readRecord(at url: URL) throws(RegistryError) -> ModelVersionRecord {
        let record: ModelVersionRecord
        do {
            record = try JSONDecoder().decode(ModelVersionRecord.self, from: Data(contentsOf: url))
        } catch {
            throw RegistryError(.unknownVersion, "not a model version record: \(error)", path: url.path)
        }
        guard url.lastPathComponent == "\(record.version).json" else {
            throw RegistryError(
                .unknownVersion, "the record names version \(record.version), not its file name", path: url.path)
        }
        let artifact = artifactURL(version: record.version).path
        let attributes = try? FileManager.default.attributesOfItem(atPath: artifact)
        guard let size = attributes?[.size] as? Int else {
            throw RegistryError(.unknownVersion, "the artifact \(artifact) is missing", path: url.path)
        }
        guard size == record.size else {
            throw RegistryError(
                .unknownVersion, "the artifact \(artifact) has \(size) bytes, the record says \(record.size)",
                path: url.path)
        }
        return record
    }

    private func write(_ bytes: [UInt8], to url: URL) throws(RegistryError) {
        do {
            try AtomicFile.write(bytes, to: url)
        } catch {
            throw RegistryError(.io, "\(error)", path: url.path)
        }
    }

    static func encode(_ value: some Encodable) throws(RegistryError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(value)) + [0x0A]
        } catch {
            throw RegistryError(.io, "cannot encode: \(error)")
        }
    }
}
