import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The file holding the bearer token of the HTTP API's mutating routes (`--api-token-file`).
public enum APITokenFile {
    /// Reads the token: the file's first line, white space around it removed.
    ///
    /// The token is a password: a file that the group or others may read or write is refused, so a token that
    /// others could have read (or changed) is never trusted.
    ///
    /// - Throws: ``APIConfigurationError`` naming the file when it cannot be read, has group or other permission
    ///   bits (saying its mode and the `chmod` that fixes it), or has an empty first line.
    public static func read(path: String) throws(APIConfigurationError) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw APIConfigurationError("\(path): cannot read the API token file: \(String(cString: strerror(errno)))")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw APIConfigurationError(
                "\(path): the API token file is open to its group or others (mode \(String(mode, radix: 8))); "
                    + "the token is a password: chmod 600 \(path)")
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw APIConfigurationError("\(path): cannot read the API token file: \(error.localizedDescription)")
        }
        let token =
            text.split(separator: "\n", omittingEmptySubsequences: false).first
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard !token.isEmpty else { throw APIConfigurationError("\(path): the API token file has an empty first line") }
        return token
    }
}
