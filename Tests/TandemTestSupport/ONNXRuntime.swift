import Foundation

/// ONNX Runtime, run through `scripts/onnx-run.py` with python3: the independent implementation ONNX import and
/// export are checked against. `scripts/test` installs onnxruntime when it is missing.
public enum ONNXRuntime {
    /// The repository's root directory.
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The ONNX fixtures `scripts/onnx-fixtures.py` writes.
    public static let fixtures = repository.appendingPathComponent("Tests/TandemONNXTests/Fixtures")

    /// A failure to run the model, with what python3 wrote.
    public struct Failure: Error, CustomStringConvertible {
        /// python3's standard error.
        public var description: String
    }

    /// Runs `model` on float32 `input` of `shape` and returns the first output (flat) and its shape.
    public static func run(model: URL, input: [Float], shape: [Int], scratch: URL) throws -> (
        values: [Float], shape: [Int]
    ) {
        let inputURL = scratch.appendingPathComponent("ort-input-\(UUID().uuidString).f32")
        let outputURL = scratch.appendingPathComponent("ort-output-\(UUID().uuidString).f32")
        defer {
            try? FileManager.default.removeItem(at: inputURL)
            try? FileManager.default.removeItem(at: outputURL)
        }
        try input.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: inputURL)
        let result = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "python3", repository.appendingPathComponent("scripts/onnx-run.py").path, model.path, inputURL.path,
                outputURL.path, shape.map(String.init).joined(separator: ","),
            ])
        guard result.status == 0 else { throw Failure(description: result.standardError) }
        let data = try Data(contentsOf: outputURL)
        let values = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let outputShape = result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            .split(separator: ",").compactMap { Int($0) }
        return (values, outputShape)
    }

    /// Decompresses an `.xz` fixture into `directory` (python3's lzma, so no xz binary is needed).
    public static func decompress(_ source: URL, into directory: URL) throws -> URL {
        let target = directory.appendingPathComponent(source.deletingPathExtension().lastPathComponent)
        let result = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "python3", "-c",
                "import lzma, sys; open(sys.argv[2], 'wb').write(lzma.open(sys.argv[1]).read())", source.path,
                target.path,
            ])
        guard result.status == 0 else { throw Failure(description: result.standardError) }
        return target
    }
}
