import ArgumentParser
import Foundation
import Synchronization
import TandemCore
import TandemMQTT

/// `tandem bench fleet-devices` (hidden): a share of `tandem bench fleet`'s emulated devices, in a process of its
/// own.
///
/// Why several processes: TandemMQTT runs libmosquitto's `mosquitto_loop`, which waits with `pselect` and refuses
/// (`MOSQ_ERR_INVAL`) a client whose socket or internal socket pair is numbered 1024 (`FD_SETSIZE`) or higher.
/// Each client holds three descriptors, so one process carries about 300 clients, whatever its open-file limit.
///
/// It writes one line per event on standard output, each a single `write(2)`: `ready COUNT SECONDS` once every
/// device is connected, has its status acknowledged and is subscribed; `active DEVICE VERSION NANOSECONDS`
/// (`CLOCK_MONOTONIC`, the same clock in every process) when a device's status with a new version is
/// acknowledged; `rejected DEVICE REASON`; `counts ESCALATIONS VERDICTS` every second. It runs until it is
/// signalled (the parent starts it under `setpriv --pdeathsig KILL`).
struct BenchFleetDevices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-devices",
        abstract: "A share of the devices `tandem bench fleet` emulates (started by it).",
        shouldDisplay: false)

    @Option(help: "The broker.") var brokerURL: String
    @Option(help: "The fleet.") var fleet = BenchFleet.fleet
    @Option(help: "Index of the first device.") var first: Int
    @Option(help: "Devices in this process.") var count: Int
    @Option(help: "Digits of the device numbers.") var width: Int
    @Option(help: "The version every device serves at start.") var version: String
    @Option(help: "The public key the devices trust.") var trustedKey: String
    @Option(help: "Escalations per second each device sends (0: none).") var escalationRate = 0.2
    @Option(help: "Devices connecting at once.") var connectConcurrency = 64

    func run() async throws {
        let keys = try TrustedKeys.read(paths: [trustedKey])
        let report: @Sendable (String) -> Void = { line in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        let devices = try (first..<(first + count)).map {
            try BenchFleetDevice(
                fleet: fleet, device: BenchFleet.deviceName($0, width: width), version: version, keys: keys,
                brokerURL: brokerURL, report: report)
        }
        let start = monotonicNanoseconds()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, device) in devices.enumerated() {
                if index >= connectConcurrency { try await group.next() }
                group.addTask { try await device.start() }
            }
            try await group.waitForAll()
        }
        report(String(format: "ready %d %.3f", devices.count, Double(monotonicNanoseconds() - start) / 1e9))
        let input = BenchFleetSetup.edgeInput
        var generator = SeededGenerator(seed: UInt64(first) + 7)
        let window = (0..<(input.window * input.channels)).map { _ in generator.nextGaussian() }
        let period = escalationRate > 0 ? 1e9 / (escalationRate * Double(devices.count)) : 0
        let escalations = Task {
            guard period > 0 else { return }
            let start = monotonicNanoseconds()
            var k = 0
            while !Task.isCancelled {
                let due = start + UInt64(Double(k) * period)
                let now = monotonicNanoseconds()
                if due > now { try? await Task.sleep(for: .nanoseconds(Int(due - now))) }
                try? devices[k % devices.count].escalate(window: window, input: input)
                k += 1
            }
        }
        defer { escalations.cancel() }
        while true {
            try await Task.sleep(for: .seconds(1))
            let snapshots = devices.map(\.snapshot)
            report("counts \(snapshots.map(\.escalations).reduce(0, +)) \(snapshots.map(\.verdicts).reduce(0, +))")
        }
    }
}
