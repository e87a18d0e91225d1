import ArgumentParser
import Foundation
import TandemFleet

/// `tandem provision device|cloud`: broker credentials, ACL entries and agent configurations.
struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provision",
        abstract: "Create broker credentials, ACL entries and agent configurations for devices and cloud workers.",
        discussion: """
            Edits the broker's password file and ACL file in place (atomically; each user's entries are \
            replaced when provisioned again, which rotates the password). mosquitto reads them at start \
            and on SIGHUP: run `systemctl reload mosquitto` (or send SIGHUP) afterwards. \
            cloud-config/mosquitto.conf shows a broker configuration that uses these files.
            """,
        subcommands: [ProvisionDevice.self, ProvisionCloud.self]
    )
}

/// Options shared by the provision subcommands: where the broker's files are.
struct BrokerFileOptions: ParsableArguments {
    @Option(
        name: .customLong("password-file"),
        help: ArgumentHelp(
            "The broker's password file (mosquitto password_file); created if missing.", valueName: "path"))
    var passwordFile = "/etc/mosquitto/tandem.passwd"

    @Option(
        name: .customLong("acl-file"),
        help: ArgumentHelp("The broker's ACL file (mosquitto acl_file); created if missing.", valueName: "path"))
    var aclFile = "/etc/mosquitto/tandem.acl"
}

/// `tandem provision device NAME`.
struct ProvisionDevice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Provision an edge device: its broker user, ACL block and agent.yaml.",
        discussion: """
            The device's broker user is FLEET/NAME with a new random password; its ACL lets it write only \
            its own escalations, status, predictions and labels, and read only its own verdicts, its model \
            assignment and the fleet's model artifacts. Writes into --out: NAME.agent.yaml (the reference \
            edge-config/agent.yaml with device, fleet, broker and trusted keys filled in) and NAME.password \
            (mode 0600). Copy them to the device as /etc/tandem/agent.yaml and the --device-password-path.
            """
    )

    @Argument(help: "Device id: 1–64 letters, digits, '-', '_' or '.'.")
    var name: String

    @Option(help: "Fleet name (the second topic level).")
    var fleet = "default"

    @Option(name: .customLong("broker-url"), help: "The broker URL the device connects to (mqtt:// or mqtts://).")
    var brokerURL: String

    @Option(
        name: .customLong("trusted-key"),
        help: ArgumentHelp(
            "A public key file path, as it will be on the device, whose model signatures the agent accepts "
                + "(repeatable; at least one).", valueName: "path"))
    var trustedKeys: [String] = []

    @Option(
        name: .customLong("device-password-path"),
        help: ArgumentHelp("Where the password file will be on the device.", valueName: "path"))
    var devicePasswordPath = "/etc/tandem/broker.password"

    @Option(
        name: .customLong("ca-file"),
        help: ArgumentHelp("CA certificate for mqtts, as a path on the device.", valueName: "path"))
    var caFile = ""

    @Option(
        help: ArgumentHelp(
            "The agent.yaml template (default: edge-config/agent.yaml here, else /etc/tandem/agent.yaml).",
            valueName: "path"))
    var template: String?

    @Option(help: ArgumentHelp("Directory for NAME.agent.yaml and NAME.password.", valueName: "dir"))
    var out = "."

    @OptionGroup var broker: BrokerFileOptions

    func validate() throws {
        if trustedKeys.isEmpty {
            throw ValidationError("--trusted-key is required: a provisioned agent only runs signed models")
        }
        do {
            try DeviceProvisioner.validateName(name, what: "device")
            try DeviceProvisioner.validateName(fleet, what: "fleet")
        } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        let templatePath =
            template
            ?? ["edge-config/agent.yaml", "/etc/tandem/agent.yaml"].first {
                FileManager.default.fileExists(atPath: $0)
            }
        guard let templatePath, let text = try? String(contentsOfFile: templatePath, encoding: .utf8) else {
            throw ValidationError(
                "no agent.yaml template: pass --template (the reference is edge-config/agent.yaml)")
        }
        let provisioner = DeviceProvisioner(passwordFile: broker.passwordFile, aclFile: broker.aclFile)
        let settings = DeviceProvisioner.AgentSettings(
            brokerURL: brokerURL, devicePasswordPath: devicePasswordPath, trustedKeys: trustedKeys, caFile: caFile)
        let device = try provisioner.provisionDevice(name, fleet: fleet, settings: settings, template: text)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let configurationPath = (out as NSString).appendingPathComponent("\(name).agent.yaml")
        let passwordPath = (out as NSString).appendingPathComponent("\(name).password")
        try DeviceProvisioner.write(device.agentConfiguration, to: configurationPath, mode: 0o644)
        try DeviceProvisioner.write(device.password + "\n", to: passwordPath, mode: 0o600)
        print("broker user:  \(device.user) (password file \(broker.passwordFile), ACL \(broker.aclFile))")
        print("agent config: \(configurationPath)")
        print("password:     \(passwordPath) (copy to \(devicePasswordPath) on the device, mode 0600)")
        print("reload the broker (SIGHUP) so it reads the new entries")
    }
}

/// `tandem provision cloud NAME`.
struct ProvisionCloud: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloud",
        abstract: "Provision a cloud worker's broker user (read and write on tandem/v1/#).",
        discussion: "Writes the password to --out/NAME.password (mode 0600) for tandem-cloud's broker settings."
    )

    @Argument(help: "Broker user name for the cloud workers: 1–64 letters, digits, '-', '_' or '.'.")
    var name: String

    @Option(help: ArgumentHelp("Directory for NAME.password.", valueName: "dir"))
    var out = "."

    @OptionGroup var broker: BrokerFileOptions

    func run() throws {
        let provisioner = DeviceProvisioner(passwordFile: broker.passwordFile, aclFile: broker.aclFile)
        let password = try provisioner.provisionCloud(user: name)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let passwordPath = (out as NSString).appendingPathComponent("\(name).password")
        try DeviceProvisioner.write(password + "\n", to: passwordPath, mode: 0o600)
        print("broker user: \(name) (password file \(broker.passwordFile), ACL \(broker.aclFile))")
        print("password:    \(passwordPath)")
        print("reload the broker (SIGHUP) so it reads the new entries")
    }
}
