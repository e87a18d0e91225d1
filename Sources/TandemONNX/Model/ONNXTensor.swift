/// `TensorProto`: a named constant with its dimensions and values.
public struct ONNXTensor: Sendable, Equatable {
    /// `TensorProto.DataType` values Tandem reads or writes.
    public enum DataType: Int32, Sendable {
        case float = 1
        case uint8 = 2
        case int8 = 3
        case int32 = 6
        case int64 = 7
        case double = 11
    }

    /// The values, by element type.
    public enum Values: Sendable, Equatable {
        case float([Float])
        case double([Double])
        case int64([Int64])
        case int32([Int32])
        case int8([Int8])
        case uint8([UInt8])

        /// The number of elements.
        public var count: Int {
            switch self {
            case .float(let v): v.count
            case .double(let v): v.count
            case .int64(let v): v.count
            case .int32(let v): v.count
            case .int8(let v): v.count
            case .uint8(let v): v.count
            }
        }

        /// The element type.
        public var dataType: DataType {
            switch self {
            case .float: .float
            case .double: .double
            case .int64: .int64
            case .int32: .int32
            case .int8: .int8
            case .uint8: .uint8
            }
        }
    }

    /// `name`.
    public var name: String
    /// `dims`, outermost first.
    public var dims: [Int]
    /// The values; their count is the product of `dims`.
    public var values: Values

    /// Creates a tensor.
    ///
    /// - Precondition: the number of values is the product of `dims`.
    public init(name: String, dims: [Int], values: Values) {
        precondition(dims.reduce(1, *) == values.count, "tensor \(name): \(values.count) values for dims \(dims)")
        self.name = name
        self.dims = dims
        self.values = values
    }

    /// The values as floats (float and double tensors), or nil.
    public var floats: [Float]? {
        switch values {
        case .float(let v): v
        case .double(let v): v.map { Float($0) }
        default: nil
        }
    }

    /// The values as integers (int64, int32, int8 and uint8 tensors), or nil.
    public var integers: [Int64]? {
        switch values {
        case .int64(let v): v
        case .int32(let v): v.map { Int64($0) }
        case .int8(let v): v.map { Int64($0) }
        case .uint8(let v): v.map { Int64($0) }
        default: nil
        }
    }
}
