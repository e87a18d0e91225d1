import ArgumentParser

/// `tandem bench …`: throughput and latency measurements, recorded in BENCHMARKS.md.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput and latency of Tandem's parts (see BENCHMARKS.md).",
        subcommands: [
            BenchModel.self, BenchInt8.self, BenchMQTT.self, BenchCloud.self, BenchFleet.self, BenchFleetDevices.self,
        ]
    )
}
