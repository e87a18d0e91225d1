extension ONNXModel {
    /// The model as the bytes of an `.onnx` file (tensors as `raw_data`, little-endian).
    public func serialized() -> [UInt8] {
        var w = ProtobufWriter()
        w.int(1, irVersion)
        if !producerName.isEmpty { w.string(2, producerName) }
        if !producerVersion.isEmpty { w.string(3, producerVersion) }
        w.message(7) { graph.write(to: &$0) }
        for (domain, version) in opsetImports.sorted(by: { $0.key < $1.key }) {
            w.message(8) { o in
                if !domain.isEmpty { o.string(1, domain) }
                o.int(2, version)
            }
        }
        for entry in metadata {
            w.message(14) { e in
                e.string(1, entry.key)
                e.string(2, entry.value)
            }
        }
        return w.bytes
    }
}

extension ONNXGraph {
    func write(to w: inout ProtobufWriter) {
        for node in nodes { w.message(1) { node.write(to: &$0) } }
        w.string(2, name)
        for tensor in initializers { w.message(5) { tensor.write(to: &$0) } }
        for input in inputs { w.message(11) { input.write(to: &$0) } }
        for output in outputs { w.message(12) { output.write(to: &$0) } }
    }
}

extension ONNXNode {
    func write(to w: inout ProtobufWriter) {
        for input in inputs { w.string(1, input) }
        for output in outputs { w.string(2, output) }
        if !name.isEmpty { w.string(3, name) }
        w.string(4, opType)
        for attribute in attributes { w.message(5) { attribute.write(to: &$0) } }
        if !domain.isEmpty { w.string(7, domain) }
    }
}

extension ONNXAttribute {
    func write(to w: inout ProtobufWriter) {
        w.string(1, name)
        switch value {
        case .float(let f):
            w.float(2, f)
            w.int(20, 1)
        case .int(let i):
            w.int(3, i)
            w.int(20, 2)
        case .string(let s):
            w.bytes(4, s)
            w.int(20, 3)
        case .tensor(let t):
            w.message(5) { t.write(to: &$0) }
            w.int(20, 4)
        case .floats(let f):
            w.packedFloats(7, f)
            w.int(20, 6)
        case .ints(let i):
            w.packedInts(8, i)
            w.int(20, 7)
        case .strings(let s):
            for item in s { w.bytes(9, item) }
            w.int(20, 8)
        case .other:
            break
        }
    }
}

extension ONNXValueInfo {
    func write(to w: inout ProtobufWriter) {
        w.string(1, name)
        w.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, Int64(elementType))
                if let shape {
                    tensor.message(2) { s in
                        for dim in shape {
                            s.message(1) { d in
                                switch dim {
                                case .value(let n): d.int(1, Int64(n))
                                case .parameter(let p): d.string(2, p)
                                case .unknown: break
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension ONNXTensor {
    func write(to w: inout ProtobufWriter) {
        w.packedInts(1, dims.map { Int64($0) })
        w.int(2, Int64(values.dataType.rawValue))
        w.string(8, name)
        var raw = [UInt8]()
        raw.reserveCapacity(values.count * values.dataType.width)
        func append(_ word: UInt64, _ width: Int) {
            for b in 0..<width { raw.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(b)))) }
        }
        switch values {
        case .float(let v): for x in v { append(UInt64(x.bitPattern), 4) }
        case .double(let v): for x in v { append(x.bitPattern, 8) }
        case .int64(let v): for x in v { append(UInt64(bitPattern: x), 8) }
        case .int32(let v): for x in v { append(UInt64(UInt32(bitPattern: x)), 4) }
        case .int8(let v): for x in v { raw.append(UInt8(bitPattern: x)) }
        case .uint8(let v): raw.append(contentsOf: v)
        }
        w.bytes(9, raw)
    }
}
