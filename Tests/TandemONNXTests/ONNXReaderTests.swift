import Foundation
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemONNX

/// The wire-format reader and writer: what PyTorch writes reads back, what we write reads back the same, and
/// malformed bytes are refused with an error, never a crash.
struct ONNXReaderTests {
    func fixture(_ name: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: ONNXRuntime.fixtures.appendingPathComponent(name)))
    }

    @Test("a PyTorch export reads: opset, input shape with a symbolic batch, nodes, initializers with raw data")
    func readsPyTorchExport() throws {
        let model = try ONNXModel(bytes: try fixture("fcn.onnx"))
        #expect(model.defaultOpset == 17 && model.producerName == "pytorch")
        let input = try #require(model.graph.inputs.first)
        #expect(input.shape == [.parameter("N"), .value(3), .value(64)])
        let ops = model.graph.nodes.map(\.opType)
        #expect(ops.filter { $0 == "Conv" }.count == 3 && ops.filter { $0 == "BatchNormalization" }.count == 3)
        let conv = try #require(model.graph.nodes.first { $0.opType == "Conv" })
        #expect(conv.attribute("kernel_shape") == .ints([7]) && conv.attribute("pads") == .ints([3, 3]))
        let weight = try #require(model.graph.initializers.first { $0.name == conv.inputs[1] })
        #expect(weight.dims == [16, 3, 7] && weight.floats?.count == 16 * 3 * 7)
    }

    @Test("write then read gives the same model, and the bytes are stable")
    func roundTrip() throws {
        let model = try ONNXModel(bytes: try fixture("keras_style.onnx"))
        let bytes = model.serialized()
        let again = try ONNXModel(bytes: bytes)
        #expect(again == model)
        #expect(again.serialized() == bytes)
    }

    func refuses(_ bytes: [UInt8]) -> ONNXError? {
        do {
            _ = try ONNXModel(bytes: bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test("hand-made malformed messages are refused with the reason and offset")
    func malformed() throws {
        #expect(refuses([])?.message == "the file is empty")
        // Field 1 (ir_version) with a varint that never ends.
        #expect(refuses([0x08, 0xFF, 0xFF])?.message == "truncated varint")
        #expect(refuses([0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01])?.message.contains("64 bits") == true)
        // Field 7 (graph) claiming 100 bytes with 2 left.
        let past = refuses([0x08, 0x08, 0x3A, 100, 0x00, 0x00])
        #expect(past?.message.contains("runs past the end") == true && past?.offset == 3, "\(String(describing: past))")
        // Wire type 3 (start group).
        #expect(refuses([0x0B])?.message.contains("wire type 3") == true)
        // Field number 0.
        #expect(refuses([0x00, 0x01])?.message.contains("field number 0") == true)
        // ir_version with the wrong wire type.
        #expect(refuses([0x0A, 0x00])?.message.contains("ModelProto.ir_version") == true)
        #expect(refuses([0x08, 0x08])?.message.contains("no graph") == true)

        func model(tensor: (inout ProtobufWriter) -> Void) -> [UInt8] {
            var w = ProtobufWriter()
            w.int(1, 8)
            w.message(7) { g in g.message(5, tensor) }
            return w.bytes
        }
        let short = refuses(
            model { t in
                t.packedInts(1, [2, 3])
                t.int(2, 1)
                t.bytes(9, [UInt8](repeating: 0, count: 20))
            })
        #expect(short?.message.contains("20 bytes of raw data, dims [2, 3] need 24") == true)
        let huge = refuses(
            model { t in
                t.packedInts(1, [1 << 30, 1 << 30])
                t.int(2, 1)
            })
        #expect(huge?.message.contains("larger than any file") == true)
        let negative = refuses(model { t in t.packedInts(1, [-1]) })
        #expect(negative?.message.contains("dimension -1") == true)
        let external = refuses(
            model { t in
                t.int(2, 1)
                t.int(14, 1)
            })
        #expect(external?.code == .unsupported && external?.message.contains("external file") == true)
        let int8Range = refuses(
            model { t in
                t.packedInts(1, [1])
                t.int(2, 3)
                t.packedInts(5, [300])
            })
        #expect(int8Range?.message.contains("outside its element type") == true)
    }

    @Test("every 37th prefix and 3,000 single-byte corruptions of a real model are refused or read, never a crash")
    func corruptions() throws {
        let bytes = try fixture("cnn_flatten.onnx")
        var refused = 0
        for length in stride(from: 0, to: bytes.count, by: 37) where refuses(Array(bytes[..<length])) != nil {
            refused += 1
        }
        #expect(refused > 0)
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<3000 {
            var copy = bytes
            let i = Int(generator.next() % UInt64(copy.count))
            copy[i] = UInt8(truncatingIfNeeded: generator.next())
            if let model = try? ONNXModel(bytes: copy) {
                // Whatever reads must also import or be refused cleanly.
                _ = try? ONNXImporter.importModel(model)
            }
        }
    }
}
