import ArgumentParser
import Foundation
import TandemCloud
import TandemMQTT

extension Serve {
    /// The worker's configuration from the flags (the configuration file and environment are flags by now).
    func workerConfiguration() throws -> CloudWorker.Configuration {
        var configuration = CloudWorker.Configuration(broker: try broker(), modelPath: model)
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

    /// The broker flags checked together (no file is read yet).
    ///
    /// - Throws: `ValidationError` naming the flag at fault.
    func broker() throws -> MQTTBrokerConfiguration {
        do throws(MQTTBrokerConfigurationError) {
            return try MQTTBrokerConfiguration(
                url: brokerURL, username: username, passwordFile: passwordFile,
                certificateAuthorities: brokerCAFile.map(MQTTBrokerConfiguration.CertificateAuthorities.init),
                certificateFile: brokerCertFile, keyFile: brokerKeyFile)
        } catch {
            let flag =
                switch error.setting {
                case .url: "--broker-url"
                case .username: "--username"
                case .passwordFile: "--password-file"
                case .caFile: "--broker-ca-file"
                case .certificateFile: "--broker-cert-file"
                case .keyFile: "--broker-key-file"
                }
            let hint =
                error.code == .missingSetting && error.setting == .caFile
                ? "; --broker-ca-file system asks for the system's trust store" : ""
            throw ValidationError("\(flag): \(error.message)\(hint)")
        }
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
