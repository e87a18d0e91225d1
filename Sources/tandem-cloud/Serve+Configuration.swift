import ArgumentParser
import Foundation
import TandemCloud
import TandemMQTT
import TandemTraining

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
        guard let precision = BatchClassifier.Precision(rawValue: precision) else {
            throw ValidationError("--precision must be float or int8, not \(self.precision)")
        }
        configuration.precision = precision
        if let modelThreads {
            guard (1...64).contains(modelThreads) else { throw ValidationError("--model-threads must be within 1…64") }
            configuration.modelThreads = modelThreads
        }
        configuration.statisticsIntervalSeconds = statsInterval
        configuration.escalationLimit = try limit(
            "--device-escalations-per-second", deviceEscalationsPerSecond, "--device-escalation-burst",
            deviceEscalationBurst)
        configuration.labelLimit = try limit(
            "--device-labels-per-second", deviceLabelsPerSecond, "--device-label-burst", deviceLabelBurst)
        configuration.answerAttempts = answerAttempts
        configuration.fullModelCheckSeconds = fullModelCheckInterval
        configuration.shutdownGracePeriodSeconds = shutdownGracePeriod
        configuration.http = try httpConfiguration()
        configuration.trainer = trainer.settings()
        return configuration
    }

    /// A device limit from its two flags: nil when the rate is 0 (no limit).
    private func limit(_ rateFlag: String, _ rate: Double, _ burstFlag: String, _ burst: Double) throws -> RateLimit? {
        guard rate != 0 else { return nil }
        let limit = RateLimit(perSecond: rate, burst: burst)
        guard limit.isValid else {
            throw ValidationError("\(rateFlag) must be positive (or 0: no limit) and \(burstFlag) at least 1")
        }
        return limit
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
            do {
                configuration.token = try APITokenFile.read(path: apiTokenFile)
            } catch {
                throw ValidationError("--api-token-file: \(error)")
            }
        }
        configuration.idleTimeoutSeconds = httpIdleTimeout
        configuration.maximumConnections = httpMaxConnections
        return configuration
    }
}
