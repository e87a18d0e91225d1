import Foundation
import TandemCore
import TandemProtocol

/// The numbers a fleet's signed messages carry, kept in the data directory so they never go backwards — not
/// across restarts, and not when several processes sign for the fleet at once (`tandem publish`, `tandem
/// rollout`, `tandem revoke-key`, the trainer in `tandem-cloud`).
///
/// Two files per fleet, each replaced atomically (``AtomicFile``) and read and written only while holding an
/// exclusive `flock` on a third, `{fleet}.signing-lock`, which is never replaced (a lock on a file that a rename
/// replaces would lock nothing):
///
/// * `assignments-{fleet}.json` — `{"fleet", "sequence", "releases": {version: release}}`: the last assignment
///   sequence handed out, and each version's release (the sequence of the first assignment that named it);
/// * `revocations-{fleet}.json` — the fleet's signed ``KeyRevocationList`` as published.
///
/// A number is written to disk before it is returned, so whatever is signed with it is already accounted for;
/// a crash after that only skips a number. Losing these files (a data directory restored from an old backup)
/// makes devices refuse the fleet's assignments as replays until the sequence passes theirs again, so back them
/// up with the registry.
public struct FleetSigningState: Sendable {
    /// The data directory.
    public let directory: URL
    /// The fleet.
    public let fleet: String

    /// The state of `fleet` in `directory` (the registry's data directory).
    public init(directory: URL, fleet: String) {
        self.directory = directory
        self.fleet = fleet
    }

    /// `assignments-{fleet}.json`.
    public var assignmentsURL: URL { directory.appendingPathComponent("assignments-\(fleet).json") }
    /// `revocations-{fleet}.json`.
    public var revocationsURL: URL { directory.appendingPathComponent("revocations-\(fleet).json") }
    /// `{fleet}.signing-lock`.
    public var lockURL: URL { directory.appendingPathComponent("\(fleet).signing-lock") }

    /// The assignment counters as stored.
    public struct Assignments: Sendable, Equatable, Codable {
        /// The fleet.
        public var fleet: String
        /// The last sequence handed out; 0 before the first.
        public var sequence: UInt64
        /// Each version's release.
        public var releases: [String: UInt64]
    }

    /// Takes the fleet's next assignment sequence and `version`'s release (the new sequence, if no assignment
    /// named `version` before), and records both before returning them.
    ///
    /// - Throws: ``RegistryError`` (`io`) if the state cannot be read, locked or written; nothing is handed out.
    public func nextAssignment(naming version: String) throws(RegistryError) -> (sequence: UInt64, release: UInt64) {
        try locked { () throws(RegistryError) in
            var state = try readAssignments()
            guard state.sequence < ModelAssignment.maximumNumber else {
                throw RegistryError(.io, "the fleet's assignment sequence is exhausted", path: assignmentsURL.path)
            }
            state.sequence += 1
            let release = state.releases[version] ?? state.sequence
            state.releases[version] = release
            try write(state, to: assignmentsURL)
            return (state.sequence, release)
        }
    }

    /// Takes the fleet's next sequence for a message that names no model version (an agent policy), and records it
    /// before returning it: policies and assignments share one order.
    ///
    /// - Throws: ``RegistryError`` (`io`) if the state cannot be read, locked or written; nothing is handed out.
    public func nextSequence() throws(RegistryError) -> UInt64 {
        try locked { () throws(RegistryError) in
            var state = try readAssignments()
            guard state.sequence < ModelAssignment.maximumNumber else {
                throw RegistryError(.io, "the fleet's assignment sequence is exhausted", path: assignmentsURL.path)
            }
            state.sequence += 1
            try write(state, to: assignmentsURL)
            return state.sequence
        }
    }

    /// The assignment counters; zero and empty before the first assignment.
    ///
    /// - Throws: ``RegistryError`` (`io`) if the file exists but cannot be read.
    public func assignments() throws(RegistryError) -> Assignments {
        try locked { () throws(RegistryError) in try readAssignments() }
    }

    /// The fleet's revocation list as last published, if any.
    ///
    /// - Throws: ``RegistryError`` (`io`) if the file exists but cannot be read.
    public func revocationList() throws(RegistryError) -> KeyRevocationList? {
        try locked { () throws(RegistryError) in try readRevocations() }
    }

    /// Replaces the revocation list with what `update` makes of the current one, under the lock.
    ///
    /// - Parameter update: Given the current list (nil before the first), returns the signed new one.
    /// - Returns: The new list, as stored.
    /// - Throws: ``RegistryError`` from `update`, or `io`.
    public func updateRevocations(
        _ update: (KeyRevocationList?) throws(RegistryError) -> KeyRevocationList
    ) throws(RegistryError) -> KeyRevocationList {
        try locked { () throws(RegistryError) in
            let list = try update(try readRevocations())
            do {
                try AtomicFile.write(list.encoded() + [0x0A], to: revocationsURL)
            } catch {
                throw RegistryError(.io, "\(error)", path: revocationsURL.path)
            }
            return list
        }
    }

    private func readAssignments() throws(RegistryError) -> Assignments {
        let url = assignmentsURL
        guard FileManager.default.fileExists(atPath: url.path) else {
            return Assignments(fleet: fleet, sequence: 0, releases: [:])
        }
        let state: Assignments
        do {
            state = try JSONDecoder().decode(Assignments.self, from: Data(contentsOf: url))
        } catch {
            throw RegistryError(
                .io, "cannot read the fleet's assignment sequence: \(error); restore it from a backup", path: url.path)
        }
        guard state.fleet == fleet else {
            throw RegistryError(.io, "holds the sequence of fleet \(state.fleet), not \(fleet)", path: url.path)
        }
        return state
    }

    private func readRevocations() throws(RegistryError) -> KeyRevocationList? {
        let url = revocationsURL
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            let bytes = Array(try Data(contentsOf: url))
            return try KeyRevocationList(decoding: Array(bytes.prefix { $0 != 0x0A }))
        } catch {
            throw RegistryError(.io, "cannot read the fleet's revocation list: \(error)", path: url.path)
        }
    }

    private func write(_ state: Assignments, to url: URL) throws(RegistryError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        do {
            try AtomicFile.write(Array(try encoder.encode(state)) + [0x0A], to: url)
        } catch {
            throw RegistryError(.io, "cannot record the fleet's assignment sequence: \(error)", path: url.path)
        }
    }

    /// Runs `body` holding the exclusive lock; other processes wait for it (it is held for a read and a write).
    private func locked<T>(_ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        let descriptor = open(lockURL.path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw RegistryError(
                .io, "cannot open the lock file: \(String(cString: strerror(errno)))", path: lockURL.path)
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw RegistryError(.io, "cannot lock: \(String(cString: strerror(errno)))", path: lockURL.path)
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}
