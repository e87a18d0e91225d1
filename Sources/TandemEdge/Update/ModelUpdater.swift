import Synchronization
import TandemCore
import TandemMQTT
import TandemProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// Follows the device's model assignment: checks the assignment (``AssignmentGate``: signature, fleet and device,
/// sequence, expiry, rollback), records it, fetches the artifact, verifies it exactly as a model loaded at start
/// (``EdgeModelLoader``, with revoked keys refused) plus the assignment's SHA-256 and size, checks it fits the
/// running streams, swaps the file atomically and the serving model without stopping. It also takes the fleet's
/// key revocation list, which arrives on the same ordered stream before the assignment.
///
/// The file swap keeps `model.path` a complete, verified artifact at every instant: the new artifact is
/// written to `model.path.download` and synced, the running one is copied to `model.path.previous`
/// (synced, renamed into place), then the download is renamed over `model.path` and the directory synced.
/// A crash at any point leaves either the old or the new model at `model.path`; ``EdgeModelFiles/open``
/// falls back to `.previous` if `model.path` does not verify.
///
/// An assignment's sequence is recorded (``AssignmentRecord``, atomically, next to the model) once the
/// assignment passes its checks and before the download: a newer assignment supersedes older ones whether or not
/// its model installs, and a restart does not reopen the door to a replay. Every refusal is the status's
/// `rejected V: reason` and a log line; the serving model is untouched.
///
/// It is given what it uses — the serving model it swaps, the model settings (trusted keys), the link that
/// brings assignments and artifacts and the files it writes — not the agent that assembled it.
final class ModelUpdater: Sendable {
    let model: ServingModel
    let configuration: AgentConfiguration.Model
    let link: EdgeLink
    let files: EdgeModelFiles
    let fetchTimeout: Duration
    let state = Mutex(ModelUpdateState.idle)
    /// The checks and what was taken before; a record that could not be read refuses every message.
    let gate: Mutex<Result<AssignmentGate, ModelLoadError>>
    /// Seconds since 1970, for expiry.
    let now: @Sendable () -> UInt64
    let log: @Sendable (String) -> Void
    let onChange: @Sendable (ModelUpdateState) -> Void
    /// Agent policies: the checks and the newest taken (``PolicyGate``), how one is put in force, and where its
    /// state goes (the status's `policyUpdate`, and the version in force).
    let policyGate: Mutex<Result<PolicyGate, ModelLoadError>>
    let applyPolicy: @Sendable (AgentPolicy) throws -> Void
    let onPolicyChange: @Sendable (ModelUpdateState, _ inForce: String?) -> Void
    /// The signed-bytes digest of the policy in force in this process, if any.
    let appliedPolicyDigest = Mutex<String?>(nil)

    init(
        model: ServingModel, configuration: AgentConfiguration.Model, link: EdgeLink, files: EdgeModelFiles,
        fetchTimeout: Duration = .seconds(60),
        now: @escaping @Sendable () -> UInt64 = { UInt64(max(0, Date().timeIntervalSince1970)) },
        log: @escaping @Sendable (String) -> Void,
        applyPolicy: @escaping @Sendable (AgentPolicy) throws -> Void = { _ in },
        onPolicyChange: @escaping @Sendable (ModelUpdateState, String?) -> Void = { _, _ in },
        onChange: @escaping @Sendable (ModelUpdateState) -> Void
    ) {
        self.applyPolicy = applyPolicy
        self.onPolicyChange = onPolicyChange
        do {
            policyGate = Mutex(
                .success(
                    PolicyGate(
                        record: try PolicyRecord.read(from: files.policyRecordPath), fleet: link.topics.fleet,
                        device: link.topics.device)))
        } catch {
            policyGate = Mutex(.failure(error))
        }
        self.model = model
        self.configuration = configuration
        self.link = link
        self.files = files
        self.fetchTimeout = fetchTimeout
        self.now = now
        self.log = log
        self.onChange = onChange
        let requireSignature = configuration.requireSignature || !configuration.trustedKeys.isEmpty
        do {
            let record = try AssignmentRecord.read(from: files.recordPath)
            gate = Mutex(
                .success(
                    AssignmentGate(
                        record: record, fleet: link.topics.fleet, device: link.topics.device,
                        requireSignature: requireSignature)))
        } catch {
            gate = Mutex(.failure(error))
        }
    }

    /// Records `new`: the log keeps the whole reason of a rejection, the status a reason short enough for the
    /// cloud to read (``ModelUpdateState/truncated``).
    private func set(_ new: ModelUpdateState) {
        state.withLock { $0 = new.truncated }
        log("model update: \(new)")
        onChange(new.truncated)
    }

    /// Handles assignments and revocation lists until the stream ends.
    func run(_ messages: AsyncStream<MQTTMessage>) async {
        for await message in messages {
            await handle(message)
        }
    }

    func handle(_ message: MQTTMessage) async {
        if message.topic == link.topics.revocations {
            takeRevocations(message)
            return
        }
        if message.topic == link.topics.policy {
            takePolicy(message)
            return
        }
        if message.payload.isEmpty { return }  // a cleared retained assignment
        let assignment: ModelAssignment
        do {
            assignment = try ModelAssignment(decoding: message.payload)
        } catch {
            set(.rejected("?", reason: "\(message.topic): \(error)"))
            return
        }
        let version = assignment.version
        let keys: TrustedKeys
        let revoked: Set<String>
        do {
            let gate = try currentGate()
            revoked = Set(gate.record.revokedKeyIDs)
            keys = try trustedKeys(revoked: revoked)
            let decision = try gate.check(assignment, keys: keys, now: now())
            if case .accept(let record) = decision { try persist(record) }
        } catch {
            set(.rejected(version, reason: "\(error)"))
            return
        }
        if version == model.classifier.modelVersion {
            recordServing(assignment)
            set(.active(version))
            return
        }
        set(.downloading(version))
        let topic = assignment.topic ?? link.topics.artifact(version: version)
        let bytes: [UInt8]
        do {
            bytes = try await fetch(topic: topic)
        } catch {
            set(.rejected(version, reason: "download from \(topic): \(error)"))
            return
        }
        set(.verifying(version))
        do {
            let classifier = try files.verifyAndInstall(
                bytes, assignment: assignment, configuration: configuration, revokedKeyIDs: revoked
            ) { candidate throws(ModelLoadError) in
                try ServingModel.checkCompatible(candidate, replacing: model.classifier)
            }
            try model.install(classifier)
            recordServing(assignment)
            set(.active(classifier.modelVersion))
        } catch {
            set(.rejected(version, reason: "\(error)"))
        }
    }

    /// Takes the fleet's key revocation list if it passes ``AssignmentGate/check(_:keys:)``; logs a refusal.
    private func takeRevocations(_ message: MQTTMessage) {
        if message.payload.isEmpty { return }
        guard configuration.requireSignature || !configuration.trustedKeys.isEmpty else {
            log("key revocations: ignored, this agent checks no signatures (model.trustedKeys is empty)")
            return
        }
        do {
            let list = try KeyRevocationList(decoding: message.payload)
            let gate = try currentGate()
            guard let record = try gate.check(list, keys: try trustedKeys(revoked: [])) else { return }
            try persist(record)
            log(
                "key revocations: list \(list.sequence) taken; revoked keys: "
                    + record.revokedKeyIDs.joined(separator: ", "))
        } catch {
            log("key revocations: refused the list on \(message.topic): \(error)")
        }
    }

    func currentGate() throws(ModelLoadError) -> AssignmentGate {
        try gate.withLock { $0 }.get()
    }

    func trustedKeys(revoked: Set<String>) throws(AssignmentRefusal) -> TrustedKeys {
        do {
            return try TrustedKeys.read(paths: configuration.trustedKeys, revokedKeyIDs: revoked)
        } catch {
            throw AssignmentRefusal(.untrusted, "a trusted key file cannot be used: \(error)")
        }
    }

    /// Writes `record`, then keeps it: what is in memory is never ahead of the disk.
    private func persist(_ record: AssignmentRecord) throws(ModelLoadError) {
        try record.write(to: files.recordPath)
        gate.withLock { current in
            if case .success(var gate) = current {
                gate.record = record
                current = .success(gate)
            }
        }
    }

    /// Records that `assignment`'s version serves (its release is the floor for later assignments).
    private func recordServing(_ assignment: ModelAssignment) {
        guard let gate = try? currentGate() else { return }
        let record = gate.serving(assignment)
        guard record != gate.record else { return }
        do {
            try persist(record)
        } catch {
            log("model update: \(error)")
        }
    }

    /// The first (retained) message on `topic`.
    private func fetch(topic: String) async throws -> [UInt8] {
        guard let bytes = try await link.client.firstMessage(on: topic, timeout: fetchTimeout) else {
            throw ModelLoadError(.unreadable, "no artifact arrived on \(topic) within \(fetchTimeout)")
        }
        return bytes
    }
}

/// The model file of an agent, its previous version and the download in progress.
public struct EdgeModelFiles: Sendable {
    /// The serving model's path (`model.path`).
    public let path: String
    /// The model before the last update.
    public var previousPath: String { path + ".previous" }
    /// A download being verified.
    public var downloadPath: String { path + ".download" }
    /// What the device took from its fleet (``AssignmentRecord``).
    public var recordPath: String { AssignmentRecord.path(forModelAt: path) }
    /// The newest agent policy taken (``PolicyRecord``).
    public var policyRecordPath: String { PolicyRecord.path(forModelAt: path) }

    /// Files around `path`.
    public init(path: String) { self.path = path }

    /// Loads the model to start with: `model.path`, or, if that does not verify, the previous model (a
    /// rollback, logged). Keys the assignment record lists as revoked are refused. A leftover download from an
    /// interrupted update is removed.
    ///
    /// - Throws: the `model.path` error when neither verifies; the record's error if it exists but cannot be read.
    public func open(_ model: AgentConfiguration.Model, log: @Sendable (String) -> Void) throws(ModelLoadError)
        -> any WindowClassifier
    {
        if FileManager.default.fileExists(atPath: downloadPath) {
            log("model: removing \(downloadPath), left by an interrupted update")
            try? FileManager.default.removeItem(atPath: downloadPath)
        }
        let revoked = Set(try AssignmentRecord.read(from: recordPath).revokedKeyIDs)
        do {
            return try EdgeModelLoader.load(
                path: path, trustedKeyPaths: model.trustedKeys, revokedKeyIDs: revoked,
                requireSignature: model.requireSignature)
        } catch {
            guard FileManager.default.fileExists(atPath: previousPath),
                let previous = try? EdgeModelLoader.load(
                    path: previousPath, trustedKeyPaths: model.trustedKeys, revokedKeyIDs: revoked,
                    requireSignature: model.requireSignature)
            else { throw error }
            log("model: \(error); rolling back to \(previousPath) (\(previous.modelVersion))")
            return previous
        }
    }

    /// Writes `bytes` to the download path, checks them against the assignment, verifies the artifact
    /// (checksum, signature by a trusted key not in `revokedKeyIDs`, input spec, self-test) and `accept`, then
    /// swaps it in as `model.path`.
    ///
    /// - Returns: the new model, ready to serve.
    /// - Throws: ``ModelLoadError`` saying why it was refused; nothing changes on disk then.
    func verifyAndInstall(
        _ bytes: [UInt8], assignment: ModelAssignment, configuration: AgentConfiguration.Model,
        revokedKeyIDs: Set<String> = [], accept: (any WindowClassifier) throws(ModelLoadError) -> Void
    ) throws(ModelLoadError) -> any WindowClassifier {
        try Self.checkDownload(bytes, against: assignment)
        do {
            try Self.writeSynced(bytes, to: downloadPath)
        } catch {
            throw ModelLoadError(.unreadable, "cannot write \(downloadPath): \(error)")
        }
        let classifier: any WindowClassifier
        do {
            classifier = try EdgeModelLoader.load(
                path: downloadPath, trustedKeyPaths: configuration.trustedKeys, revokedKeyIDs: revokedKeyIDs,
                requireSignature: configuration.requireSignature)
            guard classifier.modelVersion == assignment.version else {
                throw ModelLoadError(
                    .incompatible, "artifact holds version \(classifier.modelVersion), assigned \(assignment.version)")
            }
            try accept(classifier)
            if FileManager.default.fileExists(atPath: path) {
                let current = try Data(contentsOf: URL(fileURLWithPath: path))
                try Self.writeSynced(Array(current), to: previousPath + ".tmp")
                try Self.rename(previousPath + ".tmp", to: previousPath)
            }
            try Self.rename(downloadPath, to: path)
            Self.syncDirectory(of: path)
        } catch let error as ModelLoadError {
            try? FileManager.default.removeItem(atPath: downloadPath)
            throw error
        } catch {
            try? FileManager.default.removeItem(atPath: downloadPath)
            throw ModelLoadError(.unreadable, "cannot install \(path): \(error)")
        }
        return classifier
    }

    /// Checks downloaded artifact bytes against the assignment that named them: their size and SHA-256.
    ///
    /// - Throws: ``ModelLoadError`` (`unreadable`) saying which differs.
    public static func checkDownload(_ bytes: [UInt8], against assignment: ModelAssignment) throws(ModelLoadError) {
        guard bytes.count == assignment.size else {
            throw ModelLoadError(
                .unreadable, "artifact has \(bytes.count) bytes, the assignment says \(assignment.size)")
        }
        let digest = ModelArtifact.fileDigestHex(bytes)
        guard digest == assignment.sha256 else {
            throw ModelLoadError(
                .unreadable, "artifact SHA-256 \(digest) differs from the assignment's \(assignment.sha256)")
        }
    }

    static func writeSynced(_ bytes: [UInt8], to path: String) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    static func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    static func syncDirectory(of path: String) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        let fd = Glibc.open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
