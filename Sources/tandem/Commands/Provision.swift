import ArgumentParser
import Foundation
import TandemFleet
import TandemMQTT

/// `tandem provision device|cloud`: broker users and their rules, TLS certificates and agent configurations.
struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provision",
        abstract:
            "Create broker users and rules, TLS certificates and agent configurations for devices and cloud workers.",
        discussion: """
            Broker users live in mosquitto's dynamic-security file (plugin mosquitto_dynamic_security.so), which \
            checks what each user subscribes to and binds each device to its own client id; mosquitto's plain \
            acl_file does neither. Each user's entries are replaced when provisioned again, which rotates the \
            password. mosquitto reads the file at start: restart it afterwards (`systemctl restart mosquitto`). \
            cloud-config/mosquitto.conf shows a broker configuration that uses it, with TLS on 8883.
            """,
        subcommands: [ProvisionDevice.self, ProvisionCloud.self]
    )
}

/// Options shared by the provision subcommands: where the broker's files are.
struct BrokerFileOptions: ParsableArguments {
    @Option(
        name: .customLong("security-file"),
        help: ArgumentHelp(
            "The broker's dynamic-security file (mosquitto plugin_opt_config_file); created if missing.",
            valueName: "path"))
    var securityFile = "/etc/mosquitto/tandem-security.json"

    @Option(
        name: .customLong("tls-dir"),
        help: ArgumentHelp(
            "The fleet CA's directory (ca.crt, ca.key and the certificates it issues); the CA is created on first use.",
            valueName: "dir"))
    var tlsDirectory = "/etc/mosquitto/tandem-tls"
}

/// `tandem provision device NAME`.
struct ProvisionDevice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Provision an edge device: its broker user, ACL block and agent.yaml.",
        discussion: """
            The device's broker user is FLEET/NAME with a new random password, and FLEET/NAME is also the only \
            client id it may connect with; its rules let it publish only its own escalations, status, \
            predictions and labels, and subscribe to and receive only its own verdicts, its model assignment \
            and the fleet's model artifacts. Writes into --out: NAME.agent.yaml (the reference \
            edge-config/agent.yaml with device, fleet, broker and trusted keys filled in) and NAME.password \
            (mode 0600); with --client-certificate also NAME.crt and NAME.key, issued by the fleet CA. Copy them \
            to the device as /etc/tandem/agent.yaml and the paths given.
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
        help: ArgumentHelp(
            "CA certificate for mqtts, as a path on the device (the fleet CA's ca.crt copied there; "
                + "'system': the device's trust store).", valueName: "path"))
    var caFile = ""

    @Flag(
        name: .customLong("client-certificate"),
        help: "Also issue the device a client certificate from the fleet CA (--tls-dir), for brokers that require one.")
    var clientCertificate = false

    @Option(
        name: .customLong("device-certificate-dir"),
        help: ArgumentHelp(
            "With --client-certificate: the directory the certificate and key will be in on the device.",
            valueName: "dir"))
    var deviceCertificateDirectory = "/etc/tandem"

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
            let endpoint = try MQTTBrokerConfiguration.Endpoint(url: brokerURL)
            if clientCertificate && !endpoint.usesTLS {
                throw ValidationError("--client-certificate needs an mqtts:// --broker-url")
            }
        } catch let error as MQTTBrokerConfigurationError {
            throw ValidationError("--broker-url: \(error)")
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
        let provisioner = DeviceProvisioner(securityFile: broker.securityFile)
        var settings = DeviceProvisioner.AgentSettings(
            brokerURL: brokerURL, devicePasswordPath: devicePasswordPath, trustedKeys: trustedKeys, caFile: caFile)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        if clientCertificate {
            let authority = try FleetCertificateAuthority.openOrCreate(in: broker.tlsDirectory)
            let issued = try authority.issue(.client, commonName: "\(fleet)/\(name)", fileName: "\(fleet).\(name)")
            for (from, to) in [(issued.certificate, "\(name).crt"), (issued.key, "\(name).key")] {
                let target = (out as NSString).appendingPathComponent(to)
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.moveItem(atPath: from, toPath: target)
            }
            settings.certFile = (deviceCertificateDirectory as NSString).appendingPathComponent("\(name).crt")
            settings.keyFile = (deviceCertificateDirectory as NSString).appendingPathComponent("\(name).key")
            print(
                "client certificate: \(out)/\(name).crt and .key (copy to \(deviceCertificateDirectory) on the device)")
        }
        let device = try provisioner.provisionDevice(name, fleet: fleet, settings: settings, template: text)
        let configurationPath = (out as NSString).appendingPathComponent("\(name).agent.yaml")
        let passwordPath = (out as NSString).appendingPathComponent("\(name).password")
        try DeviceProvisioner.write(device.agentConfiguration, to: configurationPath, mode: 0o644)
        try DeviceProvisioner.write(device.password + "\n", to: passwordPath, mode: 0o600)
        print("broker user:  \(device.user), client id \(device.user) (security file \(broker.securityFile))")
        print("agent config: \(configurationPath)")
        print("password:     \(passwordPath) (copy to \(devicePasswordPath) on the device, mode 0600)")
        print("restart the broker so it reads the new entries")
    }
}

/// `tandem provision cloud NAME`.
struct ProvisionCloud: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloud",
        abstract:
            "Provision the cloud workers' broker user and, with --broker-host, the fleet CA and broker certificate.",
        discussion: """
            The user may read and write every tandem/v1 topic and join shared subscriptions on them; any number \
            of workers and tandem commands use it at once. Writes the password to --out/NAME.password (mode \
            0600) for tandem-cloud's --password-file. With --broker-host (repeatable: every DNS name or IP \
            address clients use), also creates the fleet CA in --tls-dir if it has none and issues the broker's \
            certificate there (broker.crt, broker.key); clients verify the broker against ca.crt \
            (--broker-ca-file, agent.yaml broker.caFile).
            """
    )

    @Argument(help: "Broker user name for the cloud workers: 1–64 letters, digits, '-', '_' or '.'.")
    var name: String

    @Option(help: ArgumentHelp("Directory for NAME.password.", valueName: "dir"))
    var out = "."

    @Option(
        name: .customLong("broker-host"),
        help: ArgumentHelp("A DNS name or IP address the broker's certificate names (repeatable).", valueName: "host"))
    var brokerHosts: [String] = []

    @OptionGroup var broker: BrokerFileOptions

    func run() throws {
        let provisioner = DeviceProvisioner(securityFile: broker.securityFile)
        let password = try provisioner.provisionCloud(user: name)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let passwordPath = (out as NSString).appendingPathComponent("\(name).password")
        try DeviceProvisioner.write(password + "\n", to: passwordPath, mode: 0o600)
        print("broker user: \(name) (security file \(broker.securityFile))")
        print("password:    \(passwordPath)")
        if !brokerHosts.isEmpty {
            let authority = try FleetCertificateAuthority.openOrCreate(in: broker.tlsDirectory)
            let issued = try authority.issue(
                .server(hosts: brokerHosts), commonName: brokerHosts[0], fileName: "broker")
            print("fleet CA:    \(authority.certificatePath) (every client's --broker-ca-file / broker.caFile)")
            print("broker TLS:  certfile \(issued.certificate), keyfile \(issued.key) (readable by the broker's user)")
        }
        print("restart the broker so it reads the new entries")
    }
}
