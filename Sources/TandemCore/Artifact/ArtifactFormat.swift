/// Constants and little-endian byte helpers of the `.tandem` layout; docs/ARTIFACT.md is the specification.
enum ArtifactFormat {
    /// `0x89 T N D M \r \n 0x1A`: a non-ASCII first byte and a CR LF pair, as in PNG, so text-mode
    /// transfers and files that are not artifacts are caught before anything else is parsed.
    static let magic: [UInt8] = [0x89, 0x54, 0x4E, 0x44, 0x4D, 0x0D, 0x0A, 0x1A]
    /// The only format version this build writes and reads.
    static let version: UInt32 = 1
    /// Bytes in the fixed header.
    static let headerByteCount = 48
    /// Tensor data starts at multiples of this, so a loader can map the file and read values in place.
    static let alignment = 64
    /// Bytes in a SHA-256 digest.
    static let digestByteCount = 32
    /// `T S I G`: starts the optional signature block.
    static let signatureMarker: [UInt8] = [0x54, 0x53, 0x49, 0x47]
    /// Signature algorithm code for Ed25519.
    static let ed25519: UInt32 = 1
    /// Marker 4 + algorithm 4 + key id 8 + signature 64 + block digest 32.
    static let signatureBlockByteCount = 112
    /// Bytes of the signature block the block digest covers (everything before it).
    static let signatureBlockSignedPrefix = 80
    /// Prefixed to the digest before signing, so the key's signatures mean "this is a Tandem artifact".
    static let signatureContext: [UInt8] = Array("tandem-artifact-signature-v1".utf8) + [0]
    /// Fixed names of the two golden entries after the model tensors in the table.
    static let goldenInputsName = "golden.inputs"
    static let goldenOutputsName = "golden.outputs"

    /// Upper bounds checked before anything is allocated: far above any real model, far below memory limits.
    static let maximumManifestByteCount = 16 << 20
    static let maximumTensorCount = 1 << 16
    static let maximumTableByteCount = 64 << 20
    static let maximumDimension = 1 << 31
    /// Smallest table entry: name length 2 + type 1 + rank 1 + one name byte + offset 8 + length 8.
    static let minimumEntryByteCount = 21

    /// `value` rounded up to a multiple of `alignment`, or nil on overflow.
    static func aligned(_ value: Int) -> Int? {
        let (sum, overflow) = value.addingReportingOverflow(alignment - 1)
        guard !overflow, value >= 0 else { return nil }
        return sum / alignment * alignment
    }
}

/// Appends little-endian fields to a byte buffer.
struct ArtifactByteWriter {
    var bytes: [UInt8] = []

    mutating func append(_ value: UInt8) { bytes.append(value) }
    mutating func append(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(contentsOf other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }
    mutating func pad(to offset: Int) {
        if bytes.count < offset { bytes.append(contentsOf: repeatElement(0, count: offset - bytes.count)) }
    }

    mutating func append(values storage: ArtifactTensor.Storage) {
        switch storage {
        case .float32(let tensor): appendLittleEndian(tensor.scalars.map(\.bitPattern))
        case .int8(_, let values): values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        case .int32(_, let values): appendLittleEndian(values)
        }
    }

    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ values: [T]) {
        #if _endian(little)
            values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
            for value in values { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        #endif
    }
}

/// Reads little-endian fields from a byte buffer, throwing `truncated` instead of reading past `limit`.
struct ArtifactByteReader {
    let bytes: [UInt8]
    var position: Int
    let limit: Int
    /// Names the region being read in messages ("header", "tensor table").
    let region: String

    init(_ bytes: [UInt8], from position: Int, to limit: Int, region: String) {
        self.bytes = bytes
        self.position = position
        self.limit = Swift.min(limit, bytes.count)
        self.region = region
    }

    mutating func take(_ count: Int, _ field: String) throws(ArtifactError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= limit - position else {
            throw ArtifactError(
                .truncated, "\(region) ends after \(limit - position) bytes, before the \(count)-byte \(field)",
                offset: position)
        }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func uint8(_ field: String) throws(ArtifactError) -> UInt8 {
        try take(1, field).first ?? 0
    }

    mutating func uint16(_ field: String) throws(ArtifactError) -> UInt16 {
        UInt16(try integer(2, field))
    }

    mutating func uint32(_ field: String) throws(ArtifactError) -> UInt32 {
        UInt32(try integer(4, field))
    }

    mutating func uint64(_ field: String) throws(ArtifactError) -> UInt64 {
        try integer(8, field)
    }

    private mutating func integer(_ width: Int, _ field: String) throws(ArtifactError) -> UInt64 {
        var value: UInt64 = 0
        for (shift, byte) in try take(width, field).enumerated() {
            value |= UInt64(byte) << (8 * UInt64(shift))
        }
        return value
    }
}

extension Array where Element == UInt8 {
    /// Decodes `count` little-endian values of `T` from `self[offset...]`; the caller has bounds-checked the range.
    func littleEndianValues<T: FixedWidthInteger>(of type: T.Type, at offset: Int, count: Int) -> [T] {
        var values = [T](repeating: 0, count: count)
        values.withUnsafeMutableBytes { target in
            self.withUnsafeBytes { source in
                let start = source.baseAddress.map { UnsafeRawBufferPointer(start: $0 + offset, count: target.count) }
                if let start { target.copyMemory(from: start) }
            }
        }
        #if !_endian(little)
            for i in values.indices { values[i] = T(littleEndian: values[i]) }
        #endif
        return values
    }
}
