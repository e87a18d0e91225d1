extension ONNXModel {
    /// The most bytes a model file may have (ONNX's protobuf files are limited to 2 GiB; Tandem's models are far
    /// smaller).
    public static let maximumFileSize = 1 << 30
    /// The most dimensions a tensor or value may have.
    public static let maximumRank = 8

    /// Reads a model from the bytes of an `.onnx` file.
    ///
    /// - Throws: `ONNXError.malformed` with the byte offset for anything the wire format or the ONNX schema
    ///   does not allow (truncated fields, lengths past their message, wrong wire types, invalid UTF-8, tensor
    ///   data that does not match its dims); `ONNXError.unsupported` for valid files Tandem does not read
    ///   (external tensor data, string tensors).
    public init(bytes: [UInt8]) throws(ONNXError) {
        guard !bytes.isEmpty else { throw ONNXError(.malformed, "the file is empty", offset: 0) }
        guard bytes.count <= Self.maximumFileSize else {
            throw ONNXError(.malformed, "the file has \(bytes.count) bytes, more than \(Self.maximumFileSize)")
        }
        var reader = ProtobufReader(bytes: bytes)
        var irVersion: Int64?
        var opsets = [String: Int64]()
        var producerName = "", producerVersion = ""
        var graph: ONNXGraph?
        var metadata = [ONNXMetadataEntry]()
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.expect(type, .varint, field: "ModelProto.ir_version")
                irVersion = try reader.int64()
            case 2:
                try reader.expect(type, .lengthDelimited, field: "ModelProto.producer_name")
                producerName = try reader.string()
            case 3:
                try reader.expect(type, .lengthDelimited, field: "ModelProto.producer_version")
                producerVersion = try reader.string()
            case 7:
                try reader.expect(type, .lengthDelimited, field: "ModelProto.graph")
                guard graph == nil else { throw reader.error("ModelProto has more than one graph") }
                var inner = try reader.message()
                graph = try ONNXGraph(reading: &inner)
            case 8:
                try reader.expect(type, .lengthDelimited, field: "ModelProto.opset_import")
                var inner = try reader.message()
                var domain = "", version: Int64?
                while let (f, t) = try inner.nextField() {
                    switch f {
                    case 1:
                        try inner.expect(t, .lengthDelimited, field: "OperatorSetIdProto.domain")
                        domain = try inner.string()
                    case 2:
                        try inner.expect(t, .varint, field: "OperatorSetIdProto.version")
                        version = try inner.int64()
                    default: try inner.skip(t)
                    }
                }
                guard let version else { throw inner.error("an opset_import has no version") }
                opsets[domain] = version
            case 14:
                try reader.expect(type, .lengthDelimited, field: "ModelProto.metadata_props")
                var inner = try reader.message()
                var entry = ONNXMetadataEntry(key: "", value: "")
                while let (f, t) = try inner.nextField() {
                    switch f {
                    case 1:
                        try inner.expect(t, .lengthDelimited, field: "StringStringEntryProto.key")
                        entry.key = try inner.string()
                    case 2:
                        try inner.expect(t, .lengthDelimited, field: "StringStringEntryProto.value")
                        entry.value = try inner.string()
                    default: try inner.skip(t)
                    }
                }
                metadata.append(entry)
            default:
                try reader.skip(type)
            }
        }
        guard let irVersion else { throw ONNXError(.malformed, "the file has no ir_version: not an ONNX model") }
        guard let graph else { throw ONNXError(.malformed, "the model has no graph") }
        self.init(
            irVersion: irVersion, opsetImports: opsets, producerName: producerName, producerVersion: producerVersion,
            graph: graph, metadata: metadata)
    }
}

extension ONNXGraph {
    init(reading reader: inout ProtobufReader) throws(ONNXError) {
        var name = ""
        var nodes = [ONNXNode](), initializers = [ONNXTensor]()
        var inputs = [ONNXValueInfo](), outputs = [ONNXValueInfo]()
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.expect(type, .lengthDelimited, field: "GraphProto.node")
                var inner = try reader.message()
                nodes.append(try ONNXNode(reading: &inner))
            case 2:
                try reader.expect(type, .lengthDelimited, field: "GraphProto.name")
                name = try reader.string()
            case 5:
                try reader.expect(type, .lengthDelimited, field: "GraphProto.initializer")
                var inner = try reader.message()
                initializers.append(try ONNXTensor(reading: &inner))
            case 11, 12:
                try reader.expect(type, .lengthDelimited, field: field == 11 ? "GraphProto.input" : "GraphProto.output")
                var inner = try reader.message()
                let info = try ONNXValueInfo(reading: &inner)
                if field == 11 { inputs.append(info) } else { outputs.append(info) }
            case 15:
                throw ONNXError(.unsupported, "sparse initializers are not supported", offset: reader.position)
            default:
                try reader.skip(type)
            }
        }
        self.init(name: name, nodes: nodes, initializers: initializers, inputs: inputs, outputs: outputs)
    }
}

extension ONNXNode {
    init(reading reader: inout ProtobufReader) throws(ONNXError) {
        var name = "", opType = "", domain = ""
        var inputs = [String](), outputs = [String](), attributes = [ONNXAttribute]()
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1, 2, 3, 4, 7:
                try reader.expect(type, .lengthDelimited, field: "NodeProto field \(field)")
                let text = try reader.string()
                switch field {
                case 1: inputs.append(text)
                case 2: outputs.append(text)
                case 3: name = text
                case 4: opType = text
                default: domain = text
                }
            case 5:
                try reader.expect(type, .lengthDelimited, field: "NodeProto.attribute")
                var inner = try reader.message()
                attributes.append(try ONNXAttribute(reading: &inner))
            default:
                try reader.skip(type)
            }
        }
        guard !opType.isEmpty else { throw reader.error("node '\(name)' has no op_type") }
        self.init(name: name, opType: opType, domain: domain, inputs: inputs, outputs: outputs, attributes: attributes)
    }
}

extension ONNXAttribute {
    init(reading reader: inout ProtobufReader) throws(ONNXError) {
        var name = ""
        var declared: Int64?
        var f: Float?, i: Int64?, s: [UInt8]?, t: ONNXTensor?
        var floats = [Float](), ints = [Int64](), strings = [[UInt8]]()
        var other: Int64?
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.expect(type, .lengthDelimited, field: "AttributeProto.name")
                name = try reader.string()
            case 20:
                try reader.expect(type, .varint, field: "AttributeProto.type")
                declared = try reader.int64()
            case 2:
                try reader.expect(type, .fixed32, field: "AttributeProto.f")
                f = try reader.float()
            case 3:
                try reader.expect(type, .varint, field: "AttributeProto.i")
                i = try reader.int64()
            case 4:
                try reader.expect(type, .lengthDelimited, field: "AttributeProto.s")
                s = Array(reader.bytes[try reader.lengthDelimited()])
            case 5:
                try reader.expect(type, .lengthDelimited, field: "AttributeProto.t")
                var inner = try reader.message()
                t = try ONNXTensor(reading: &inner)
            case 7: try reader.repeatedFloat(type, into: &floats)
            case 8: try reader.repeatedInt64(type, into: &ints)
            case 9:
                try reader.expect(type, .lengthDelimited, field: "AttributeProto.strings")
                strings.append(Array(reader.bytes[try reader.lengthDelimited()]))
            case 6, 10, 11, 14, 15, 22, 23:
                // Graphs, tensors lists, type protos and sparse tensors: not parsed (no recursion), only noted.
                other = Int64(field)
                try reader.skip(type)
            default:
                try reader.skip(type)
            }
        }
        let value: Value
        switch declared {
        case 1?: value = .float(f ?? 0)
        case 2?: value = .int(i ?? 0)
        case 3?: value = .string(s ?? [])
        case 4?:
            guard let t else { throw reader.error("tensor attribute '\(name)' has no tensor") }
            value = .tensor(t)
        case 6?: value = .floats(floats)
        case 7?: value = .ints(ints)
        case 8?: value = .strings(strings)
        case let kind?: value = .other(kind)
        case nil:
            // Files from before IR version 0.0.2 may leave the type out: infer it from the field present.
            if let f {
                value = .float(f)
            } else if let i {
                value = .int(i)
            } else if let s {
                value = .string(s)
            } else if let t {
                value = .tensor(t)
            } else if !floats.isEmpty {
                value = .floats(floats)
            } else if !ints.isEmpty {
                value = .ints(ints)
            } else if !strings.isEmpty {
                value = .strings(strings)
            } else {
                value = .other(other ?? 0)
            }
        }
        self.init(name, value)
    }
}

extension ONNXValueInfo {
    init(reading reader: inout ProtobufReader) throws(ONNXError) {
        var name = ""
        var elementType: Int32 = 0
        var shape: [Dimension]?
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1:
                try reader.expect(type, .lengthDelimited, field: "ValueInfoProto.name")
                name = try reader.string()
            case 2:
                try reader.expect(type, .lengthDelimited, field: "ValueInfoProto.type")
                var typeProto = try reader.message()
                while let (f, t) = try typeProto.nextField() {
                    guard f == 1 else {
                        try typeProto.skip(t)
                        continue
                    }
                    try typeProto.expect(t, .lengthDelimited, field: "TypeProto.tensor_type")
                    var tensorType = try typeProto.message()
                    while let (g, u) = try tensorType.nextField() {
                        switch g {
                        case 1:
                            try tensorType.expect(u, .varint, field: "TypeProto.Tensor.elem_type")
                            elementType = try tensorType.int32()
                        case 2:
                            try tensorType.expect(u, .lengthDelimited, field: "TypeProto.Tensor.shape")
                            var shapeProto = try tensorType.message()
                            var dims = [Dimension]()
                            while let (h, v) = try shapeProto.nextField() {
                                guard h == 1 else {
                                    try shapeProto.skip(v)
                                    continue
                                }
                                try shapeProto.expect(v, .lengthDelimited, field: "TensorShapeProto.dim")
                                var dim = try shapeProto.message()
                                var value = Dimension.unknown
                                while let (k, w) = try dim.nextField() {
                                    switch k {
                                    case 1:
                                        try dim.expect(w, .varint, field: "Dimension.dim_value")
                                        let start = dim.position
                                        let n = try dim.int64()
                                        guard n >= 0, n <= Int64(Int32.max) else {
                                            throw dim.error("dimension \(n) of '\(name)' is out of range", at: start)
                                        }
                                        value = .value(Int(n))
                                    case 2:
                                        try dim.expect(w, .lengthDelimited, field: "Dimension.dim_param")
                                        value = .parameter(try dim.string())
                                    default: try dim.skip(w)
                                    }
                                }
                                dims.append(value)
                                guard dims.count <= ONNXModel.maximumRank else {
                                    throw shapeProto.error(
                                        "'\(name)' has more than \(ONNXModel.maximumRank) dimensions")
                                }
                            }
                            shape = dims
                        default: try tensorType.skip(u)
                        }
                    }
                }
            default:
                try reader.skip(type)
            }
        }
        self.init(name: name, elementType: elementType, shape: shape)
    }
}

extension ONNXTensor {
    init(reading reader: inout ProtobufReader) throws(ONNXError) {
        let start = reader.position
        var name = ""
        var dims = [Int64]()
        var dataType: Int32 = 0
        var raw: Range<Int>?
        var floats = [Float](), doubles = [Double](), int64s = [Int64](), int32s = [Int64]()
        while let (field, type) = try reader.nextField() {
            switch field {
            case 1: try reader.repeatedInt64(type, into: &dims)
            case 2:
                try reader.expect(type, .varint, field: "TensorProto.data_type")
                dataType = try reader.int32()
            case 3: throw ONNXError(.unsupported, "segmented tensors are not supported", offset: reader.position)
            case 4: try reader.repeatedFloat(type, into: &floats)
            case 5: try reader.repeatedInt64(type, into: &int32s)
            case 6: throw ONNXError(.unsupported, "string tensors are not supported", offset: reader.position)
            case 7: try reader.repeatedInt64(type, into: &int64s)
            case 8:
                try reader.expect(type, .lengthDelimited, field: "TensorProto.name")
                name = try reader.string()
            case 9:
                try reader.expect(type, .lengthDelimited, field: "TensorProto.raw_data")
                raw = try reader.lengthDelimited()
            case 10: try reader.repeatedDouble(type, into: &doubles)
            case 13, 14:
                if field == 14 {
                    try reader.expect(type, .varint, field: "TensorProto.data_location")
                    if try reader.int64() == 0 { continue }
                } else {
                    try reader.skip(type)
                }
                throw ONNXError(
                    .unsupported, "tensor '\(name)' keeps its data in an external file; save the model as one file",
                    offset: start)
            default: try reader.skip(type)
            }
        }
        guard dims.count <= ONNXModel.maximumRank else {
            throw ONNXError(.malformed, "tensor '\(name)' has \(dims.count) dimensions", offset: start)
        }
        var count = 1
        for d in dims {
            guard d >= 0, d <= Int64(Int32.max) else {
                throw ONNXError(.malformed, "tensor '\(name)' has dimension \(d)", offset: start)
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow, product <= ONNXModel.maximumFileSize else {
                throw ONNXError(.malformed, "tensor '\(name)' with dims \(dims) is larger than any file", offset: start)
            }
            count = product
        }
        guard let type = DataType(rawValue: dataType) else {
            throw ONNXError(
                .unsupported, "tensor '\(name)' has element type \(dataType); Tandem reads float, double and integers",
                offset: start)
        }
        let typedCount = floats.count + doubles.count + int64s.count + int32s.count
        func mismatch(_ got: Int) -> ONNXError {
            ONNXError(.malformed, "tensor '\(name)' has \(got) values for dims \(dims) (\(count))", offset: start)
        }
        let values: Values
        if let raw {
            guard typedCount == 0 else { throw mismatch(typedCount + raw.count) }
            let width = type.width
            guard raw.count == count * width else {
                throw ONNXError(
                    .malformed,
                    "tensor '\(name)' has \(raw.count) bytes of raw data, dims \(dims) need \(count * width)",
                    offset: raw.lowerBound)
            }
            values = Self.decodeRaw(reader.bytes[raw], type: type, count: count)
        } else {
            switch type {
            case .float:
                guard floats.count == count, typedCount == count else { throw mismatch(typedCount) }
                values = .float(floats)
            case .double:
                guard doubles.count == count, typedCount == count else { throw mismatch(typedCount) }
                values = .double(doubles)
            case .int64:
                guard int64s.count == count, typedCount == count else { throw mismatch(typedCount) }
                values = .int64(int64s)
            case .int32, .int8, .uint8:
                guard int32s.count == count, typedCount == count else { throw mismatch(typedCount) }
                let range: ClosedRange<Int64> =
                    switch type {
                    case .int8: -128...127
                    case .uint8: 0...255
                    default: Int64(Int32.min)...Int64(Int32.max)
                    }
                if let bad = int32s.first(where: { !range.contains($0) }) {
                    throw ONNXError(
                        .malformed, "tensor '\(name)' holds \(bad), outside its element type", offset: start)
                }
                values =
                    switch type {
                    case .int8: .int8(int32s.map { Int8($0) })
                    case .uint8: .uint8(int32s.map { UInt8($0) })
                    default: .int32(int32s.map { Int32($0) })
                    }
            }
        }
        self.init(name: name, dims: dims.map { Int($0) }, values: values)
    }

    private static func decodeRaw(_ bytes: ArraySlice<UInt8>, type: DataType, count: Int) -> Values {
        let base = bytes.startIndex
        func word(_ i: Int, _ width: Int) -> UInt64 {
            var v: UInt64 = 0
            for b in 0..<width { v |= UInt64(bytes[base + i * width + b]) << (8 * UInt64(b)) }
            return v
        }
        switch type {
        case .float: return .float((0..<count).map { Float(bitPattern: UInt32(word($0, 4))) })
        case .double: return .double((0..<count).map { Double(bitPattern: word($0, 8)) })
        case .int64: return .int64((0..<count).map { Int64(bitPattern: word($0, 8)) })
        case .int32: return .int32((0..<count).map { Int32(bitPattern: UInt32(word($0, 4))) })
        case .int8: return .int8((0..<count).map { Int8(bitPattern: bytes[base + $0]) })
        case .uint8: return .uint8((0..<count).map { bytes[base + $0] })
        }
    }
}

extension ONNXTensor.DataType {
    /// Bytes per element in `raw_data`.
    var width: Int {
        switch self {
        case .float, .int32: 4
        case .double, .int64: 8
        case .int8, .uint8: 1
        }
    }
}
