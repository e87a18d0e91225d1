import Foundation
import TandemCore
import TandemProtocol

/// A fleet's agent policies: every version's settings and the one in production, in `{data}/policies-{fleet}.json`
/// (JSON, replaced atomically). `local` is the reserved version of no setting at all: agents on their agent.yaml.
public struct PolicyBook: Codable, Sendable, Equatable {
    /// The version that sets nothing.
    public static let local = "local"

    /// The fleet.
    public var fleet: String
    /// The version in production; ``local`` before the first promotion.
    public var production: String
    /// Each version's settings.
    public var versions: [String: AgentPolicy.Settings]

    /// An empty book: production is ``local``.
    public init(fleet: String) {
        self.fleet = fleet
        production = Self.local
        versions = [:]
    }

    /// The book's file in `directory`.
    public static func url(in directory: URL, fleet: String) -> URL {
        directory.appendingPathComponent("policies-\(fleet).json")
    }

    /// Reads the book of `fleet` in `directory`; an empty one if there is no file.
    ///
    /// - Throws: ``RegistryError`` (`io`) if the file exists but is not this fleet's book.
    public static func read(in directory: URL, fleet: String) throws(RegistryError) -> PolicyBook {
        let url = url(in: directory, fleet: fleet)
        guard FileManager.default.fileExists(atPath: url.path) else { return PolicyBook(fleet: fleet) }
        let book: PolicyBook
        do {
            book = try JSONDecoder().decode(PolicyBook.self, from: Data(contentsOf: url))
        } catch {
            throw RegistryError(.io, "not a policy book: \(error)", path: url.path)
        }
        guard book.fleet == fleet else {
            throw RegistryError(.io, "the policy book of fleet \(book.fleet), not \(fleet)", path: url.path)
        }
        return book
    }

    /// Writes the book atomically into `directory`.
    ///
    /// - Throws: ``RegistryError`` (`io`).
    public func write(in directory: URL) throws(RegistryError) {
        let url = Self.url(in: directory, fleet: fleet)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        do {
            try AtomicFile.write(Array(try encoder.encode(self)) + [0x0A], to: url)
        } catch {
            throw RegistryError(.io, "cannot write the policy book: \(error)", path: url.path)
        }
    }

    /// The settings of `version` (none for ``local``).
    ///
    /// - Throws: ``RegistryError`` (`unknownVersion`) if the book does not hold it.
    public func settings(of version: String) throws(RegistryError) -> AgentPolicy.Settings {
        if version == Self.local { return AgentPolicy.Settings() }
        guard let settings = versions[version] else {
            throw RegistryError(.unknownVersion, "fleet \(fleet) has no agent policy \(version)")
        }
        return settings
    }

    /// Adds `version` with `settings`; adding it again with the same settings is no change.
    ///
    /// - Throws: ``RegistryError``: `badVersionName` for a name that is not topic-safe or is ``local``,
    ///   `duplicateVersion` if it exists with other settings, `badArtifact` for a setting out of range.
    public mutating func add(_ version: String, _ settings: AgentPolicy.Settings) throws(RegistryError) {
        try ModelRegistry.checkVersionName(version)
        guard version != Self.local else {
            throw RegistryError(.badVersionName, "'\(Self.local)' is reserved for the agents' own configuration")
        }
        do {
            try settings.check()
        } catch {
            throw RegistryError(.badArtifact, error.message)
        }
        if let existing = versions[version], existing != settings {
            throw RegistryError(
                .duplicateVersion,
                "policy \(version) exists with other settings (\(existing.summary)); choose a new name")
        }
        versions[version] = settings
    }
}

extension DeviceStatus {
    /// The status as a rollout of agent policies reads it: the policy in force as the "version" (``PolicyBook/local``
    /// when none) and the policy update as the "model update", so ``Rollout`` judges policies as it judges models.
    public var asPolicyStatus: DeviceStatus {
        var view = self
        view.modelVersion = policyVersion ?? PolicyBook.local
        view.modelUpdate = policyUpdate
        return view
    }
}
