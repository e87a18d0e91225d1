import Foundation
import TandemCore

/// Replaces the file at `path` with `text` atomically (temporary file, fsync, rename), with mode `mode`.
func writeAtomically(_ text: String, to path: String, mode: mode_t) throws(ProvisioningError) {
    do {
        try AtomicFile.write(Array(text.utf8), to: URL(fileURLWithPath: path), permissions: mode)
    } catch {
        throw ProvisioningError(.io, error.description)
    }
}

/// Why provisioning failed.
public struct ProvisioningError: Error, CustomStringConvertible, Equatable {
    /// The kind of failure.
    public enum Code: Sendable, Equatable {
        /// A device, fleet or user name the topic scheme cannot carry.
        case invalidName
        /// A file could not be read or written.
        case io
        /// The agent.yaml template lacks a key provisioning sets.
        case template
    }

    /// The kind of failure.
    public let code: Code
    /// What failed, naming the file or key.
    public let description: String

    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
