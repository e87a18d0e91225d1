import ArgumentParser
import Foundation
import TandemCore
import TandemFleet
import TandemProtocol

/// `tandem policy set|status|rollback|watch`: signed agent policies — escalation settings changed on a running fleet,
/// staged like models.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Change a running fleet's escalation settings with a signed agent policy, staged like a model.",
        discussion: """
            A policy names what it changes of the agents' agent.yaml `policy` keys — measure, threshold or budget, \
            maxEscalationsPerSecond, burst — and leaves the rest as each agent has it. Each device is signed its \
            own copy (fleet, device, a sequence above every assignment and policy signed before, expiry) with the \
            fleet's key and receives it retained on tandem/v1/{fleet}/{device}/policy; agents check it as they \
            check model assignments, apply it between two windows without a restart and report policyVersion and \
            policyUpdate in their status. The rollout is the model rollout's: the canary cohort by device-id hash, \
            optional steps, rolled back when a canary device refuses the policy or the cohort's escalation rate \
            exceeds the rest's by more than --max-escalation-increase (the cohort is signed the previous policy \
            again), promoted after the soak. Policies: {data-dir}/policies-{fleet}.json; the rollout: \
            {data-dir}/policy-rollout-{fleet}.json; every action in {data-dir}/audit.jsonl. `local` is the \
            policy of no setting: the agents' own agent.yaml.
            """,
        subcommands: [SetPolicy.self, Status.self, Rollback.self, Watch.self])

    /// Runs `body` with a controller over a connected client, then disconnects.
    static func withController<T: Sendable>(
        _ cloud: CloudOptions, key: String?, _ body: (PolicyController) async throws -> T
    ) async throws -> T {
        let registry = try cloud.registry()
        let privateKey = try key.map { try SigningKeyFile.readPrivateKey(from: URL(fileURLWithPath: $0)) }
        return try await cloud.withFleet { client, monitor in
            try await body(
                PolicyController(
                    directory: registry.directory, fleet: cloud.fleet, client: client, monitor: monitor,
                    key: privateKey, audit: cloud.auditLog(), actor: cloud.actorName, log: Console.log))
        }
    }

    static func report(_ rollout: Rollout?, book: PolicyBook) {
        print("production policy of fleet \(book.fleet): \(book.production) (\(describe(book, book.production)))")
        guard let rollout else {
            print("no policy rollout")
            return
        }
        print(
            "policy rollout of \(rollout.version) (\(describe(book, rollout.version))), replacing "
                + "\(rollout.previousVersion): \(rollout.phase.rawValue)")
        print("on it: \(rollout.cohort.joined(separator: ", ")); others: \(rollout.others.count) devices")
        if let o = rollout.lastObservation {
            let canary = o.canaryEscalationRate.map { Console.percent($0) } ?? "-"
            let baseline = o.baselineEscalationRate.map { Console.percent($0) } ?? "-"
            print("escalation rate \(canary) over \(o.canaryWindows) windows, baseline \(baseline)")
            if let waiting = o.waitingFor { print("waiting for \(waiting)") }
        }
        if let reason = rollout.endReason { print("\(rollout.phase.rawValue): \(reason)") }
    }

    static func describe(_ book: PolicyBook, _ version: String) -> String {
        (try? book.settings(of: version).summary) ?? "unknown"
    }

    struct SetPolicy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract:
                "Add policy VERSION with the given settings and roll it out; unless --detach, drive it to the end.",
            discussion: """
                Exits 0 when the policy is promoted (it is then the fleet's production policy, and tandem-cloud's \
                trainer gives it to devices that come online later), 1 when it is rolled back. A setting left out \
                keeps each agent's agent.yaml value. A threshold without --budget turns an agent's local budget \
                off. VERSION may be set again only with the same settings.
                """)

        @OptionGroup var cloud: CloudOptions
        @Option(help: ArgumentHelp("The fleet's private signing key (`tandem keygen`).", valueName: "path"))
        var key: String
        @Argument(help: ArgumentHelp("A new policy name (topic-safe, not 'local').", valueName: "version"))
        var version: String
        @Option(help: "Confidence measure: maxProbability, margin or entropy.") var measure: String?
        @Option(help: "Escalation threshold, 0–1 (the starting threshold with --budget).") var threshold: Double?
        @Option(help: "Share of windows to escalate, in (0, 1): the agents adapt their threshold to it.")
        var budget: Double?
        @Option(help: "Most escalations per second.") var maxEscalationsPerSecond: Double?
        @Option(help: "The rate cap's burst, at least 1.") var burst: Double?
        @OptionGroup var staging: StagingOptions
        @OptionGroup var evaluation: EvaluationOptions
        @Flag(help: "Return once the cohort is signed the policy instead of driving the rollout.") var detach = false

        var settings: AgentPolicy.Settings {
            AgentPolicy.Settings(
                measure: measure, threshold: threshold, budget: budget,
                maxEscalationsPerSecond: maxEscalationsPerSecond, burst: burst)
        }

        func validate() throws {
            do {
                try settings.check()
            } catch {
                throw ValidationError(error.message)
            }
            guard !settings.isEmpty else {
                throw ValidationError(
                    "a policy sets at least one of --measure, --threshold, --budget, "
                        + "--max-escalations-per-second, --burst")
            }
        }

        func run() async throws {
            let (settings, policy, interval, detach, version) = (
                self.settings, try staging.policy(), self.evaluation.interval, self.detach, self.version
            )
            let (rollout, book) = try await PolicyCommand.withController(cloud, key: key) { controller in
                let started = try await controller.start(version: version, settings: settings, policy: policy)
                Console.log("canary: \(started.cohort.joined(separator: ", "))")
                let rollout =
                    detach ? started : try await controller.run(interval: .milliseconds(Int(interval * 1000)))
                return (rollout, try controller.book())
            }
            PolicyCommand.report(rollout, book: book)
            if rollout?.phase == .rolledBack { throw ExitCode(1) }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drive the fleet's policy rollout until it is promoted (exit 0) or rolled back (exit 1).")

        @OptionGroup var cloud: CloudOptions
        @Option(help: ArgumentHelp("The fleet's private signing key.", valueName: "path")) var key: String
        @OptionGroup var evaluation: EvaluationOptions

        func run() async throws {
            let interval = self.evaluation.interval
            let (rollout, book) = try await PolicyCommand.withController(cloud, key: key) { controller in
                (try await controller.run(interval: .milliseconds(Int(interval * 1000))), try controller.book())
            }
            PolicyCommand.report(rollout, book: book)
            if rollout?.phase == .rolledBack { throw ExitCode(1) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the fleet's policies, its policy rollout and each device's policy (changes nothing).")

        @OptionGroup var cloud: CloudOptions

        func run() async throws {
            let (rollout, book, statuses) = try await PolicyCommand.withController(cloud, key: nil) { controller in
                (try controller.current(), try controller.book(), controller.monitor.statuses)
            }
            PolicyCommand.report(rollout, book: book)
            for (version, settings) in book.versions.sorted(by: { $0.key < $1.key }) {
                print("policy \(version): \(settings.summary)")
            }
            for (device, status) in statuses.sorted(by: { $0.key < $1.key }) {
                print(
                    "  \(device): \(status.state.rawValue), policy \(status.policyVersion ?? PolicyBook.local), "
                        + "update \(status.policyUpdate?.description ?? "-"), threshold "
                        + (status.threshold.map { String(format: "%.3f", $0) } ?? "-"))
            }
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rollback",
            abstract: "Roll the running policy rollout back now: its devices are signed the previous policy again.")

        @OptionGroup var cloud: CloudOptions
        @Option(help: ArgumentHelp("The fleet's private signing key.", valueName: "path")) var key: String
        @Option(help: "Why, for the audit log.") var reason = "rolled back by hand"

        func run() async throws {
            let reason = self.reason
            let (rollout, book) = try await PolicyCommand.withController(cloud, key: key) { controller in
                (try await controller.rollBack(reason: reason), try controller.book())
            }
            PolicyCommand.report(rollout, book: book)
        }
    }
}
