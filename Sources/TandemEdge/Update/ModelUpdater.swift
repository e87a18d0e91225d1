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

/// Follows the device's model assignment: fetches the artifact, verifies it exactly as a model loaded at
/// start (``EdgeModelLoader``) plus the assignment's SHA-256 and size, checks it fits the running streams,
/// swaps the file atomically and the serving model without stopping.
///
/// The file swap keeps `model.path` a complete, verified artifact at every instant: the new artifact is
/// written to `model.path.download` and synced, the running one is copied to `model.path.previous`
/// (synced, renamed into place), then the download is renamed over `model.path` and the directory synced.
/// A crash at any point leaves either the old or the new model at `model.path`; ``EdgeModelFiles/open``
/// falls back to `.previous` if `model.path` does not verify.
///
/// It is given what it uses — the serving model it swaps, the model settings (trusted keys), the link that
/// brings artifacts and the files it writes — not the agent that assembled it.
final class ModelUpdater: Sendable {
    let model: ServingModel
    let configuration: AgentConfiguration.Model
    let link: EdgeLink
    let files: EdgeModelFiles
    let fetchTimeout: Duration
    let state = Mutex(ModelUpdateState.idle)
    let log: @Sendable (String) -> Void
    let onChange: @Sendable (ModelUpdateState) -> Void

    init(
        model: ServingModel, configuration: AgentConfiguration.Model, link: EdgeLink, files: EdgeModelFiles,
        fetchTimeout: Duration = .seconds(60), log: @escaping @Sendable (String) -> Void,
        onChange: @escaping @Sendable (ModelUpdateState) -> Void
    ) {
        self.model = model
        self.configuration = configuration
        self.link = link
        self.files = files
        self.fetchTimeout = fetchTimeout
        self.log = log
        self.onChange = onChange
    }

    /// Records `new`: the log keeps the whole reason of a rejection, the status a reason short enough for the
    /// cloud to read (``ModelUpdateState/truncated``).
    private func set(_ new: ModelUpdateState) {
        state.withLock { $0 = new.truncated }
        log("model update: \(new)")
        onChange(new.truncated)
    }

    /// Handles assignments until the stream ends.
    func run(_ assignments: AsyncStream<MQTTMessage>) async {
        for await message in assignments {
            await handle(message)
        }
    }

    func handle(_ message: MQTTMessage) async {
        if message.payload.isEmpty { return }  // a cleared retained assignment
        let assignment: ModelAssignment
        do {
            assignment = try ModelAssignment(decoding: message.payload)
        } catch {
            set(.rejected("?", reason: "\(message.topic): \(error)"))
            return
        }
        let version = assignment.version
        if version == model.classifier.modelVersion {
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
                bytes, assignment: assignment, configuration: configuration
            ) { candidate throws(ModelLoadError) in
                try ServingModel.checkCompatible(candidate, replacing: model.classifier)
            }
            try model.install(classifier)
            set(.active(classifier.modelVersion))
        } catch {
            set(.rejected(version, reason: "\(error)"))
        }
    }

    /// The first (retained) message on `topic`.
    private func fetch(topic: String) async throws -> [UInt8] {
        let subscription = try await link.client.subscribe(to: topic, qos: .atLeastOnce, bufferCapacity: 1)
        let timeout = Task {
            try? await Task.sleep(for: fetchTimeout)
            subscription.cancel()
        }
        defer {
            timeout.cancel()
            subscription.cancel()
        }
        for await message in subscription where !message.payload.isEmpty {
            return message.payload
        }
        throw ModelLoadError(.unreadable, "no artifact arrived on \(topic) within \(fetchTimeout)")
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

    /// Files around `path`.
    public init(path: String) { self.path = path }

    /// Loads the model to start with: `model.path`, or, if that does not verify, the previous model (a
    /// rollback, logged). A leftover download from an interrupted update is removed.
    ///
    /// - Throws: the `model.path` error when neither verifies.
    public func open(_ model: AgentConfiguration.Model, log: @Sendable (String) -> Void) throws(ModelLoadError)
        -> any WindowClassifier
    {
        if FileManager.default.fileExists(atPath: downloadPath) {
            log("model: removing \(downloadPath), left by an interrupted update")
            try? FileManager.default.removeItem(atPath: downloadPath)
        }
        do {
            return try EdgeModelLoader.load(
                path: path, trustedKeyPaths: model.trustedKeys, requireSignature: model.requireSignature)
        } catch {
            guard FileManager.default.fileExists(atPath: previousPath),
                let previous = try? EdgeModelLoader.load(
                    path: previousPath, trustedKeyPaths: model.trustedKeys, requireSignature: model.requireSignature)
            else { throw error }
            log("model: \(error); rolling back to \(previousPath) (\(previous.modelVersion))")
            return previous
        }
    }

    /// Writes `bytes` to the download path, checks them against the assignment, verifies the artifact
    /// (checksum, signature, input spec, self-test) and `accept`, then swaps it in as `model.path`.
    ///
    /// - Returns: the new model, ready to serve.
    /// - Throws: ``ModelLoadError`` saying why it was refused; nothing changes on disk then.
    func verifyAndInstall(
        _ bytes: [UInt8], assignment: ModelAssignment, configuration: AgentConfiguration.Model,
        accept: (any WindowClassifier) throws(ModelLoadError) -> Void
    ) throws(ModelLoadError) -> any WindowClassifier {
        guard bytes.count == assignment.size else {
            throw ModelLoadError(
                .unreadable, "artifact has \(bytes.count) bytes, the assignment says \(assignment.size)")
        }
        let digest = ModelArtifact.fileDigestHex(bytes)
        guard digest == assignment.sha256 else {
            throw ModelLoadError(
                .unreadable, "artifact SHA-256 \(digest) differs from the assignment's \(assignment.sha256)")
        }
        do {
            try Self.writeSynced(bytes, to: downloadPath)
        } catch {
            throw ModelLoadError(.unreadable, "cannot write \(downloadPath): \(error)")
        }
        let classifier: any WindowClassifier
        do {
            classifier = try EdgeModelLoader.load(
                path: downloadPath, trustedKeyPaths: configuration.trustedKeys,
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
