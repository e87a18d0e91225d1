import Crypto
import Foundation
import TandemCore

/// mosquitto's password file: one `user:hash` line per user, the hash in mosquitto's PBKDF2 form
/// `$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512(password, salt)>`, which mosquitto 2 reads.
///
/// Passwords made here are 32 random bytes (256 bits), so the iteration count guards nothing a
/// guesser could exploit; it stays at mosquitto_passwd's default so the broker's check on every
/// connect stays cheap.
public enum BrokerPasswordFile {
    /// PBKDF2 rounds, as `mosquitto_passwd` uses by default.
    public static let iterations = 101
    /// Salt bytes, as `mosquitto_passwd` uses.
    public static let saltBytes = 12

    /// A new random password: 32 bytes as 64 hex digits (no characters a config file must escape).
    public static func randomPassword() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// The password file entry for `user`: `user:$7$…`, with a fresh random salt unless one is given.
    public static func entry(user: String, password: String, salt: [UInt8]? = nil) -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = salt ?? (0..<saltBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let hash = pbkdf2SHA512(password: Array(password.utf8), salt: salt, iterations: iterations)
        return "\(user):$7$\(iterations)$\(Data(salt).base64EncodedString())$\(Data(hash).base64EncodedString())"
    }

    /// PBKDF2 with HMAC-SHA512 (RFC 8018), one 64-byte block: what mosquitto stores.
    static func pbkdf2SHA512(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var block = salt
        block += [0, 0, 0, 1]
        var u = Array(HMAC<SHA512>.authenticationCode(for: block, using: key))
        var result = u
        for _ in 1..<max(iterations, 1) {
            u = Array(HMAC<SHA512>.authenticationCode(for: u, using: key))
            for i in result.indices { result[i] ^= u[i] }
        }
        return result
    }

    /// Sets `user`'s entry in the password file at `path` (created if missing, mode 0600): an existing
    /// line for the user is replaced, so provisioning again rotates the password. Written atomically.
    public static func setEntry(_ entry: String, in path: String) throws(ProvisioningError) {
        guard let user = entry.split(separator: ":", maxSplits: 1).first.map(String.init) else {
            throw ProvisioningError(.invalidName, "password entry without a user")
        }
        var lines = try readLines(path)
        lines.removeAll { $0.split(separator: ":", maxSplits: 1).first.map(String.init) == user }
        lines.append(entry)
        try writeAtomically(lines.joined(separator: "\n") + "\n", to: path, mode: 0o600)
    }
}

/// Reads a text file as lines (none if it does not exist).
func readLines(_ path: String) throws(ProvisioningError) -> [String] {
    guard FileManager.default.fileExists(atPath: path) else { return [] }
    do {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    } catch {
        throw ProvisioningError(.io, "\(path): cannot read: \(error.localizedDescription)")
    }
}

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
