/// One layer of a sequential network, as written in a model spec file and stored in an artifact's manifest.
///
/// Spec files list layers as YAML mappings with a `type` key, for example
/// `{type: conv1d, filters: 128, kernel: 8, padding: same}`. Keys a layer does not use are rejected
/// when the spec is validated, so a typo does not silently fall back to a default.
public struct LayerSpec: Codable, Sendable, Equatable {
    /// The kinds of layer Tandem knows.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case conv1d, dense, relu, maxpool1d, avgpool1d, globalavgpool1d, batchnorm1d, dropout, flatten
    }

    /// Zero padding of a convolution or pooling layer.
    public enum Padding: String, Codable, Sendable {
        /// No padding: the output is shorter than the input.
        case valid
        /// Output length is `ceil(length / stride)`; padding splits as evenly as possible, extra on the right.
        case same
    }

    /// The layer kind.
    public var type: Kind
    /// Output channels of `conv1d`.
    public var filters: Int?
    /// Output units of `dense`; the spec may write `classes` for the number of classes (see `unitsIsClasses`).
    public var units: Int?
    /// Kernel size of `conv1d`, window size of the pooling layers.
    public var kernel: Int?
    /// Stride of `conv1d` and the pooling layers (default 1 for conv, the kernel for pooling).
    public var stride: Int?
    /// Dilation of `conv1d` (default 1).
    public var dilation: Int?
    /// Padding of `conv1d` and the pooling layers (default `valid`).
    public var padding: Padding?
    /// Drop probability of `dropout` (default 0.5).
    public var rate: Float?
    /// Momentum of the running statistics of `batchnorm1d` (default 0.1, PyTorch's convention).
    public var momentum: Float?
    /// Variance epsilon of `batchnorm1d` (default 1e-5).
    public var epsilon: Float?
    /// Whether a `conv1d` or `dense` layer has a bias (default true).
    public var bias: Bool?

    /// Creates a layer spec; unset options take their documented defaults.
    public init(
        type: Kind, filters: Int? = nil, units: Int? = nil, kernel: Int? = nil, stride: Int? = nil,
        dilation: Int? = nil, padding: Padding? = nil, rate: Float? = nil, momentum: Float? = nil,
        epsilon: Float? = nil, bias: Bool? = nil
    ) {
        self.type = type
        self.filters = filters
        self.units = units
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        self.padding = padding
        self.rate = rate
        self.momentum = momentum
        self.epsilon = epsilon
        self.bias = bias
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case type, filters, units, kernel, stride, dilation, padding, rate, momentum, epsilon, bias
        static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
    }

    /// Decodes a layer; `units: classes` decodes as `units == nil`, filled in when the class count is known.
    public init(from decoder: any Decoder) throws {
        let all = try decoder.container(keyedBy: AnyCodingKey.self)
        if let unknown = all.allKeys.first(where: { CodingKeys(stringValue: $0.stringValue) == nil }) {
            throw DecodingError.dataCorruptedError(
                forKey: unknown, in: all,
                debugDescription: "unknown layer option `\(unknown.stringValue)`; known: \(CodingKeys.allNames)")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(Kind.self, forKey: .type)
        filters = try c.decodeIfPresent(Int.self, forKey: .filters)
        if let word = try? c.decodeIfPresent(String.self, forKey: .units), word == "classes" {
            units = nil
        } else {
            units = try c.decodeIfPresent(Int.self, forKey: .units)
        }
        kernel = try c.decodeIfPresent(Int.self, forKey: .kernel)
        stride = try c.decodeIfPresent(Int.self, forKey: .stride)
        dilation = try c.decodeIfPresent(Int.self, forKey: .dilation)
        padding = try c.decodeIfPresent(Padding.self, forKey: .padding)
        rate = try c.decodeIfPresent(Float.self, forKey: .rate)
        momentum = try c.decodeIfPresent(Float.self, forKey: .momentum)
        epsilon = try c.decodeIfPresent(Float.self, forKey: .epsilon)
        bias = try c.decodeIfPresent(Bool.self, forKey: .bias)
    }
}

/// A coding key for any string, used to find keys a type does not know.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
