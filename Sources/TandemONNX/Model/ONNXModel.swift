/// The parts of an ONNX model (onnx.proto, `ModelProto`) that Tandem reads and writes.
///
/// Fields outside this subset are skipped when reading (documentation, training information, functions);
/// subgraphs inside attributes are not parsed, so the nesting depth is fixed by this schema
/// (model → graph → node → attribute → tensor) and no input can make the reader recurse.
public struct ONNXModel: Sendable, Equatable {
    /// `ir_version`.
    public var irVersion: Int64
    /// `opset_import`: operator set versions by domain (`""` is the default `ai.onnx` domain).
    public var opsetImports: [String: Int64]
    /// `producer_name`.
    public var producerName: String
    /// `producer_version`.
    public var producerVersion: String
    /// `graph`.
    public var graph: ONNXGraph
    /// `metadata_props`, in file order.
    public var metadata: [ONNXMetadataEntry]

    /// Creates a model.
    public init(
        irVersion: Int64 = 8, opsetImports: [String: Int64] = ["": 13], producerName: String = "",
        producerVersion: String = "", graph: ONNXGraph, metadata: [ONNXMetadataEntry] = []
    ) {
        self.irVersion = irVersion
        self.opsetImports = opsetImports
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.graph = graph
        self.metadata = metadata
    }

    /// The version of the default operator set, if the model imports it.
    public var defaultOpset: Int64? { opsetImports[""] ?? opsetImports["ai.onnx"] }
}

/// One `metadata_props` entry.
public struct ONNXMetadataEntry: Sendable, Equatable {
    /// The key.
    public var key: String
    /// The value.
    public var value: String

    /// Creates an entry.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// `GraphProto`: nodes in topological order, constant initializers, inputs and outputs.
public struct ONNXGraph: Sendable, Equatable {
    /// `name`.
    public var name: String
    /// `node`, in the topological order the specification requires.
    public var nodes: [ONNXNode]
    /// `initializer`.
    public var initializers: [ONNXTensor]
    /// `input` (older files also list the initializers here).
    public var inputs: [ONNXValueInfo]
    /// `output`.
    public var outputs: [ONNXValueInfo]

    /// Creates a graph.
    public init(
        name: String, nodes: [ONNXNode], initializers: [ONNXTensor], inputs: [ONNXValueInfo],
        outputs: [ONNXValueInfo]
    ) {
        self.name = name
        self.nodes = nodes
        self.initializers = initializers
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// `NodeProto`: one operator application.
public struct ONNXNode: Sendable, Equatable {
    /// `name` (may be empty in a file; the importer then names it by position).
    public var name: String
    /// `op_type`, e.g. `Conv`.
    public var opType: String
    /// `domain` (`""` for the default domain).
    public var domain: String
    /// `input` value names; an empty name is an omitted optional input.
    public var inputs: [String]
    /// `output` value names.
    public var outputs: [String]
    /// `attribute`.
    public var attributes: [ONNXAttribute]

    /// Creates a node.
    public init(
        name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
        attributes: [ONNXAttribute] = []
    ) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// The attribute called `name`, if present.
    public func attribute(_ name: String) -> ONNXAttribute.Value? {
        attributes.first { $0.name == name }?.value
    }
}

/// `AttributeProto`, with its value by type.
public struct ONNXAttribute: Sendable, Equatable {
    /// An attribute's value. Graph and sparse attributes are recorded by kind only.
    public enum Value: Sendable, Equatable {
        case float(Float)
        case int(Int64)
        case string([UInt8])
        case tensor(ONNXTensor)
        case floats([Float])
        case ints([Int64])
        case strings([[UInt8]])
        /// A kind Tandem never maps (graphs, sparse tensors, type protos), by its `AttributeType` number.
        case other(Int64)
    }

    /// `name`.
    public var name: String
    /// The value.
    public var value: Value

    /// Creates an attribute.
    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }
}

/// `ValueInfoProto` of a tensor: name, element type and shape.
public struct ONNXValueInfo: Sendable, Equatable {
    /// One dimension of a shape: a number, a symbolic name, or nothing.
    public enum Dimension: Sendable, Equatable {
        case value(Int)
        case parameter(String)
        case unknown
    }

    /// `name`.
    public var name: String
    /// `elem_type` (`TensorProto.DataType`), 0 when the type is not a tensor or is absent.
    public var elementType: Int32
    /// The shape, nil when the file gives none.
    public var shape: [Dimension]?

    /// Creates a value info.
    public init(name: String, elementType: Int32 = ONNXTensor.DataType.float.rawValue, shape: [Dimension]?) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }
}
