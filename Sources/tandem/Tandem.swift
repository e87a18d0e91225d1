import ArgumentParser
import TandemCore
import TandemTraining

/// The `tandem` command-line tool.
@main
struct Tandem: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tandem",
        abstract: "Train, compress, evaluate, sign and inspect Tandem models; simulate sensor data.",
        subcommands: [Bench.self, Simulate.self]
    )
}
