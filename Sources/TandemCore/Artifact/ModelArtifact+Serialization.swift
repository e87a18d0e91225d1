import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

extension ModelArtifact {
    // MARK: - Writing

    /// The artifact as `.tandem` file bytes: header, manifest, tensor table, data, SHA-256 and, if the
    /// artifact is signed, the signature block.
    ///
    /// The output is deterministic: the manifest is encoded with sorted keys and every offset follows
    /// from the sizes, so the same artifact always gives the same bytes.
    public func serialized() -> [UInt8] {
        var bytes = serializedBody()
        let digest = Self.digest(of: bytes)
        bytes.append(contentsOf: digest)
        if let signature {
            var block = ArtifactByteWriter()
            block.append(contentsOf: ArtifactFormat.signatureMarker)
            block.append(ArtifactFormat.ed25519)
            block.append(contentsOf: signature.keyID)
            block.append(contentsOf: signature.signature)
            block.append(contentsOf: Self.digest(of: digest + block.bytes))
            bytes.append(contentsOf: block.bytes)
        }
        return bytes
    }

    /// Everything the SHA-256 covers: header, manifest, table, padding and data.
    func serializedBody() -> [UInt8] {
        let manifestBytes = Self.encodeManifest(manifest)
        let entries =
            tensors + [
                ArtifactTensor.float32(ArtifactFormat.goldenInputsName, goldenInputs),
                ArtifactTensor.float32(ArtifactFormat.goldenOutputsName, goldenOutputs),
            ]
        let tableByteCount = entries.reduce(0) { $0 + 2 + 1 + 1 + $1.name.utf8.count + 8 * $1.shape.count + 16 }
        // Sizes of in-process values cannot overflow: they are bounded by memory already held.
        let dataOffset = Self.roundUp(ArtifactFormat.headerByteCount + manifestBytes.count + tableByteCount)
        var offsets: [Int] = []
        var end = dataOffset
        for entry in entries {
            let offset = Self.roundUp(end)
            offsets.append(offset)
            end = offset + entry.byteCount
        }

        var writer = ArtifactByteWriter()
        writer.bytes.reserveCapacity(end + ArtifactFormat.digestByteCount + ArtifactFormat.signatureBlockByteCount)
        writer.append(contentsOf: ArtifactFormat.magic)
        writer.append(ArtifactFormat.version)
        writer.append(UInt32(0))  // flags
        writer.append(UInt32(manifestBytes.count))
        writer.append(UInt32(tensors.count))
        writer.append(UInt32(tableByteCount))
        writer.append(UInt32(0))  // reserved
        writer.append(UInt64(dataOffset))
        writer.append(UInt64(end - dataOffset))
        writer.append(contentsOf: manifestBytes)
        for (entry, offset) in zip(entries, offsets) {
            let name = Array(entry.name.utf8)
            writer.append(UInt16(name.count))
            writer.append(entry.elementType.rawValue)
            writer.append(UInt8(entry.shape.count))
            writer.append(contentsOf: name)
            for dimension in entry.shape { writer.append(UInt64(dimension)) }
            writer.append(UInt64(offset))
            writer.append(UInt64(entry.byteCount))
        }
        for (entry, offset) in zip(entries, offsets) {
            writer.pad(to: offset)
            writer.append(values: entry.storage)
        }
        return writer.bytes
    }

    private static func roundUp(_ value: Int) -> Int {
        (value + ArtifactFormat.alignment - 1) / ArtifactFormat.alignment * ArtifactFormat.alignment
    }

    static func encodeManifest(_ manifest: ModelManifest) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return Array(try encoder.encode(manifest))
        } catch {
            // The manifest holds only strings, integers, floats (non-finite ones become strings above),
            // arrays and string-keyed dictionaries, all of which JSON can represent.
            preconditionFailure("a ModelManifest failed to encode as JSON: \(error)")
        }
    }

    static func decodeManifest(_ bytes: ArraySlice<UInt8>, offset: Int) throws(ArtifactError) -> ModelManifest {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return try decoder.decode(ModelManifest.self, from: Data(bytes))
        } catch {
            throw ArtifactError(
                .badManifest, "the \(bytes.count)-byte manifest does not decode: \(error)", offset: offset)
        }
    }

    // MARK: - Reading

    /// Parses and verifies `.tandem` file bytes.
    ///
    /// Every length, offset, count and dimension is checked before it is used, so malformed or hostile
    /// input gives an `ArtifactError`, never a crash or an oversized allocation. The checks, in order:
    /// magic, format version, header fields, the SHA-256 over the body, the signature block's own
    /// checksum, the manifest JSON, the tensor table and data layout, then the signature.
    ///
    /// - Parameters:
    ///   - bytes: The file contents.
    ///   - trustedKeys: Public keys whose signatures are accepted. `nil` skips signature verification
    ///     (the signature block is still checked for corruption and kept); an empty list trusts no key.
    ///   - revokedKeyIDs: Ids of keys whose signatures are refused (`revokedKey`) even if they are among
    ///     `trustedKeys`.
    ///   - requireSignature: Whether an unsigned artifact is rejected. Requires `trustedKeys`.
    /// - Throws: `ArtifactError` saying what is wrong and at which byte offset.
    public init(
        bytes: [UInt8], trustedKeys: [Curve25519.Signing.PublicKey]? = nil, revokedKeyIDs: Set<String> = [],
        requireSignature: Bool = false
    ) throws(ArtifactError) {
        let body = try ArtifactParser.parse(bytes)
        if let signature = body.signature {
            if let trustedKeys {
                try TrustedKeys(trustedKeys, revokedKeyIDs: revokedKeyIDs).verify(
                    signature, over: ArtifactSignature.message(digest: body.digest), offset: body.signatureOffset)
            } else if requireSignature {
                throw ArtifactError(
                    .untrustedKey, "a signature is required but no trusted keys were given to check it",
                    offset: body.signatureOffset)
            }
        } else if requireSignature {
            throw ArtifactError(
                .missingSignature, "the artifact is not signed and a signature is required", offset: bytes.count)
        }
        self.init(
            manifest: body.manifest, tensors: body.tensors, goldenInputs: body.goldenInputs,
            goldenOutputs: body.goldenOutputs, signature: body.signature)
    }
}

/// The checked contents of an artifact's bytes, before the signature is verified.
struct ArtifactParser {
    var manifest: ModelManifest
    var tensors: [ArtifactTensor]
    var goldenInputs: Tensor
    var goldenOutputs: Tensor
    var digest: [UInt8]
    var signature: ArtifactSignature?
    var signatureOffset: Int

    private struct Entry {
        var name: String
        var type: ArtifactElementType
        var shape: [Int]
        var count: Int
        var offset: Int
        var byteCount: Int
    }

    static func parse(_ bytes: [UInt8]) throws(ArtifactError) -> ArtifactParser {
        let magic = ArtifactFormat.magic
        guard bytes.count >= magic.count else {
            throw ArtifactError(.truncated, "the file is \(bytes.count) bytes, shorter than the magic", offset: 0)
        }
        guard bytes.starts(with: magic) else {
            throw ArtifactError(.badMagic, "not a .tandem artifact (the first 8 bytes are not the magic)", offset: 0)
        }
        var header = ArtifactByteReader(bytes, from: magic.count, to: ArtifactFormat.headerByteCount, region: "header")
        let version = try header.uint32("format version")
        guard version == ArtifactFormat.version else {
            throw ArtifactError(
                .unsupportedVersion,
                "format version \(version) is not supported; this build reads version \(ArtifactFormat.version)",
                offset: 8)
        }
        let flags = try header.uint32("flags")
        let manifestByteCount = Int(try header.uint32("manifest length"))
        let tensorCount = Int(try header.uint32("tensor count"))
        let tableByteCount = Int(try header.uint32("table length"))
        let reserved = try header.uint32("reserved")
        let dataOffsetField = try header.uint64("data offset")
        let dataByteCountField = try header.uint64("data length")

        guard flags == 0 else { throw ArtifactError(.malformed, "unknown flags \(flags)", offset: 12) }
        guard reserved == 0 else { throw ArtifactError(.malformed, "reserved field is \(reserved), not 0", offset: 28) }
        guard manifestByteCount <= ArtifactFormat.maximumManifestByteCount else {
            throw ArtifactError(.malformed, "manifest length \(manifestByteCount) exceeds the limit", offset: 16)
        }
        guard tensorCount <= ArtifactFormat.maximumTensorCount else {
            throw ArtifactError(.malformed, "tensor count \(tensorCount) exceeds the limit", offset: 20)
        }
        guard tableByteCount <= ArtifactFormat.maximumTableByteCount,
            (tensorCount + 2) * ArtifactFormat.minimumEntryByteCount <= tableByteCount
        else {
            throw ArtifactError(
                .malformed, "table length \(tableByteCount) cannot hold \(tensorCount) tensors plus the golden data",
                offset: 24)
        }
        let tableOffset = ArtifactFormat.headerByteCount + manifestByteCount
        let tableEnd = tableOffset + tableByteCount  // both bounded by the limits above: no overflow
        guard let expectedDataOffset = ArtifactFormat.aligned(tableEnd),
            let dataOffset = Int(exactly: dataOffsetField), dataOffset == expectedDataOffset
        else {
            throw ArtifactError(
                .malformed, "data offset \(dataOffsetField) should be \(tableEnd) rounded up to 64", offset: 32)
        }
        guard let dataByteCount = Int(exactly: dataByteCountField),
            case (let bodyEnd, false) = dataOffset.addingReportingOverflow(dataByteCount),
            case (let digestEnd, false) = bodyEnd.addingReportingOverflow(ArtifactFormat.digestByteCount)
        else {
            throw ArtifactError(.malformed, "data length \(dataByteCountField) is out of range", offset: 40)
        }
        guard bytes.count >= digestEnd else {
            throw ArtifactError(
                .truncated,
                "the file is \(bytes.count) bytes but its header puts the checksum at bytes \(bodyEnd)..<\(digestEnd)",
                offset: bytes.count)
        }

        // Integrity before meaning: nothing below is parsed from bytes the checksum has not vouched for
        // (the bounds checks stay, since anyone can recompute a SHA-256).
        let digest = ModelArtifact.digest(of: bytes[0..<bodyEnd])
        guard bytes[bodyEnd..<digestEnd].elementsEqual(digest) else {
            throw ArtifactError(
                .checksumMismatch, "the SHA-256 of bytes 0..<\(bodyEnd) does not match", offset: bodyEnd)
        }
        let signature = try parseSignatureBlock(bytes, at: digestEnd, digest: digest)

        let manifest = try ModelArtifact.decodeManifest(
            bytes[ArtifactFormat.headerByteCount..<tableOffset], offset: ArtifactFormat.headerByteCount)

        var table = ArtifactByteReader(bytes, from: tableOffset, to: tableEnd, region: "tensor table")
        var entries: [Entry] = []
        entries.reserveCapacity(tensorCount + 2)
        var names = Set<String>()
        var cursor = dataOffset
        for index in 0..<(tensorCount + 2) {
            let entry = try parseEntry(&table, index: index, dataEnd: bodyEnd, cursor: cursor)
            guard names.insert(entry.name).inserted else {
                throw ArtifactError(.malformed, "tensor name '\(entry.name)' appears twice", offset: table.position)
            }
            try requireZero(bytes, cursor..<entry.offset, what: "padding before tensor '\(entry.name)'")
            entries.append(entry)
            cursor = entry.offset + entry.byteCount
        }
        guard table.position == tableEnd else {
            throw ArtifactError(
                .malformed, "the tensor table has \(tableEnd - table.position) bytes after its last entry",
                offset: table.position)
        }
        try requireZero(bytes, tableEnd..<dataOffset, what: "padding after the tensor table")
        guard cursor == bodyEnd else {
            throw ArtifactError(
                .malformed, "the data region has \(bodyEnd - cursor) bytes after the last tensor", offset: cursor)
        }

        let golden = entries.suffix(2)
        for (entry, name) in zip(golden, [ArtifactFormat.goldenInputsName, ArtifactFormat.goldenOutputsName]) {
            guard entry.name == name, entry.type == .float32 else {
                throw ArtifactError(
                    .malformed, "expected float32 '\(name)', found \(entry.type) '\(entry.name)'", offset: tableOffset)
            }
        }
        let loaded = entries.map { entry in load(entry, from: bytes) }
        guard case .float32(let goldenInputs) = loaded[tensorCount].storage,
            case .float32(let goldenOutputs) = loaded[tensorCount + 1].storage
        else {
            throw ArtifactError(.malformed, "golden data is not float32", offset: tableOffset)
        }
        return ArtifactParser(
            manifest: manifest, tensors: Array(loaded.prefix(tensorCount)), goldenInputs: goldenInputs,
            goldenOutputs: goldenOutputs, digest: digest, signature: signature, signatureOffset: digestEnd)
    }

    private static func parseEntry(
        _ table: inout ArtifactByteReader, index: Int, dataEnd: Int, cursor: Int
    ) throws(ArtifactError) -> Entry {
        let start = table.position
        let nameLength = Int(try table.uint16("name length of entry \(index)"))
        let typeCode = try table.uint8("element type of entry \(index)")
        let rank = Int(try table.uint8("rank of entry \(index)"))
        guard (1...ArtifactTensor.maximumNameLength).contains(nameLength) else {
            throw ArtifactError(.malformed, "entry \(index) has a name of \(nameLength) bytes", offset: start)
        }
        let nameBytes = try table.take(nameLength, "name of entry \(index)")
        guard let name = String(validating: nameBytes, as: UTF8.self) else {
            throw ArtifactError(.malformed, "entry \(index) has a name that is not UTF-8", offset: start + 4)
        }
        guard let type = ArtifactElementType(rawValue: typeCode) else {
            throw ArtifactError(.malformed, "tensor '\(name)' has unknown element type \(typeCode)", offset: start + 2)
        }
        guard rank <= ArtifactTensor.maximumRank else {
            throw ArtifactError(.malformed, "tensor '\(name)' has rank \(rank)", offset: start + 3)
        }
        var shape: [Int] = []
        var count = 1
        for axis in 0..<rank {
            let at = table.position
            let field = try table.uint64("dimension \(axis) of tensor '\(name)'")
            guard field <= UInt64(ArtifactFormat.maximumDimension),
                case (let product, false) = count.multipliedReportingOverflow(by: Int(field)),
                product <= dataEnd
            else {
                throw ArtifactError(
                    .malformed, "tensor '\(name)' dimension \(axis) = \(field) makes it larger than the file",
                    offset: at)
            }
            shape.append(Int(field))
            count = product
        }
        let offsetAt = table.position
        let offsetField = try table.uint64("data offset of tensor '\(name)'")
        let lengthField = try table.uint64("data length of tensor '\(name)'")
        // count <= dataEnd and the width is at most 4, so the byte count cannot overflow.
        let byteCount = count * type.byteWidth
        guard lengthField == UInt64(byteCount) else {
            throw ArtifactError(
                .malformed,
                "tensor '\(name)' is \(type) \(shape), \(byteCount) bytes, but its length says \(lengthField)",
                offset: offsetAt + 8)
        }
        guard let expected = ArtifactFormat.aligned(cursor), offsetField == UInt64(expected) else {
            throw ArtifactError(
                .malformed,
                "tensor '\(name)' starts at \(offsetField); the layout puts it at the next 64-byte "
                    + "boundary after byte \(cursor)", offset: offsetAt)
        }
        guard expected <= dataEnd, byteCount <= dataEnd - expected else {
            throw ArtifactError(
                .malformed, "tensor '\(name)' at \(expected)+\(byteCount) runs past the data region's end \(dataEnd)",
                offset: offsetAt)
        }
        return Entry(name: name, type: type, shape: shape, count: count, offset: expected, byteCount: byteCount)
    }

    private static func load(_ entry: Entry, from bytes: [UInt8]) -> ArtifactTensor {
        switch entry.type {
        case .float32:
            let bits = bytes.littleEndianValues(of: UInt32.self, at: entry.offset, count: entry.count)
            return .float32(entry.name, Tensor(shape: entry.shape, scalars: bits.map(Float.init(bitPattern:))))
        case .int8:
            let values = bytes[entry.offset..<(entry.offset + entry.count)].map { Int8(bitPattern: $0) }
            return .int8(entry.name, shape: entry.shape, values: values)
        case .int32:
            let values = bytes.littleEndianValues(of: Int32.self, at: entry.offset, count: entry.count)
            return .int32(entry.name, shape: entry.shape, values: values)
        }
    }

    private static func requireZero(_ bytes: [UInt8], _ range: Range<Int>, what: String) throws(ArtifactError) {
        if let index = bytes[range].firstIndex(where: { $0 != 0 }) {
            throw ArtifactError(.malformed, "\(what) is not zero", offset: index)
        }
    }

    private static func parseSignatureBlock(
        _ bytes: [UInt8], at start: Int, digest: [UInt8]
    ) throws(ArtifactError) -> ArtifactSignature? {
        let remaining = bytes.count - start
        if remaining == 0 { return nil }
        let marker = ArtifactFormat.signatureMarker
        guard bytes[start...].starts(with: marker.prefix(remaining)) else {
            throw ArtifactError(
                .trailingBytes, "\(remaining) bytes follow the checksum and they are not a signature block",
                offset: start)
        }
        let size = ArtifactFormat.signatureBlockByteCount
        guard remaining >= size else {
            throw ArtifactError(
                .truncated, "the signature block is \(remaining) of \(size) bytes", offset: bytes.count)
        }
        guard remaining == size else {
            throw ArtifactError(
                .trailingBytes, "\(remaining - size) bytes follow the signature block", offset: start + size)
        }
        let signedEnd = start + ArtifactFormat.signatureBlockSignedPrefix
        let blockDigest = ModelArtifact.digest(of: digest + bytes[start..<signedEnd])
        guard bytes[signedEnd..<(start + size)].elementsEqual(blockDigest) else {
            throw ArtifactError(.checksumMismatch, "the signature block's SHA-256 does not match", offset: signedEnd)
        }
        var block = ArtifactByteReader(bytes, from: start + marker.count, to: signedEnd, region: "signature block")
        let algorithm = try block.uint32("signature algorithm")
        guard algorithm == ArtifactFormat.ed25519 else {
            throw ArtifactError(.badSignature, "unknown signature algorithm \(algorithm)", offset: start + 4)
        }
        let keyID = Array(try block.take(ArtifactSignature.keyIDByteCount, "key id"))
        let signature = Array(try block.take(ArtifactSignature.signatureByteCount, "signature"))
        guard let parsed = ArtifactSignature(keyID: keyID, signature: signature) else {
            throw ArtifactError(.truncated, "the signature block is too short", offset: start)
        }
        return parsed
    }
}
