import ArgumentParser
import TandemEdge

/// The `tandem-edge` agent.
@main
struct TandemEdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tandem-edge",
        abstract: "Classify sensor windows on an edge box; escalate unsure ones to the cloud over MQTT."
    )

    func run() async throws {
        print("tandem-edge: the agent is not built yet")
    }
}
