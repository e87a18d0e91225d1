import ArgumentParser
import Foundation
import TandemCloud
import TandemMQTT

extension Serve {
    /// The worker's configuration from the flags (the configuration file and environment are flags by now).
    func workerConfiguration() throws -> CloudWorker.Configuration {
        var configuration = CloudWorker.Configuration(broker: try brokerOptions.configuration(), modelPath: model)
        configuration.edgeModelPaths = edgeModel
        configuration.trustedKeyPaths = trustedKey
        configuration.dataDirectory = dataDir
        configuration.storeURL = storeURL
        configuration.workerID = workerID
        configuration.maximumBatch = maxBatch
        configuration.maximumWaitSeconds = maxWaitMs / 1000
        configuration.statisticsIntervalSeconds = statsInterval
        configuration.shutdownGracePeriodSeconds = shutdownGracePeriod
        configuration.http = try httpConfiguration()
        configuration.trainer = trainer.settings()
        return configuration
    }

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
