import ArgumentParser
import Foundation
import TandemFleet
import TandemProtocol

/// `tandem rollout start|status|promote|rollback|watch|pin|unpin`: staged rollout of a published model version, and
/// devices held on a chosen one.
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Roll a published model version out to a fleet in stages: canary, soak, promote or roll back.",
        discussion: """
            The canary cohort is every device (known from its retained status) whose bucket — the first 8 bytes \
            of SHA-256 over its id, modulo 10,000 — is below --canary-percent × 100: the same devices every time. \
            The cohort is assigned the candidate; the rest keep the production version. The rollout rolls back \
            by itself (re-assigning the production version to the cohort) when a canary device reports \
            `rejected VERSION: …`, or the cohort's escalation rate on the candidate exceeds the baseline's \
            by more than --max-escalation-increase; it promotes (assigning the candidate to every device and \
            making it production) once --soak-seconds have passed, every canary device serves it and they \
            classified --min-canary-windows windows on it. With --steps (10,50,100) the candidate reaches the \
            fleet in stages instead: once the canary would be promoted, the devices below the next percentage \
            (the same buckets, so every earlier device stays) are assigned it, each step held --step-seconds, \
            and the same checks — rejections beyond --max-rejections, escalation rate against the devices not \
            yet moved — run at every step; a failing one re-assigns the production version to every device \
            moved so far. Promotion follows the last step. State: {data-dir}/rollout-{fleet}.json; every \
            action is recorded in {data-dir}/audit.jsonl. Every command that may assign (start, watch, promote, \
            rollback) signs the assignments with --key and the fleet's next sequence; a roll-back's carry the \
            rollback flag, which devices require to return to an older version. A pinned device (`tandem rollout \
            pin`, kept in {data-dir}/pins-{fleet}.json) is left out of rollouts and keeps its pinned version. \
            tandem-cloud's trainer keeps the fleet on its desired state: a device whose status shows another \
            version than its pin, the canary's or production is assigned that version within seconds.
            """,
        subcommands: [Start.self, Status.self, Promote.self, Rollback.self, Watch.self, Pin.self, Unpin.self])

    /// Builds the controller over a connected client, runs `body`, and disconnects.
    ///
    /// - Parameter signing: The signing key for the assignments a step may publish; nil for a command that
    ///   publishes nothing.
    static func withController<T: Sendable>(
        _ cloud: CloudOptions, signing: SigningOptions?, _ body: (RolloutController) async throws -> T
    ) async throws -> T {
        let registry = try cloud.registry()
        let signer = try signing?.signer(cloud)
        return try await cloud.withFleet { client, monitor in
            try await body(
                RolloutController(
                    registry: registry,
                    distributor: ModelDistributor(client: client, fleet: cloud.fleet, signer: signer),
                    monitor: monitor, audit: cloud.auditLog(), actor: cloud.actorName, log: Console.log))
        }
    }

    static func report(_ rollout: Rollout?) {
        guard let rollout else {
            print("no rollout")
            return
        }
        print(
            "rollout of \(rollout.version) (replacing \(rollout.previousVersion)) in fleet \(rollout.fleet): \(rollout.phase.rawValue)"
        )
        if rollout.policy.steps.isEmpty {
            print("canary (\(rollout.policy.canaryPercent) %): \(rollout.cohort.joined(separator: ", "))")
        } else {
            let stages = ([rollout.policy.canaryPercent] + rollout.policy.steps).map { "\($0) %" }
            let stage = rollout.step == 0 ? "canary" : "step \(rollout.step) of \(rollout.policy.steps.count)"
            let since =
                (rollout.step == 0 ? rollout.canaryStartedAt : rollout.stepStartedAt)
                .map { " since \($0.ISO8601Format())" } ?? ""
            print("steps: \(stages.joined(separator: " → ")); at \(stage) (\(rollout.currentPercent) %)\(since)")
            print("on candidate (\(rollout.currentPercent) %): \(rollout.cohort.joined(separator: ", "))")
        }
        print("others: \(rollout.others.count) devices")
        if let observation = rollout.lastObservation {
            let canary = observation.canaryEscalationRate.map { Console.percent($0) } ?? "-"
            let baseline = observation.baselineEscalationRate.map { Console.percent($0) } ?? "-"
            print(
                "on candidate: \(observation.cohortOnCandidate) of \(rollout.cohort.count); escalation rate \(canary) "
                    + "over \(observation.canaryWindows) windows, baseline \(baseline) over \(observation.baselineWindows)"
            )
            if let waiting = observation.waitingFor { print("waiting for \(waiting)") }
        }
        if let reason = rollout.endReason { print("\(rollout.phase.rawValue): \(reason)") }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Start a rollout of VERSION against the production version and, unless --detach, drive it to the end.",
            discussion: """
                Without --detach the command stays in the foreground, re-evaluating every --interval seconds, and \
                exits when the rollout is promoted (0) or rolled back (1). With --detach it returns once the \
                cohort is assigned; `tandem rollout watch` drives it later.
                """)

        @OptionGroup var cloud: CloudOptions
        @OptionGroup var signing: SigningOptions

        @Argument(help: ArgumentHelp("A version registered with `tandem publish`.", valueName: "version"))
        var version: String

        @OptionGroup var staging: StagingOptions
        @OptionGroup var evaluation: EvaluationOptions
        @Flag(help: "Return once the cohort is assigned instead of driving the rollout.") var detach = false

        func run() async throws {
            let rolloutPolicy = try staging.policy()
            let interval = self.evaluation.interval
            let detach = self.detach
            let rollout = try await RolloutCommand.withController(cloud, signing: signing) { controller in
                let started = try await controller.start(version: version, policy: rolloutPolicy)
                Console.log("canary: \(started.cohort.joined(separator: ", "))")
                if detach { return Optional(started) }
                return try await controller.run(interval: .milliseconds(Int(interval * 1000)))
            }
            RolloutCommand.report(rollout)
            if rollout?.phase == .rolledBack { throw ExitCode(1) }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drive the fleet's rollout until it is promoted (exit 0) or rolled back (exit 1).")

        @OptionGroup var cloud: CloudOptions
        @OptionGroup var signing: SigningOptions
        @OptionGroup var evaluation: EvaluationOptions

        func run() async throws {
            let interval = self.evaluation.interval
            let rollout = try await RolloutCommand.withController(cloud, signing: signing) { controller in
                try await controller.run(interval: .milliseconds(Int(interval * 1000)))
            }
            RolloutCommand.report(rollout)
            if rollout?.phase == .rolledBack { throw ExitCode(1) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the fleet's rollout and, while in canary, what the devices report now (changes nothing).")

        @OptionGroup var cloud: CloudOptions

        func run() async throws {
            let rollout = try await RolloutCommand.withController(cloud, signing: nil) { controller -> Rollout? in
                guard var rollout = try await controller.current() else { return nil }
                // A copy sees the live statuses; its decision is shown, not carried out.
                let decided = rollout.observe(controller.monitor.statuses, now: Date())
                for action in decided {
                    print("would now \(action.kind.rawValue): \(action.reason)")
                }
                for device in rollout.cohort {
                    let status = controller.monitor.statuses[device]
                    print(
                        "  \(device): \(status?.state.rawValue ?? "no status"), model \(status?.modelVersion ?? "-"), "
                            + "update \(status?.modelUpdate?.description ?? "-")")
                }
                return rollout
            }
            RolloutCommand.report(rollout)
            let pins = try DevicePins(directory: cloud.registry().directory, fleet: cloud.fleet).read()
            for (device, version) in pins.sorted(by: { $0.key < $1.key }) { print("pinned: \(device) on \(version)") }
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Promote the rollout in canary now: every device gets the candidate, which becomes production.")

        @OptionGroup var cloud: CloudOptions
        @OptionGroup var signing: SigningOptions
        @Option(help: "Why, for the audit log.") var reason = "promoted by hand"

        func run() async throws {
            let reason = self.reason
            let rollout = try await RolloutCommand.withController(cloud, signing: signing) {
                try await $0.promote(reason: reason)
            }
            RolloutCommand.report(rollout)
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rollback",
            abstract: "Roll the rollout in canary back now: the cohort is assigned the production version again.")

        @OptionGroup var cloud: CloudOptions
        @OptionGroup var signing: SigningOptions
        @Option(help: "Why, for the audit log.") var reason = "rolled back by hand"

        func run() async throws {
            let reason = self.reason
            let rollout = try await RolloutCommand.withController(cloud, signing: signing) {
                try await $0.rollBack(reason: reason)
            }
            RolloutCommand.report(rollout)
        }
    }

    struct Pin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hold DEVICE on VERSION: assign it now and leave the device out of rollouts until unpinned.",
            discussion: """
                The pin is kept in {data-dir}/pins-{fleet}.json beside the rollout state. The device is assigned \
                VERSION right away (signed with --key; as a signed rollback if its status shows a newer release), \
                and tandem-cloud's trainer assigns it again if its status shows another version. Rollouts leave \
                it out: neither a canary nor a promotion assigns it. VERSION must be registered (`tandem publish`) \
                and not signed by a key revoked for the fleet. Pinning a pinned device replaces its pin.
                """)

        @OptionGroup var cloud: CloudOptions
        @OptionGroup var signing: SigningOptions
        @Argument(help: ArgumentHelp("The device id (1–64 letters, digits, '-', '_', '.').", valueName: "device"))
        var device: String
        @Argument(help: ArgumentHelp("A version registered with `tandem publish`.", valueName: "version"))
        var version: String

        func run() async throws {
            let (device, version) = (self.device, self.version)
            try await RolloutCommand.withController(cloud, signing: signing) {
                try await $0.pin(device: device, version: version)
            }
            Console.log("pinned \(device) to \(version) in fleet \(cloud.fleet)")
        }
    }

    struct Unpin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release DEVICE's pin: it is assigned the version it should run now (production, or a canary's).",
            discussion: """
                Removes the device from {data-dir}/pins-{fleet}.json and assigns it the fleet's production version \
                (or, while a rollout is in canary and the device is in its cohort, the candidate) right away, as a \
                signed rollback if the pinned version is the newer release. Fails if the device is not pinned.
                """)

        @OptionGroup var cloud: CloudOptions
        @OptionGroup var signing: SigningOptions
        @Argument(help: ArgumentHelp("The pinned device id.", valueName: "device")) var device: String

        func run() async throws {
            let device = self.device
            let was = try await RolloutCommand.withController(cloud, signing: signing) {
                try await $0.unpin(device: device)
            }
            Console.log("unpinned \(device) (was on \(was)) in fleet \(cloud.fleet)")
        }
    }
}
