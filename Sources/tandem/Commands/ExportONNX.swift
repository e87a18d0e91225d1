import ArgumentParser
import Foundation
import TandemCore
import TandemONNX

/// `tandem export`: a `.tandem` artifact as an ONNX model.
struct ExportONNX: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a .tandem model (float32 or int8) as ONNX.",
        discussion: """
            The graph takes raw windows [N, window, channels] named `input` and gives `logits` [N, classes] \
            (softmax them for probabilities). The model's standardization is in the graph as Sub and Div \
            unless --no-standardization is given; then the graph takes standardized windows and the mean and \
            std are in the model's metadata. An int8 model becomes a QDQ graph with Tandem's scales and zero \
            points (docs/ONNX.md).
            """
    )

    @Argument(help: "Model artifact (.tandem).") var model: String
    @Option(help: "Where to write the ONNX model.") var onnx: String
    @Flag(inversion: .prefixedNo, help: "Put the standardization into the graph.") var standardization = true

    func run() throws {
        let artifact = try ModelArtifact.read(from: URL(fileURLWithPath: model))
        let exported: ONNXModel
        do {
            exported = try ONNXExporter.export(artifact, standardization: standardization)
        } catch {
            throw CommandFailure("\(model): \(error)")
        }
        let bytes = exported.serialized()
        try AtomicFile.write(bytes, to: URL(fileURLWithPath: onnx))
        print(
            "wrote \(onnx): \(artifact.manifest.name) \(artifact.manifest.version), \(artifact.manifest.numerics), "
                + "\(exported.graph.nodes.count) nodes, \(bytes.count) bytes")
    }
}
