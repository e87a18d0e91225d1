import TandemMQTT

extension AgentConfiguration.Broker {
    /// The `broker` section checked as one ``MQTTBrokerConfiguration`` (reads no file).
    ///
    /// An empty `caFile` with an `mqtts://` URL asks for the system's trust store, as agent.yaml has always
    /// said, and so does `caFile: system` (what `tandem provision --ca-file system` writes); a CA file, client certificate or key with a plain `mqtt://` URL is an error.
    /// - Throws: ``ConfigurationError`` naming the `broker.…` key at fault.
    public func brokerConfiguration() throws(ConfigurationError) -> MQTTBrokerConfiguration {
        do throws(MQTTBrokerConfigurationError) {
            let endpoint = try MQTTBrokerConfiguration.Endpoint(url: url)
            let authorities: MQTTBrokerConfiguration.CertificateAuthorities? =
                caFile.isEmpty ? (endpoint.usesTLS ? .system : nil) : .init(caFile)
            return try MQTTBrokerConfiguration(
                endpoint: endpoint, username: username, passwordFile: passwordFile,
                certificateAuthorities: authorities, certificateFile: certFile, keyFile: keyFile)
        } catch {
            throw ConfigurationError(error, section: "broker")
        }
    }
}

extension ConfigurationError {
    /// A broker configuration problem as one with the key its setting has in `section` (`broker.caFile`).
    init(_ error: MQTTBrokerConfigurationError, section: String) {
        let key =
            switch error.setting {
            case .url: "url"
            case .username: "username"
            case .passwordFile: "passwordFile"
            case .caFile: "caFile"
            case .certificateFile: "certFile"
            case .keyFile: "keyFile"
            }
        self.init(.invalidValue, key: "\(section).\(key)", error.message)
    }
}
