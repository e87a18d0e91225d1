import ArgumentParser
import TandemMQTT

/// The broker flags every command that talks to a broker takes (`tandem publish|rollout|demo`, `tandem-cloud
/// serve`), read into one ``MQTTBrokerConfiguration``.
///
/// Checked as a whole before the command does anything, so an unknown scheme or a TLS file with `mqtt://` is
/// refused before a model is registered, signed or served.
public struct BrokerOptions: ParsableArguments, Sendable {
    /// `--broker-url`.
    @Option(
        help: ArgumentHelp(
            "The broker, mqtt://host[:port] (default port 1883) or mqtts://host[:port] for TLS (8883).",
            valueName: "url"))
    public var brokerURL = "mqtt://localhost:1883"

    /// `--username`.
    @Option(help: ArgumentHelp("Broker user name.", valueName: "name")) public var username: String?

    /// `--password-file`.
    @Option(help: ArgumentHelp("File whose first line is the broker password (needs --username).", valueName: "path"))
    public var passwordFile: String?

    /// `--broker-ca-file`.
    @Option(
        name: .customLong("broker-ca-file"),
        help: ArgumentHelp(
            "CA certificate (PEM) that signs the broker's, for mqtts:// (required there); 'system': the system's "
                + "trust store.", valueName: "path"))
    public var brokerCAFile: String?

    /// `--broker-cert-file`.
    @Option(
        name: .customLong("broker-cert-file"),
        help: ArgumentHelp("Client certificate (PEM) for a broker that requires one (mqtts://).", valueName: "path"))
    public var brokerCertFile: String?

    /// `--broker-key-file`.
    @Option(
        name: .customLong("broker-key-file"),
        help: ArgumentHelp("The client certificate's private key (PEM).", valueName: "path"))
    public var brokerKeyFile: String?

    /// Flags as their defaults.
    public init() {}

    /// Refuses flags that do not make a broker configuration, before the command runs.
    public func validate() throws { _ = try configuration() }

    /// The broker flags checked together (no file is read yet).
    ///
    /// - Throws: `ValidationError` naming the flag at fault.
    public func configuration() throws -> MQTTBrokerConfiguration {
        do throws(MQTTBrokerConfigurationError) {
            return try MQTTBrokerConfiguration(
                url: brokerURL, username: username, passwordFile: passwordFile,
                certificateAuthorities: brokerCAFile.map(MQTTBrokerConfiguration.CertificateAuthorities.init),
                certificateFile: brokerCertFile, keyFile: brokerKeyFile)
        } catch {
            throw Self.validationError(error)
        }
    }

    /// The settings of one client: the password file is read and the TLS files checked now.
    ///
    /// - Throws: `ValidationError` naming the flag and the file at fault.
    public func clientConfiguration(clientID: String) throws -> MQTTClientConfiguration {
        let broker = try configuration()
        do throws(MQTTBrokerConfigurationError) {
            return try broker.clientConfiguration(clientID: clientID)
        } catch {
            throw Self.validationError(error)
        }
    }

    /// `error` as a usage error naming the flag of its setting.
    public static func validationError(_ error: MQTTBrokerConfigurationError) -> ValidationError {
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
        return ValidationError("\(flag): \(error.message)\(hint)")
    }
}
