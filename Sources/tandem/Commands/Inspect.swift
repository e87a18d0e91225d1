import ArgumentParser
import Foundation
import TandemCore

/// `tandem inspect`: what is inside a model artifact.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a .tandem model: manifest, layers with output shapes, parameters, MACs and bytes.",
        discussion: "The file is fully verified (checksum and structure) before anything is shown."
    )

    @Argument(help: "Model artifact (.tandem).") var model: String
    @Flag(help: "Print the result as JSON on stdout.") var json = false

    struct Layer: Encodable {
        var index: Int
        var type: String
        var outputShape: [Int]
        var parameters: Int
        var macs: Int
    }

    struct Output: Encodable {
        var manifest: ModelManifest
        var layers: [Layer]
        var parameters: Int
        var macsPerWindow: Int
        var fileBytes: Int
        var tensorBytes: Int
        var signedBy: String?
    }

    func run() throws {
        let url = URL(fileURLWithPath: model)
        let artifact = try ModelArtifact.read(from: url)
        let manifest = artifact.manifest
        let shapes = try ModelShapes.trace(
            manifest.architecture, window: manifest.input.window, channels: manifest.input.channels,
            classes: manifest.classNames.count)
        var layers = [Layer]()
        for (i, spec) in manifest.architecture.enumerated() {
            let parameters = artifact.tensors.filter { $0.name.hasPrefix("\(i).") }.reduce(0) { $0 + $1.count }
            var macs = 0
            switch spec.type {
            case .conv1d: macs = shapes[i + 1].reduce(1, *) * (spec.kernel ?? 0) * shapes[i][1]
            case .dense: macs = shapes[i + 1][0] * shapes[i][0]
            default: break
            }
            layers.append(
                Layer(
                    index: i, type: spec.type.rawValue, outputShape: shapes[i + 1], parameters: parameters, macs: macs))
        }
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: model)[.size] as? Int) ?? 0
        let output = Output(
            manifest: manifest, layers: layers, parameters: layers.reduce(0) { $0 + $1.parameters },
            macsPerWindow: layers.reduce(0) { $0 + $1.macs }, fileBytes: fileBytes,
            tensorBytes: artifact.tensors.reduce(0) { $0 + $1.byteCount }, signedBy: artifact.signature?.keyIDHex)
        if json {
            try Console.printJSON(output)
            return
        }
        print(
            "\(manifest.name) \(manifest.version)\(manifest.parentVersion.map { " (from \($0))" } ?? "")  created \(manifest.createdAt)"
        )
        print(
            "numerics \(manifest.numerics), \(output.parameters) parameters, \(output.macsPerWindow) MACs/window, \(fileBytes) bytes on disk (\(output.tensorBytes) in tensors)"
        )
        print(
            "input \(manifest.input.window) samples × \(manifest.input.channels) channels, hop \(manifest.input.hop)"
                + (manifest.input.sampleRateHz.map { " at \($0) Hz" } ?? "")
                + (manifest.input.mean.isEmpty ? "" : ", standardized"))
        print("classes \(manifest.classNames.joined(separator: ", "))")
        print("signature: \(artifact.signature.map { "Ed25519, key \($0.keyIDHex)" } ?? "none")")
        if !manifest.metrics.isEmpty {
            print(
                "metrics: "
                    + manifest.metrics.keys.sorted().map { "\($0)=\(String(format: "%.4f", manifest.metrics[$0]!))" }
                    .joined(separator: "  "))
        }
        print("\n  #  layer              output        parameters        MACs")
        for l in layers {
            let shape = "[" + l.outputShape.map(String.init).joined(separator: ", ") + "]"
            print(
                String(
                    format: "%3d  %@ %@ %10d  %10d", l.index, l.type.padding(toLength: 18, withPad: " ", startingAt: 0),
                    shape.padding(toLength: 13, withPad: " ", startingAt: 0), l.parameters, l.macs))
        }
    }
}
