import TandemEdge

extension FuzzTarget {
    /// An agent configuration file through the YAML reader, the key table and validation.
    ///
    /// Checks: for a configuration that applies and validates, what `check-config` prints (``AgentConfiguration/
    /// effectiveYAML()``) applies again and prints the same.
    static let yaml = FuzzTarget(
        name: "yaml",
        summary: "YAMLReader → AgentConfiguration.apply(yaml:) → validate() → effectiveYAML() read back"
    ) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        var configuration = AgentConfiguration()
        do {
            try configuration.apply(yaml: text)
            // As `AgentConfiguration.load` does: an empty device id is the host name.
            if configuration.device.id.isEmpty { configuration.device.id = "dev-1" }
            try configuration.validate()
        } catch {
            return .refused
        }
        let printed = configuration.effectiveYAML()
        var reread = AgentConfiguration()
        do {
            try reread.apply(yaml: printed)
        } catch {
            FuzzCheck.require(false, "check-config's output does not read back: \(error)\n\(printed)")
        }
        FuzzCheck.require(
            reread.effectiveYAML() == printed, "check-config's output reads back differently:\n\(printed)")
        return .accepted
    }
}
