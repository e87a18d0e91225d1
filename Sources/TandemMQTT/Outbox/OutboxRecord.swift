/// The byte layout of journal records.
///
/// Every record is `length: UInt32 LE | crc32(body): UInt32 LE | body`. The body starts with a kind byte
/// and the message's sequence number (`UInt64 LE`); a message body goes on with QoS, retain, topic, payload
/// and the v5 properties, each string or blob length-prefixed.
package enum OutboxRecord {
    static let headerSize = 8
    static let kindMessage: UInt8 = 1
    static let kindRemoval: UInt8 = 2
    /// Bodies larger than this are treated as corruption rather than allocated.
    static let maximumBodySize = 256 * 1024 * 1024

    /// A decoded record.
    enum Decoded {
        case message(sequence: UInt64, MQTTMessage)
        case removal(sequence: UInt64)
    }

    /// Why a record could not be read.
    enum ReadFailure: Error {
        case truncated
        case checksumMismatch
        case malformed
    }

    package static func encodeMessage(_ message: MQTTMessage, sequence: UInt64) throws -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(64 + message.topic.utf8.count + message.payload.count)
        body.append(kindMessage)
        appendInteger(sequence, to: &body)
        body.append(UInt8(message.qos.rawValue))
        body.append(message.retain ? 1 : 0)
        try appendShortBlob(Array(message.topic.utf8), to: &body, what: "topic")
        appendInteger(UInt32(message.payload.count), to: &body)
        body.append(contentsOf: message.payload)
        let properties = message.properties
        try appendOptionalBlob(properties.responseTopic.map { Array($0.utf8) }, to: &body, what: "response topic")
        try appendOptionalBlob(properties.correlationData, to: &body, what: "correlation data")
        try appendOptionalBlob(properties.contentType.map { Array($0.utf8) }, to: &body, what: "content type")
        if let expiry = properties.messageExpirySeconds {
            body.append(1)
            appendInteger(expiry, to: &body)
        } else {
            body.append(0)
        }
        guard properties.userProperties.count <= Int(UInt16.max) else {
            throw MQTTError(.invalidArgument, "too many user properties for the outbox journal")
        }
        appendInteger(UInt16(properties.userProperties.count), to: &body)
        for property in properties.userProperties {
            try appendShortBlob(Array(property.name.utf8), to: &body, what: "user property name")
            try appendShortBlob(Array(property.value.utf8), to: &body, what: "user property value")
        }
        return frame(body)
    }

    package static func encodeRemoval(sequence: UInt64) -> [UInt8] {
        var body: [UInt8] = [kindRemoval]
        appendInteger(sequence, to: &body)
        return frame(body)
    }

    private static func frame(_ body: [UInt8]) -> [UInt8] {
        var record: [UInt8] = []
        record.reserveCapacity(headerSize + body.count)
        appendInteger(UInt32(body.count), to: &record)
        appendInteger(CRC32.checksum(body), to: &record)
        record.append(contentsOf: body)
        return record
    }

    /// Reads the record at `offset`; returns it and its total size.
    static func read(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(ReadFailure) -> (Decoded, Int) {
        guard bytes.count - offset >= headerSize else { throw .truncated }
        let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
        let checksum = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self).littleEndian
        guard length >= 9, length <= maximumBodySize else { throw .malformed }
        guard bytes.count - offset - headerSize >= length else { throw .truncated }
        let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + headerSize)..<(offset + headerSize + length)])
        guard CRC32.checksum(body) == checksum else { throw .checksumMismatch }
        var reader = Reader(bytes: body)
        let kind: UInt8 = try reader.integer()
        let sequence: UInt64 = try reader.integer()
        switch kind {
        case kindRemoval:
            return (.removal(sequence: sequence), headerSize + length)
        case kindMessage:
            let qosByte: UInt8 = try reader.integer()
            guard let qos = MQTTQoS(rawValue: Int32(qosByte)) else { throw .malformed }
            let retain: UInt8 = try reader.integer()
            let topic = String(decoding: try reader.shortBlob(), as: UTF8.self)
            let payloadLength: UInt32 = try reader.integer()
            let payload = try reader.bytes(Int(payloadLength))
            var properties = MQTTPublishProperties()
            properties.responseTopic = try reader.optionalBlob().map { String(decoding: $0, as: UTF8.self) }
            properties.correlationData = try reader.optionalBlob()
            properties.contentType = try reader.optionalBlob().map { String(decoding: $0, as: UTF8.self) }
            let hasExpiry: UInt8 = try reader.integer()
            if hasExpiry == 1 { properties.messageExpirySeconds = try reader.integer() as UInt32 }
            let userCount: UInt16 = try reader.integer()
            for _ in 0..<userCount {
                let name = String(decoding: try reader.shortBlob(), as: UTF8.self)
                let value = String(decoding: try reader.shortBlob(), as: UTF8.self)
                properties.userProperties.append(MQTTUserProperty(name, value))
            }
            let message = MQTTMessage(
                topic: topic, payload: payload, qos: qos, retain: retain == 1, properties: properties)
            return (.message(sequence: sequence, message), headerSize + length)
        default:
            throw .malformed
        }
    }

    private static func appendInteger<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func appendShortBlob(_ blob: [UInt8], to bytes: inout [UInt8], what: String) throws {
        guard blob.count <= Int(UInt16.max) else {
            throw MQTTError(.invalidArgument, "\(what) of \(blob.count) bytes is too long for MQTT")
        }
        appendInteger(UInt16(blob.count), to: &bytes)
        bytes.append(contentsOf: blob)
    }

    private static func appendOptionalBlob(_ blob: [UInt8]?, to bytes: inout [UInt8], what: String) throws {
        guard let blob else {
            bytes.append(0)
            return
        }
        bytes.append(1)
        try appendShortBlob(blob, to: &bytes, what: what)
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        mutating func integer<T: FixedWidthInteger>() throws(ReadFailure) -> T {
            guard bytes.count - offset >= MemoryLayout<T>.size else { throw .malformed }
            defer { offset += MemoryLayout<T>.size }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }

        mutating func bytes(_ count: Int) throws(ReadFailure) -> [UInt8] {
            guard count >= 0, bytes.count - offset >= count else { throw .malformed }
            defer { offset += count }
            return Array(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
        }

        mutating func shortBlob() throws(ReadFailure) -> [UInt8] {
            let length: UInt16 = try integer()
            return try bytes(Int(length))
        }

        mutating func optionalBlob() throws(ReadFailure) -> [UInt8]? {
            let present: UInt8 = try integer()
            return present == 1 ? try shortBlob() : nil
        }
    }
}
