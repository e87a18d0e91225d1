import ArgumentParser
import Dispatch
import TandemEdge
import TandemMQTT

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The `tandem-edge` agent.
@main
struct TandemEdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tandem-edge",
        abstract: "Classify sensor windows on an edge box; escalate unsure ones to the cloud over MQTT.",
        discussion: """
            Reads sensor samples (CSV `timestamp,ch1,…,chN` or JSON `{"ts":…,"values":[…]}` lines) from the \
            configured streams, cuts them into windows as the model's input spec says, classifies every window \
            and writes one JSON record per window to the configured sinks. Bad input lines are counted per \
            reason and skipped. SIGTERM or SIGINT stops the sources, finishes the windows in flight, flushes \
            the sinks and exits 0.

            Configuration: built-in defaults < the YAML file (--config; every key is listed in \
            edge-config/agent.yaml) < TANDEM_… environment variables (a key `section.someKey` is \
            TANDEM_SECTION_SOME_KEY, e.g. TANDEM_BROKER_URL) < flags.
            """,
        subcommands: [Run.self, CheckConfig.self],
        defaultSubcommand: Run.self
    )
}

/// Options every subcommand takes: the file and the most common overrides.
struct ConfigurationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The agent configuration (YAML).", valueName: "path")) var config: String?
    @Option(help: ArgumentHelp("Device id (device.id).", valueName: "id")) var deviceId: String?
    @Option(help: ArgumentHelp("Fleet name (device.fleet).", valueName: "name")) var fleet: String?
    @Option(help: ArgumentHelp("Broker URL, mqtt://host:port or mqtts://… (broker.url).", valueName: "url"))
    var brokerUrl: String?
    @Option(help: ArgumentHelp("Model artifact (model.path).", valueName: "path")) var model: String?
    @Option(help: ArgumentHelp("Trusted public key file; repeat for several (model.trustedKeys).", valueName: "path"))
    var trustedKey: [String] = []
    @Option(help: ArgumentHelp("Fixed confidence threshold (policy.threshold).", valueName: "x")) var threshold: Double?
    @Option(help: ArgumentHelp("Target escalation share, e.g. 0.1 (policy.budget).", valueName: "share")) var budget:
        Double?
    @Option(help: ArgumentHelp("Escalation cap per second (policy.maxEscalationsPerSecond).", valueName: "n"))
    var maxEscalationsPerSecond: Double?
    @Option(
        help: ArgumentHelp("Set any scalar key, e.g. --set verdictDeadlineMs=300; repeatable.", valueName: "key=value"))
    var set: [String] = []

    /// Defaults, then the file, then the environment, then these flags.
    func effectiveConfiguration() throws -> AgentConfiguration {
        var configuration = try AgentConfiguration.load(path: config, environment: ProcessInfo.processInfo.environment)
        var overrides: [(String, String)] = []
        if let deviceId { overrides.append(("device.id", deviceId)) }
        if let fleet { overrides.append(("device.fleet", fleet)) }
        if let brokerUrl { overrides.append(("broker.url", brokerUrl)) }
        if let model { overrides.append(("model.path", model)) }
        if !trustedKey.isEmpty { overrides.append(("model.trustedKeys", trustedKey.joined(separator: ","))) }
        if let threshold { overrides.append(("policy.threshold", String(threshold))) }
        if let budget { overrides.append(("policy.budget", String(budget))) }
        if let maxEscalationsPerSecond {
            overrides.append(("policy.maxEscalationsPerSecond", String(maxEscalationsPerSecond)))
        }
        for item in set {
            guard let equals = item.firstIndex(of: "=") else {
                throw ValidationError("--set \(item): expected key=value")
            }
            overrides.append((String(item[..<equals]), String(item[item.index(after: equals)...])))
        }
        for (key, value) in overrides { try configuration.set(key, to: value) }
        return configuration
    }
}

/// Prints an error the way the agent reports it and exits non-zero.
func fail(_ error: any Error) -> ExitCode {
    StandardError.write("tandem-edge: \(error)\n")
    return ExitCode.failure
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the agent until its sources end or it gets SIGTERM/SIGINT.")

    @OptionGroup var options: ConfigurationOptions

    func run() async throws {
        let agent: EdgeAgent
        do {
            agent = try EdgeAgent.make(configuration: try options.effectiveConfiguration())
        } catch {
            throw fail(error)
        }
        // Signals arrive on a dispatch queue, not as async-signal handlers, so stopping may take locks.
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let handlers = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                EdgeAgent.standardError("tandem-edge: signal \(number): stopping")
                agent.stop()
            }
            source.resume()
            return source
        }
        defer { handlers.forEach { $0.cancel() } }
        let listen = agent.configuration.metricsListen
        if let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) {
            do {
                let bound = try agent.serveMetrics(host: String(listen[..<colon]), port: port)
                EdgeAgent.standardError("tandem-edge: metrics on http://\(listen[..<colon]):\(bound)/metrics")
            } catch {
                throw fail(error)
            }
        }
        let model = agent.classifier
        EdgeAgent.standardError(
            "tandem-edge: device \(agent.configuration.device.id), model \(model.modelVersion) "
                + "(window \(model.input.window), hop \(model.input.hop), \(model.input.channels) channels), "
                + "\(agent.configuration.streams.count) stream(s): started")
        do {
            try await agent.run()
        } catch {
            throw fail(error)
        }
        EdgeAgent.standardError("tandem-edge: stopped; status \(agent.statusJSON(state: .offline))")
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and print every effective value as YAML.",
        discussion: "Exits non-zero and names each bad key if the configuration is invalid. Does not load the model.")

    @OptionGroup var options: ConfigurationOptions

    func run() async throws {
        do {
            let configuration = try options.effectiveConfiguration()
            try configuration.validate()
            print(configuration.effectiveYAML(), terminator: "")
        } catch {
            throw fail(error)
        }
    }
}
