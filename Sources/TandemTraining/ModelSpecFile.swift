import Foundation
import TandemCore
import Yams

/// A model spec that cannot be read or does not make sense; the message names the file and key.
public struct ModelSpecError: Error, CustomStringConvertible, Sendable {
    /// The offending key path (`layers[2].kernel`, `training.epochs`), or the file.
    public var key: String
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    /// `key: message`.
    public var description: String { "\(key): \(message)" }
}

/// A model spec file (`cloud-config/models/*.yaml`): the layers, the input window and training defaults.
///
/// See docs/MODEL-SPEC.md for the format. Example:
/// ```yaml
/// name: edge
/// input: {window: 128, hop: 64}
/// layers:
///   - {type: conv1d, filters: 16, kernel: 8, stride: 2, padding: same}
///   - {type: relu}
///   - {type: globalavgpool1d}
///   - {type: dense, units: classes}
/// training: {epochs: 100, batch_size: 16, optimizer: adam, learning_rate: 0.001}
/// ```
public struct ModelSpecFile: Decodable, Sendable {
    /// Window settings of a spec.
    public struct Input: Decodable, Sendable {
        /// Samples per window (default 128).
        public var window: Int?
        /// Samples between window starts (default half the window).
        public var hop: Int?
    }

    /// Model name, stored in the artifact.
    public var name: String
    /// Window length and hop; command-line flags override them.
    public var input: Input?
    /// Layers in order.
    public var layers: [LayerSpec]
    /// Training settings; absent keys keep `TrainingConfiguration` defaults.
    public var training: TrainingConfiguration?

    /// Reads and validates a spec file.
    ///
    /// - Throws: `ModelSpecError` naming the file and the key that is wrong.
    public static func load(contentsOf url: URL) throws -> ModelSpecFile {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ModelSpecError(key: url.path, message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text, source: url.path)
    }

    /// Parses and validates spec text; `source` names it in errors.
    public static func parse(_ text: String, source: String = "spec") throws -> ModelSpecFile {
        let spec: ModelSpecFile
        do {
            spec = try YAMLDecoder().decode(ModelSpecFile.self, from: text)
        } catch let error as DecodingError {
            throw ModelSpecError(key: source, message: describe(error))
        } catch {
            throw ModelSpecError(key: source, message: "not valid YAML: \(error)")
        }
        try spec.validate(source: source)
        return spec
    }

    private func validate(source: String) throws {
        guard !layers.isEmpty else { throw ModelSpecError(key: "\(source): layers", message: "no layers") }
        if let w = input?.window, w < 1 {
            throw ModelSpecError(key: "\(source): input.window", message: "must be positive")
        }
        if let h = input?.hop, h < 1 { throw ModelSpecError(key: "\(source): input.hop", message: "must be positive") }
        for (i, layer) in layers.enumerated() {
            let allowed: Set<String>
            switch layer.type {
            case .conv1d: allowed = ["filters", "kernel", "stride", "dilation", "padding", "bias"]
            case .dense: allowed = ["units", "bias"]
            case .maxpool1d, .avgpool1d: allowed = ["kernel", "stride", "dilation", "padding"]
            case .batchnorm1d: allowed = ["momentum", "epsilon"]
            case .dropout: allowed = ["rate"]
            case .relu, .globalavgpool1d, .flatten: allowed = []
            }
            let used = layer.setKeys
            if let extra = used.subtracting(allowed).sorted().first {
                throw ModelSpecError(
                    key: "\(source): layers[\(i)].\(extra)", message: "\(layer.type.rawValue) does not take `\(extra)`")
            }
            if layer.type == .conv1d && layer.filters == nil {
                throw ModelSpecError(key: "\(source): layers[\(i)].filters", message: "conv1d needs `filters`")
            }
            if [.conv1d, .maxpool1d, .avgpool1d].contains(layer.type) && layer.kernel == nil {
                throw ModelSpecError(
                    key: "\(source): layers[\(i)].kernel", message: "\(layer.type.rawValue) needs `kernel`")
            }
        }
        try training?.validate()
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing key `\(path(context)).\(key.stringValue)`"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "at `\(path(context))`: \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

extension LayerSpec {
    /// The option keys this spec sets (for rejecting keys a layer does not use).
    var setKeys: Set<String> {
        var keys = Set<String>()
        if filters != nil { keys.insert("filters") }
        if units != nil { keys.insert("units") }
        if kernel != nil { keys.insert("kernel") }
        if stride != nil { keys.insert("stride") }
        if dilation != nil { keys.insert("dilation") }
        if padding != nil { keys.insert("padding") }
        if rate != nil { keys.insert("rate") }
        if momentum != nil { keys.insert("momentum") }
        if epsilon != nil { keys.insert("epsilon") }
        if bias != nil { keys.insert("bias") }
        return keys
    }
}
