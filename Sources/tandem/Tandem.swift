import ArgumentParser
import TandemCore
import TandemTraining

/// The `tandem` command-line tool.
@main
struct Tandem: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tandem",
        abstract:
            "Train, compress, evaluate, sign, inspect, publish and roll out Tandem models and agent policies; revoke keys; provision devices; simulate sensor data.",
        subcommands: [
            Simulate.self, Train.self, Compress.self, Eval.self, Inspect.self, Keygen.self, Sign.self, RevokeKey.self,
            Publish.self, ImportONNX.self, ExportONNX.self,
            RolloutCommand.self, PolicyCommand.self, LabelCommand.self, Provision.self, Bench.self, Demo.self,
        ]
    )
}
