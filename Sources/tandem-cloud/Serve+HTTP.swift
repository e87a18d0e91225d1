import ArgumentParser
import Foundation
import TandemCloud

extension Serve {
    /// The HTTP API's settings from `--http` and `--api-token-file`, or nil when `--http ""` disables it.
    func httpConfiguration() throws -> CloudHTTPAPI.Configuration? {
        guard !http.isEmpty else { return nil }
        var configuration = CloudHTTPAPI.Configuration()
        do {
            configuration.address = try CloudHTTPAPI.Address(parsing: http)
        } catch {
            throw ValidationError("--http: \(error)")
        }
        if let apiTokenFile {
            let text = try String(contentsOfFile: apiTokenFile, encoding: .utf8)
            let token =
                text.split(separator: "\n", omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard !token.isEmpty else {
                throw ValidationError("--api-token-file: \(apiTokenFile) has an empty first line")
            }
            configuration.token = token
        }
        return configuration
    }
}
