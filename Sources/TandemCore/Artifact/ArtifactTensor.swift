/// One named tensor stored in a model artifact, with its element type.
///
/// Float32 tensors hold the weights of float models. Int8 and int32 tensors hold the weights, biases
/// and integer scales of quantized edge models; they carry their own shape because `Tensor` is float-only.
public struct ArtifactTensor: Sendable, Equatable {
    /// The element type and values of an artifact tensor.
    public enum Storage: Sendable, Equatable {
        /// 32-bit IEEE floats.
        case float32(Tensor)
        /// Signed 8-bit integers in row-major order.
        case int8(shape: [Int], values: [Int8])
        /// Signed 32-bit integers in row-major order.
        case int32(shape: [Int], values: [Int32])
    }

    /// The longest tensor name, in UTF-8 bytes, an artifact can hold.
    public static let maximumNameLength = 1024
    /// The highest rank an artifact can hold.
    public static let maximumRank = 8

    /// The tensor's name, unique within its artifact (e.g. `layers.0.weight`).
    public let name: String
    /// The element type and values.
    public let storage: Storage

    /// Creates an artifact tensor.
    ///
    /// - Parameters:
    ///   - name: A non-empty name of at most `maximumNameLength` UTF-8 bytes.
    ///   - storage: The values; their count must equal the product of the shape.
    /// - Precondition: the name and shape fit the limits above, no dimension is negative and the value
    ///   count matches the shape. These are programming errors: the artifact loader checks file contents
    ///   before it creates tensors.
    public init(name: String, _ storage: Storage) {
        precondition(
            !name.isEmpty && name.utf8.count <= Self.maximumNameLength,
            "tensor name must be 1...\(Self.maximumNameLength) UTF-8 bytes"
        )
        let shape: [Int]
        let count: Int
        switch storage {
        case .float32(let tensor): (shape, count) = (tensor.shape, tensor.count)
        case .int8(let s, let values): (shape, count) = (s, values.count)
        case .int32(let s, let values): (shape, count) = (s, values.count)
        }
        precondition(shape.count <= Self.maximumRank, "tensor \(name) has rank \(shape.count) > \(Self.maximumRank)")
        precondition(shape.allSatisfy { $0 >= 0 }, "tensor \(name) has a negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == count, "tensor \(name): shape \(shape) does not hold \(count) values")
        self.name = name
        self.storage = storage
    }

    /// Creates a float32 artifact tensor.
    ///
    /// - Parameters:
    ///   - name: The tensor's name.
    ///   - tensor: The values.
    public static func float32(_ name: String, _ tensor: Tensor) -> ArtifactTensor {
        ArtifactTensor(name: name, .float32(tensor))
    }

    /// Creates an int8 artifact tensor.
    ///
    /// - Parameters:
    ///   - name: The tensor's name.
    ///   - shape: The dimensions, outermost first.
    ///   - values: Row-major values; their count must equal the product of `shape`.
    public static func int8(_ name: String, shape: [Int], values: [Int8]) -> ArtifactTensor {
        ArtifactTensor(name: name, .int8(shape: shape, values: values))
    }

    /// Creates an int32 artifact tensor.
    ///
    /// - Parameters:
    ///   - name: The tensor's name.
    ///   - shape: The dimensions, outermost first.
    ///   - values: Row-major values; their count must equal the product of `shape`.
    public static func int32(_ name: String, shape: [Int], values: [Int32]) -> ArtifactTensor {
        ArtifactTensor(name: name, .int32(shape: shape, values: values))
    }

    /// The dimensions, outermost first.
    public var shape: [Int] {
        switch storage {
        case .float32(let tensor): tensor.shape
        case .int8(let shape, _): shape
        case .int32(let shape, _): shape
        }
    }

    /// The element type.
    public var elementType: ArtifactElementType {
        switch storage {
        case .float32: .float32
        case .int8: .int8
        case .int32: .int32
        }
    }

    /// The number of elements.
    public var count: Int {
        switch storage {
        case .float32(let tensor): tensor.count
        case .int8(_, let values): values.count
        case .int32(_, let values): values.count
        }
    }

    /// The size of the values in bytes.
    public var byteCount: Int { count * elementType.byteWidth }
}

/// The element types an artifact tensor can have, with their codes in the file.
public enum ArtifactElementType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// 32-bit IEEE float, little-endian.
    case float32 = 1
    /// Signed 8-bit integer.
    case int8 = 2
    /// Signed 32-bit integer, little-endian.
    case int32 = 3

    /// The size of one element in bytes.
    public var byteWidth: Int {
        switch self {
        case .float32, .int32: 4
        case .int8: 1
        }
    }

    /// The name used in messages and in docs/ARTIFACT.md.
    public var description: String {
        switch self {
        case .float32: "float32"
        case .int8: "int8"
        case .int32: "int32"
        }
    }
}
