import TandemCore

extension GraphMapper {
    /// Maps the current node.
    mutating func map() throws(ONNXError) {
        switch node.opType {
        case "Constant": try mapConstant()
        case "Identity", "Dropout":
            try requireUnusedOutputs(after: 1)
            if let name = node.inputs.first, case .constant(let tensor)? = values[name], let out = node.outputs.first {
                values[out] = .constant(tensor)
                return
            }
            let x = try activation(0)
            if node.opType == "Dropout" { notes.append("Dropout '\(node.name)' is the identity at inference") }
            try produce(x)
        case "Conv": try mapConvolution()
        case "MaxPool", "AveragePool": try mapPooling()
        case "GlobalAveragePool": try mapGlobalAveragePool()
        case "ReduceMean": try mapReduceMean()
        case "BatchNormalization": try mapBatchNormalization()
        case "Relu":
            let x = try activation(0)
            append(LayerSpec(type: .relu))
            try produce(moved(x))
        case "Clip": try mapClip()
        case "Gemm": try mapGemm()
        case "MatMul": try mapMatMul()
        case "Add", "Sub", "Div": try mapArithmetic()
        case "Transpose": try mapTranspose()
        case "Reshape": try mapReshape()
        case "Flatten":
            let x = try activation(0)
            let axis = try int("axis", default: 1)
            guard axis == 1 || axis == Int64(1 - x.axes.count) else {
                throw fail("Flatten with axis \(axis) mixes the batch with the window; Tandem flattens from axis 1")
            }
            try produce(try flattened(x, for: "Flatten"))
        case "Squeeze", "Unsqueeze": try mapSqueeze()
        case "Softmax":
            let x = try flattened(try activation(0), for: "Softmax")
            let axis = try int("axis", default: -1)
            let normalized = axis < 0 ? axis + Int64(x.axes.count) : axis
            guard normalized >= 0, normalized < x.axes.count, x.axes[Int(normalized)] == .feature,
                case .flat(_, nil) = x.form
            else {
                throw fail("Softmax over axis \(axis) of \(x.shapeText) is not over the class scores")
            }
            softmaxOutput = node.outputs.first
            notes.append("Softmax '\(node.name)' is Tandem's probabilities; the model stores logits")
            try produce(x)
        case "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Gelu", "Softplus",
            "Mish", "Celu", "ThresholdedRelu", "LogSoftmax":
            throw fail("Tandem has no \(node.opType) layer; its only activation is ReLU (also Clip with min 0, no max)")
        case "Shape", "Gather", "Concat", "Slice", "ConstantOfShape", "Expand", "Cast", "Range":
            throw fail(
                "shape arithmetic has no Tandem layer; export with a fixed input shape and constant folding, and "
                    + "flatten with nn.Flatten / Keras Flatten (or run onnx-simplifier)")
        default:
            throw fail("Tandem has no layer for \(node.opType)")
        }
    }

    /// The same activation after a layer that keeps its shape.
    func moved(_ x: Activation) -> Activation {
        var y = x
        y.position = layers.count
        return y
    }

    // MARK: Constants and layout

    mutating func mapConstant() throws(ONNXError) {
        guard let attribute = node.attributes.first, node.attributes.count == 1 else {
            throw fail("a Constant needs exactly one value attribute")
        }
        let name = node.outputs.first ?? ""
        let tensor: ONNXTensor
        switch (attribute.name, attribute.value) {
        case ("value", .tensor(let t)): tensor = ONNXTensor(name: name, dims: t.dims, values: t.values)
        case ("value_float", .float(let f)): tensor = ONNXTensor(name: name, dims: [], values: .float([f]))
        case ("value_floats", .floats(let f)): tensor = ONNXTensor(name: name, dims: [f.count], values: .float(f))
        case ("value_int", .int(let i)): tensor = ONNXTensor(name: name, dims: [], values: .int64([i]))
        case ("value_ints", .ints(let i)): tensor = ONNXTensor(name: name, dims: [i.count], values: .int64(i))
        default: throw fail("Constant attribute \(attribute.name) is not supported")
        }
        values[name] = .constant(tensor)
    }

    mutating func mapTranspose() throws(ONNXError) {
        let x = try activation(0)
        let rank = x.axes.count
        let perm = try ints("perm")?.map { Int($0) } ?? Array((0..<rank).reversed())
        guard perm.count == rank, perm.sorted() == Array(0..<rank) else {
            throw fail("perm \(perm) is not a permutation of \(rank) axes")
        }
        guard perm[0] == 0 else { throw fail("Transpose \(perm) moves the batch axis") }
        var y = x
        y.axes = perm.map { x.axes[$0] }
        try produce(y)
    }

    mutating func mapSqueeze() throws(ONNXError) {
        let x = try activation(0)
        let squeeze = node.opType == "Squeeze"
        var given = try integers(1, "axes")
        if given == nil { given = try ints("axes") }
        guard let axes = given else {
            throw fail("\(node.opType) without axes depends on the batch size; give the axes")
        }
        let rank = x.axes.count + (squeeze ? 0 : axes.count)
        var normalized = [Int]()
        for a in axes {
            let n = a < 0 ? Int(a) + rank : Int(a)
            guard n >= 1, n < rank, !normalized.contains(n) else {
                throw fail("axis \(a) of \(node.opType) is out of range or the batch axis for rank \(rank)")
            }
            normalized.append(n)
        }
        var y = x
        if squeeze {
            for n in normalized.sorted(by: >) {
                guard x.size(x.axes[n]) == 1 else {
                    throw fail("Squeeze of axis \(n) of \(x.shapeText), which is not of size 1")
                }
            }
            y.axes = x.axes.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
        } else {
            var out = x.axes
            for n in normalized.sorted() { out.insert(.unit, at: n) }
            y.axes = out
        }
        try produce(y)
    }

    /// An activation as a flat `[N, features]` value, adding Tandem's `flatten` layer to a sequence.
    mutating func flattened(_ x: Activation, for what: String) throws(ONNXError) -> Activation {
        guard x.axes.first == .batch else { throw fail("\(what) needs the batch first, got \(x.shapeText)") }
        switch x.form {
        case .flat(let features, let order):
            return Activation(
                axes: [.batch, .feature], form: .flat(features: features, order: order), position: x.position)
        case .sequence(let length, let channels):
            let time = x.axes.firstIndex(of: .time), channel = x.axes.firstIndex(of: .channel)
            var order: [Int]?
            if let time, let channel, channel < time, length > 1, channels > 1 {
                // ONNX flattens channel-major (c · L + t); Tandem's flatten is time-major (t · C + c).
                var map = [Int](repeating: 0, count: length * channels)
                for c in 0..<channels { for t in 0..<length { map[c * length + t] = t * channels + c } }
                order = map
            }
            append(LayerSpec(type: .flatten))
            return Activation(
                axes: [.batch, .feature], form: .flat(features: length * channels, order: order),
                position: layers.count)
        }
    }

    mutating func mapReshape() throws(ONNXError) {
        let x = try activation(0)
        guard let target = try integers(1, "the shape") else { throw fail("Reshape needs a constant shape") }
        let allowZero = try int("allowzero", default: 0) != 0
        let dims = x.dims
        let perWindow = x.valuesPerWindow
        guard target.count >= 1, target.count <= ONNXModel.maximumRank else {
            throw fail("Reshape to \(target) has an unsupported rank")
        }
        // Resolve 0 (copy) and -1 (infer) per window; the first dimension is the batch.
        guard target[0] == -1 || target[0] == 0 || target[0] >= 1 else { throw fail("Reshape to \(target)") }
        var out = [Int]()
        var inferred: Int?
        for (i, d) in target.enumerated().dropFirst() {
            if d == -1 {
                guard inferred == nil else { throw fail("Reshape to \(target) has more than one -1") }
                inferred = i
                out.append(1)
            } else if d == 0 && !allowZero {
                guard i < dims.count, dims[i] >= 0 else { throw fail("Reshape to \(target) copies the batch axis") }
                out.append(dims[i])
            } else {
                guard d >= 1, d <= Int64(Int32.max) else { throw fail("Reshape to \(target) has dimension \(d)") }
                out.append(Int(d))
            }
        }
        var product = 1
        for d in out {
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("Reshape to \(target) overflows") }
            product = p
        }
        if let inferred {
            guard product > 0, perWindow % product == 0 else {
                throw fail("Reshape to \(target) does not fit \(x.shapeText)")
            }
            out[inferred - 1] = perWindow / product
            product = perWindow
        }
        if target[0] >= 1 && inferred == nil && product != perWindow {
            throw fail("Reshape to \(target) moves values between windows of the batch")
        }
        guard product == perWindow else {
            throw fail("Reshape to \(target) does not hold the \(perWindow) values per window of \(x.shapeText)")
        }
        // An axis-only reshape keeps the dimensions larger than 1 in the same order; a flatten ends with one.
        let before = x.axes.dropFirst().filter { (x.size($0) ?? 0) > 1 }
        let beforeSizes = before.map { x.size($0)! }
        let afterSizes = out.filter { $0 > 1 }
        if beforeSizes == afterSizes {
            var axes: [Axis] = [.batch]
            var next = 0
            for d in out {
                if d > 1 {
                    axes.append(before[next])
                    next += 1
                } else {
                    axes.append(.unit)
                }
            }
            var y = x
            y.axes = axes
            try produce(y)
        } else if afterSizes == [perWindow] {
            var y = try flattened(x, for: "Reshape")
            y.axes = [.batch] + out.map { $0 > 1 ? .feature : .unit }
            try produce(y)
        } else {
            throw fail("Reshape of \(x.shapeText) to \(target) mixes the time and channel axes")
        }
    }

    // MARK: Windows: convolution and pooling

    /// The window operator's geometry along time, checked against the unit axis of a 2-D layout.
    struct WindowAttributes {
        var kernel: Int
        var stride: Int
        var dilation: Int
        var padding: LayerSpec.Padding
        var outputLength: Int
    }

    func windowAttributes(
        _ x: Activation, kernelShape: [Int], isPooling: Bool, countIncludePad: Bool = false
    ) throws(ONNXError) -> WindowAttributes {
        guard let (time, spatial) = x.convolutionLayout(), case .sequence(let length, _) = x.form else {
            throw fail(
                "\(node.opType) needs a sequence laid out [N, C, L] (or [N, C, 1, L]), got \(x.shapeText) with axes "
                    + "\(x.axes)")
        }
        guard kernelShape.count == spatial else {
            throw fail("kernel \(kernelShape) does not match \(spatial) spatial dimension(s) of \(x.shapeText)")
        }
        let strides = try ints("strides")?.map { Int($0) } ?? Array(repeating: 1, count: spatial)
        let dilations = try ints("dilations")?.map { Int($0) } ?? Array(repeating: 1, count: spatial)
        let pads = try ints("pads")?.map { Int($0) } ?? Array(repeating: 0, count: 2 * spatial)
        guard strides.count == spatial, dilations.count == spatial, pads.count == 2 * spatial else {
            throw fail("strides \(strides), dilations \(dilations) or pads \(pads) do not fit \(spatial) dimension(s)")
        }
        let limit = 1 << 20
        for v in kernelShape + strides + dilations where v < 1 || v > limit {
            throw fail("kernel, strides and dilations must lie in 1...\(limit)")
        }
        for p in pads where p < 0 || p > limit { throw fail("pads \(pads) must lie in 0...\(limit)") }
        for s in 0..<spatial where s != time {
            guard kernelShape[s] == 1, pads[s] == 0, pads[s + spatial] == 0 else {
                throw fail("a 2-D window over the unit axis must have kernel 1 and no padding there")
            }
        }
        let kernel = kernelShape[time], stride = strides[time], dilation = dilations[time]
        let autoPad = try string("auto_pad", default: "NOTSET")
        let ceilMode = try int("ceil_mode", default: 0) != 0
        let span = (kernel - 1) * dilation + 1
        let same = WindowGeometry(
            inputLength: length, kernel: kernel, stride: stride, dilation: dilation, padding: .same)!
        let padding: LayerSpec.Padding
        switch autoPad {
        case "VALID":
            padding = .valid
        case "SAME_UPPER":
            padding = .same
        case "SAME_LOWER":
            let total = (same.outputLength - 1) * stride + span - length
            guard total <= 0 || total % 2 == 0 else {
                throw fail("SAME_LOWER puts the odd padding element on the left; Tandem's same padding on the right")
            }
            padding = .same
        case "NOTSET", "":
            let (begin, end) = (pads[time], pads[time + spatial])
            let padded = length + begin + end
            guard padded >= span else { throw fail("kernel span \(span) does not fit length \(length)") }
            let outputs = ceilMode ? (padded - span + stride - 1) / stride + 1 : (padded - span) / stride + 1
            if let valid = WindowGeometry(
                inputLength: length, kernel: kernel, stride: stride, dilation: dilation, padding: .valid),
                begin == 0, valid.outputLength == outputs
            {
                padding = .valid
            } else if begin == same.padLeft, same.outputLength == outputs {
                padding = .same
            } else {
                throw fail(
                    "pads [\(begin), \(end)] on length \(length) (kernel \(kernel), stride \(stride), dilation "
                        + "\(dilation)\(ceilMode ? ", ceil mode" : "")) give \(outputs) outputs starting at -\(begin); "
                        + "Tandem pads 'valid' (none) or 'same' (\(same.outputLength) outputs, \(same.padLeft) on the "
                        + "left, the rest on the right)")
            }
        default:
            throw fail("auto_pad \(autoPad) is not an ONNX value")
        }
        guard
            let geometry = WindowGeometry(
                inputLength: length, kernel: kernel, stride: stride, dilation: dilation, padding: padding)
        else { throw fail("kernel span \(span) does not fit length \(length)") }
        let reachesPast = (same.outputLength - 1) * stride + span - same.padLeft > length
        if isPooling && countIncludePad && padding == .same && (same.padLeft > 0 || reachesPast) {
            throw fail("AveragePool with count_include_pad=1 counts padding; Tandem averages only the samples in range")
        }
        return WindowAttributes(
            kernel: kernel, stride: stride, dilation: dilation, padding: padding, outputLength: geometry.outputLength)
    }

    mutating func mapConvolution() throws(ONNXError) {
        let x = try activation(0)
        guard case .sequence(_, let channels) = x.form else {
            throw fail("Conv needs a sequence, got the flat \(x.shapeText)")
        }
        let group = try int("group", default: 1)
        guard group == 1 else {
            throw fail(
                "a grouped or depthwise convolution (group \(group)) has no Tandem layer; Tandem's Conv uses group 1")
        }
        let w = try floats(1, "the weight")
        guard w.dims.count == x.axes.count, w.dims.count >= 3, w.dims[1] == channels else {
            throw fail("weight \(w.dims) does not fit the input \(x.shapeText)")
        }
        let kernelShape = Array(w.dims[2...])
        if let declared = try ints("kernel_shape")?.map({ Int($0) }), declared != kernelShape {
            throw fail("kernel_shape \(declared) differs from the weight's \(kernelShape)")
        }
        let g = try windowAttributes(x, kernelShape: kernelShape, isPooling: false)
        let filters = w.dims[0]
        guard filters >= 1 else { throw fail("the weight has no filters") }
        let source = w.floats!
        // ONNX [F, C, (1,) k] → Tandem [F, k, C]; a unit spatial axis has size 1, so the flat index is the same.
        var weight = [Float](repeating: 0, count: filters * g.kernel * channels)
        for f in 0..<filters {
            for c in 0..<channels {
                for j in 0..<g.kernel {
                    weight[(f * g.kernel + j) * channels + c] = source[(f * channels + c) * g.kernel + j]
                }
            }
        }
        var bias = [Float](repeating: 0, count: filters)
        if let b = try constant(2, optional: true) {
            guard let values = b.floats, values.count == filters, values.allSatisfy(\.isFinite) else {
                throw fail("the bias must be \(filters) finite floats")
            }
            bias = values
        }
        append(
            LayerSpec(
                type: .conv1d, filters: filters, kernel: g.kernel, stride: g.stride, dilation: g.dilation,
                padding: g.padding),
            weight: Tensor(shape: [filters, g.kernel, channels], scalars: weight), bias: bias)
        var y = x
        y.form = .sequence(length: g.outputLength, channels: filters)
        y.position = layers.count
        try produce(y)
    }

    mutating func mapPooling() throws(ONNXError) {
        let x = try activation(0)
        try requireUnusedOutputs(after: 1)
        guard let kernelShape = try ints("kernel_shape")?.map({ Int($0) }) else {
            throw fail("\(node.opType) has no kernel_shape")
        }
        let isMax = node.opType == "MaxPool"
        if isMax, try int("storage_order", default: 0) != 0 { throw fail("storage_order 1 is not supported") }
        let countIncludePad = try isMax ? false : int("count_include_pad", default: 0) != 0
        let g = try windowAttributes(x, kernelShape: kernelShape, isPooling: true, countIncludePad: countIncludePad)
        append(
            LayerSpec(
                type: isMax ? .maxpool1d : .avgpool1d, kernel: g.kernel, stride: g.stride, dilation: g.dilation,
                padding: g.padding))
        guard case .sequence(_, let channels) = x.form else { return }
        var y = x
        y.form = .sequence(length: g.outputLength, channels: channels)
        y.position = layers.count
        try produce(y)
    }

    mutating func mapGlobalAveragePool() throws(ONNXError) {
        let x = try activation(0)
        guard x.convolutionLayout() != nil, case .sequence(_, let channels) = x.form else {
            throw fail("GlobalAveragePool needs a sequence laid out [N, C, L], got \(x.shapeText)")
        }
        append(LayerSpec(type: .globalavgpool1d))
        try produce(
            Activation(
                axes: [.batch, .feature] + Array(repeating: .unit, count: x.axes.count - 2),
                form: .flat(features: channels, order: nil), position: layers.count))
    }

    mutating func mapReduceMean() throws(ONNXError) {
        let x = try activation(0)
        guard case .sequence(_, let channels) = x.form else {
            throw fail("ReduceMean needs a sequence, got \(x.shapeText)")
        }
        let keep = try int("keepdims", default: 1) != 0
        let listed = try opset >= 18 ? integers(1, "axes") : ints("axes")
        guard let given = listed else {
            throw fail("ReduceMean without axes averages the channels too; give the time axis")
        }
        let rank = x.axes.count
        let axes = Set(given.map { $0 < 0 ? Int($0) + rank : Int($0) })
        guard axes.allSatisfy({ $0 >= 0 && $0 < rank }), let time = x.axes.firstIndex(of: .time), axes.contains(time),
            axes.allSatisfy({ x.axes[$0] == .time || x.axes[$0] == .unit })
        else {
            throw fail("ReduceMean over axes \(given.sorted()) of \(x.shapeText) is not a mean over time")
        }
        append(LayerSpec(type: .globalavgpool1d))
        var out = [Axis]()
        for (i, axis) in x.axes.enumerated() {
            if axes.contains(i) {
                if keep { out.append(.unit) }
            } else {
                out.append(axis == .channel ? .feature : axis)
            }
        }
        if !out.contains(.feature) {
            // A single channel without its own axis.
            guard channels == 1 else { throw fail("the channel axis is missing") }
        }
        try produce(Activation(axes: out, form: .flat(features: channels, order: nil), position: layers.count))
    }

    // MARK: Normalization and activations

    mutating func mapBatchNormalization() throws(ONNXError) {
        let x = try activation(0)
        try requireUnusedOutputs(after: 1)
        if try int("training_mode", default: 0) != 0 { throw fail("training_mode 1: export the model in eval mode") }
        let epsilon = try float("epsilon", default: 1e-5)
        guard epsilon.isFinite, epsilon >= 0 else { throw fail("epsilon \(epsilon)") }
        let axis: Axis = x.axes.count > 1 ? x.axes[1] : .batch
        let units: Int
        var order: [Int]?
        switch x.form {
        case .sequence(_, let channels):
            guard axis == .channel || (channels == 1 && axis == .unit) else {
                throw fail("BatchNormalization normalizes axis 1 of \(x.shapeText), which is not the channels")
            }
            units = channels
        case .flat(let features, let o):
            guard axis == .feature else { throw fail("BatchNormalization of \(x.shapeText) over axis 1") }
            units = features
            order = o
        }
        var stats = [[Float]]()
        for (index, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
            let t = try floats(index, "the \(what)")
            guard t.values.count == units else {
                throw fail("the \(what) has \(t.values.count) values for \(units) units")
            }
            var values = t.floats!
            if let order {
                var reordered = values
                for i in 0..<units { reordered[order[i]] = values[i] }
                values = reordered
            }
            stats.append(values)
        }
        guard stats[3].allSatisfy({ $0 + epsilon > 0 }) else { throw fail("a variance plus epsilon is not positive") }
        append(LayerSpec(type: .batchnorm1d, epsilon: epsilon), normalization: stats)
        try produce(moved(x))
    }

    mutating func mapClip() throws(ONNXError) {
        let x = try activation(0)
        let low = try constant(1, optional: true)?.floats
        let high = try constant(2, optional: true)?.floats
        guard let low, low == [0], high == nil || high!.allSatisfy({ $0 == .infinity }) else {
            throw fail("Clip maps only as ReLU (min 0, no max); Tandem has no clipped activation such as ReLU6")
        }
        append(LayerSpec(type: .relu))
        try produce(moved(x))
    }

    // MARK: Dense layers and biases

    /// The flat input of a dense layer: a flat activation, or a sequence with only one axis larger than 1.
    mutating func denseInput() throws(ONNXError) -> Activation {
        let x = try activation(0)
        if case .sequence = x.form {
            let wide = x.axes.dropFirst().filter { (x.size($0) ?? 0) > 1 }
            guard wide.count <= 1 else {
                throw fail("\(node.opType) on the sequence \(x.shapeText); flatten or pool it first")
            }
        }
        let nonUnit = x.axes.dropFirst().filter { $0 != .unit }
        guard nonUnit.count <= 1 else { throw fail("\(node.opType) on \(x.shapeText) needs a [N, features] input") }
        return try flattened(x, for: node.opType)
    }

    mutating func appendDense(_ x: Activation, weight: (_ unit: Int, _ input: Int) -> Float, units: Int, bias: [Float])
        throws(ONNXError)
    {
        guard case .flat(let features, let order) = x.form else { return }
        var w = [Float](repeating: 0, count: units * features)
        for u in 0..<units {
            for i in 0..<features { w[u * features + (order?[i] ?? i)] = weight(u, i) }
        }
        guard w.allSatisfy(\.isFinite) else { throw fail("the weight has non-finite values") }
        append(
            LayerSpec(type: .dense, units: units), weight: Tensor(shape: [units, features], scalars: w), bias: bias)
        try produce(
            Activation(axes: [.batch, .feature], form: .flat(features: units, order: nil), position: layers.count))
    }

    mutating func mapGemm() throws(ONNXError) {
        let x = try denseInput()
        guard case .flat(let features, _) = x.form else { return }
        if try int("transA", default: 0) != 0 { throw fail("transA 1 transposes the batch") }
        let transB = try int("transB", default: 0) != 0
        let alpha = try float("alpha", default: 1), beta = try float("beta", default: 1)
        let b = try floats(1, "B")
        guard b.dims.count == 2 else { throw fail("B has dims \(b.dims), not a matrix") }
        let (rows, columns) = (b.dims[0], b.dims[1])
        let units = transB ? rows : columns
        guard (transB ? columns : rows) == features, units >= 1 else {
            throw fail("B \(b.dims)\(transB ? " (transposed)" : "") does not take \(features) features")
        }
        let values = b.floats!
        var bias = [Float](repeating: 0, count: units)
        if let c = try constant(2, optional: true) {
            guard let cv = c.floats, cv.count == units || cv.count == 1, c.dims.last ?? 1 == cv.count else {
                throw fail("C \(c.dims) is not a bias of \(units) units")
            }
            for u in 0..<units { bias[u] = beta * cv[cv.count == 1 ? 0 : u] }
        }
        try appendDense(
            x, weight: { u, i in alpha * (transB ? values[u * features + i] : values[i * units + u]) }, units: units,
            bias: bias)
    }

    mutating func mapMatMul() throws(ONNXError) {
        let x = try denseInput()
        guard case .flat(let features, _) = x.form else { return }
        let b = try floats(1, "the weight")
        guard b.dims.count == 2, b.dims[0] == features, b.dims[1] >= 1 else {
            throw fail("MatMul weight \(b.dims) does not take \(features) features")
        }
        let units = b.dims[1]
        let values = b.floats!
        try appendDense(
            x, weight: { u, i in values[i * units + u] }, units: units,
            bias: [Float](repeating: 0, count: units))
    }

    /// Add of a bias after a convolution or dense layer, or the standardization (Sub, Div) at the input.
    mutating func mapArithmetic() throws(ONNXError) {
        let first = node.inputs.count > 0 ? values[node.inputs[0]] : nil
        let second = node.inputs.count > 1 ? values[node.inputs[1]] : nil
        if case .activation? = first, case .activation? = second {
            throw fail(
                "\(node.opType) of two activations (a residual or skip connection) has no Tandem layer; Tandem's "
                    + "networks are sequential")
        }
        let activationIndex: Int
        if case .activation? = first { activationIndex = 0 } else { activationIndex = 1 }
        guard node.opType == "Add" || activationIndex == 0 else {
            throw fail("\(node.opType) with the activation second is not a standardization")
        }
        let x = try activation(activationIndex)
        let c = try floats(1 - activationIndex, "the \(node.opType) operand")
        // The axis a per-unit constant broadcasts along: its one dimension larger than 1, right-aligned.
        let axis: Axis
        let units: Int
        switch x.form {
        case .sequence(_, let channels):
            axis = .channel
            units = channels
        case .flat(let features, _):
            axis = .feature
            units = features
        }
        let values = c.floats!
        var perUnit: [Float]
        if values.count == 1 {
            perUnit = [Float](repeating: values[0], count: units)
        } else {
            guard values.count == units, c.dims.count <= x.axes.count else {
                throw fail("the constant \(c.dims) does not broadcast per \(axis) over \(x.shapeText)")
            }
            let offset = x.axes.count - c.dims.count
            guard let wide = c.dims.firstIndex(where: { $0 > 1 }) ?? (units == 1 ? c.dims.indices.last : nil),
                x.axes[offset + wide] == axis
            else {
                throw fail("the constant \(c.dims) does not broadcast per \(axis) over \(x.shapeText)")
            }
            perUnit = values
            if case .flat(_, let order?) = x.form {
                for i in 0..<units { perUnit[order[i]] = values[i] }
            }
        }
        if layers.isEmpty && x.position == 0, case .sequence = x.form {
            // Standardization in front of the network: (x − mean) / std.
            switch node.opType {
            case "Sub" where mean == nil && std == nil:
                mean = perUnit
            case "Div" where std == nil:
                guard perUnit.allSatisfy({ $0 > 0 }) else { throw fail("the divisor must be positive per channel") }
                std = perUnit
            case "Add" where mean == nil && std == nil:
                mean = perUnit.map { -$0 }
            default:
                throw fail(
                    "\(node.opType) at the input is not a standardization (Sub of the mean, then Div by the std)")
            }
            notes.append("\(node.opType) '\(node.name)' is the input standardization, stored in the model's input spec")
            try produce(x)
            return
        }
        guard node.opType == "Add", let last = layers.last, last.spec.type == .conv1d || last.spec.type == .dense,
            var bias = last.bias
        else {
            throw fail(
                "\(node.opType) of a constant maps only as the bias right after Conv, Gemm or MatMul, or as the "
                    + "standardization at the input")
        }
        for u in 0..<units { bias[u] += perUnit[u] }
        layers[layers.count - 1].bias = bias
        notes.append("Add '\(node.name)' is the bias of '\(last.node)'")
        try produce(x)
    }
}
