/// A reader of the protocol buffer wire format over a byte array, checking every length against the bytes left.
///
/// Only what a message's own schema needs is read; fields it does not know are skipped by wire type. Every
/// varint is at most ten bytes and fits in 64 bits, every length-delimited field lies inside its parent, and the
/// deprecated group wire types are refused, so no input can read out of bounds, loop or trap.
struct ProtobufReader {
    /// The wire types of protocol buffers (groups, types 3 and 4, are refused).
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    let bytes: [UInt8]
    private(set) var position: Int
    let end: Int

    /// A reader over `bytes[range]`.
    init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    /// A reader over all of `bytes`.
    init(bytes: [UInt8]) { self.init(bytes: bytes, range: 0..<bytes.count) }

    var isAtEnd: Bool { position >= end }

    func error(_ message: String, at offset: Int? = nil) -> ONNXError {
        ONNXError(.malformed, message, offset: offset ?? position)
    }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func nextField() throws(ONNXError) -> (number: Int, wireType: WireType)? {
        guard !isAtEnd else { return nil }
        let start = position
        let key = try varint()
        let number = key >> 3
        guard number >= 1, number <= (1 << 29) - 1 else {
            throw error("field number \(number) out of range", at: start)
        }
        guard let type = WireType(rawValue: UInt8(key & 7)) else {
            throw error("unsupported wire type \(key & 7) for field \(number)", at: start)
        }
        return (Int(number), type)
    }

    /// A base-128 varint of at most ten bytes that fits in 64 bits.
    mutating func varint() throws(ONNXError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while true {
            guard position < end else { throw error("truncated varint", at: start) }
            let byte = bytes[position]
            position += 1
            if shift == 63 && byte > 1 { throw error("varint does not fit in 64 bits", at: start) }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            guard shift <= 63 else { throw error("varint longer than ten bytes", at: start) }
        }
    }

    /// A varint read as a signed 64-bit integer (two's complement, as `int64` fields are written).
    mutating func int64() throws(ONNXError) -> Int64 { Int64(bitPattern: try varint()) }

    /// A varint read as `int32`: negative values are written sign-extended to 64 bits.
    mutating func int32() throws(ONNXError) -> Int32 {
        let start = position
        let value = try int64()
        guard let narrow = Int32(exactly: value) else { throw error("int32 field holds \(value)", at: start) }
        return narrow
    }

    mutating func fixed32() throws(ONNXError) -> UInt32 {
        guard end - position >= 4 else { throw error("truncated 32-bit field") }
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
        position += 4
        return value
    }

    mutating func fixed64() throws(ONNXError) -> UInt64 {
        guard end - position >= 8 else { throw error("truncated 64-bit field") }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return value
    }

    mutating func float() throws(ONNXError) -> Float { Float(bitPattern: try fixed32()) }

    /// The byte range of a length-delimited field, which must lie inside this message.
    mutating func lengthDelimited() throws(ONNXError) -> Range<Int> {
        let start = position
        let length = try varint()
        guard length <= UInt64(end - position) else {
            throw error("length \(length) runs past the end of its message (\(end - position) bytes left)", at: start)
        }
        let range = position..<(position + Int(length))
        position = range.upperBound
        return range
    }

    /// A reader over the next length-delimited field (an embedded message).
    mutating func message() throws(ONNXError) -> ProtobufReader {
        ProtobufReader(bytes: bytes, range: try lengthDelimited())
    }

    /// A UTF-8 string field; invalid UTF-8 is refused.
    mutating func string() throws(ONNXError) -> String {
        let start = position
        let range = try lengthDelimited()
        guard let text = String(validating: bytes[range], as: UTF8.self) else {
            throw error("string field is not valid UTF-8", at: start)
        }
        return text
    }

    /// Skips a field of the given wire type.
    mutating func skip(_ type: WireType) throws(ONNXError) {
        switch type {
        case .varint: _ = try varint()
        case .fixed64: _ = try fixed64()
        case .fixed32: _ = try fixed32()
        case .lengthDelimited: _ = try lengthDelimited()
        }
    }

    /// Appends one element, or a packed run of elements, of a repeated varint field.
    mutating func repeatedInt64(_ type: WireType, into values: inout [Int64]) throws(ONNXError) {
        switch type {
        case .varint: values.append(try int64())
        case .lengthDelimited:
            var packed = try message()
            while !packed.isAtEnd { values.append(try packed.int64()) }
        default: throw error("repeated integer field has wire type \(type.rawValue)")
        }
    }

    /// Appends one element, or a packed run of elements, of a repeated `float` field.
    mutating func repeatedFloat(_ type: WireType, into values: inout [Float]) throws(ONNXError) {
        switch type {
        case .fixed32: values.append(try float())
        case .lengthDelimited:
            let range = try lengthDelimited()
            guard range.count % 4 == 0 else {
                throw error("packed floats of \(range.count) bytes", at: range.lowerBound)
            }
            var packed = ProtobufReader(bytes: bytes, range: range)
            values.reserveCapacity(values.count + range.count / 4)
            while !packed.isAtEnd { values.append(try packed.float()) }
        default: throw error("repeated float field has wire type \(type.rawValue)")
        }
    }

    /// Appends one element, or a packed run of elements, of a repeated `double` field.
    mutating func repeatedDouble(_ type: WireType, into values: inout [Double]) throws(ONNXError) {
        switch type {
        case .fixed64: values.append(Double(bitPattern: try fixed64()))
        case .lengthDelimited:
            let range = try lengthDelimited()
            guard range.count % 8 == 0 else {
                throw error("packed doubles of \(range.count) bytes", at: range.lowerBound)
            }
            var packed = ProtobufReader(bytes: bytes, range: range)
            while !packed.isAtEnd { values.append(Double(bitPattern: try packed.fixed64())) }
        default: throw error("repeated double field has wire type \(type.rawValue)")
        }
    }

    /// Checks that a field has the wire type its schema gives.
    func expect(_ type: WireType, _ wanted: WireType, field: String) throws(ONNXError) {
        guard type == wanted else {
            throw error("\(field) has wire type \(type.rawValue), expected \(wanted.rawValue)")
        }
    }
}
