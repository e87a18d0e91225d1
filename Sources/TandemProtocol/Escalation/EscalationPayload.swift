import TandemMQTT

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// An unsure window on its way to the cloud: the window itself, where it came from and what the edge thought.
///
/// Binary, little-endian, version 1, 2 or 3 (the byte layout is in docs/EDGE.md, "Payloads"):
/// magic `TE`, version, flags (versions 1 and 2, always 0) or the escalation reason (version 3), the 16-byte
/// escalation id, window start and end (float64 seconds),
/// sample rate (float32, 0 = unknown), channels (u16), window length (u32), top-k count (u8),
/// confidence (float32), in versions 2 and 3 the verdict deadline and the last use (float64 Unix seconds each, the
/// edge's clock; both 0 in version 3 for none),
/// device / stream / model version (u8 length + UTF-8 each), the standardized
/// window as IEEE binary16 sample-major, the top-k as (u16 label, float32 probability), and a CRC-32
/// of everything before it.
///
/// The window travels as float16: it is standardized, so values sit near ±3 where binary16 keeps
/// about three significant digits — well below sensor noise — at half the size of float32 and
/// without the per-channel scale an int16 encoding would need.
public struct EscalationPayload: Sendable, Equatable {
    /// One of the edge model's top-k classes.
    public struct RankedLabel: Sendable, Equatable {
        /// Class index in the model's class names.
        public var label: Int
        /// Its probability.
        public var probability: Float

        /// Creates a ranked label.
        public init(label: Int, probability: Float) {
            self.label = label
            self.probability = probability
        }
    }

    /// The newest payload format version this build writes: 3, the version-2 layout with byte 3 holding the
    /// ``EscalationReason``.
    ///
    /// A payload is written in the oldest version that holds it (``encodedVersion``): an uncertain window as
    /// version 1 without a deadline or version 2 with one — byte for byte what earlier edges sent — so an older
    /// cloud still takes every escalation it understands and refuses only novel and audit ones
    /// (`unsupportedVersion`). All three are read.
    public static let version: UInt8 = 3
    /// The versions this build reads.
    public static let readableVersions: ClosedRange<UInt8> = 1...3
    /// The two magic bytes, `TE`.
    public static let magic: [UInt8] = [0x54, 0x45]
    /// The most window values a payload may carry (bounds what a decoder allocates).
    public static let maximumValues = 1 << 20

    /// Escalation id; the cloud's verdict and any label refer to it. Receivers are idempotent on it.
    public var id: UUID
    /// The device that escalated.
    public var device: String
    /// The stream the window came from.
    public var stream: String
    /// The version of the edge model that classified it.
    public var modelVersion: String
    /// Timestamp of the window's first sample (seconds).
    public var windowStart: Double
    /// Timestamp of the window's last sample (seconds).
    public var windowEnd: Double
    /// The stream's nominal sample rate, if known.
    public var sampleRateHz: Double?
    /// Channels per sample.
    public var channels: Int
    /// Samples in the window.
    public var length: Int
    /// `length × channels` standardized values, sample-major (float16 precision once decoded).
    public var window: [Float]
    /// The edge model's most probable classes, most probable first.
    public var topK: [RankedLabel]
    /// The edge's confidence in its prediction.
    public var confidence: Float
    /// When the edge stops waiting for the verdict and keeps its own, provisional (Unix seconds, the edge's clock),
    /// or nil. A cloud answers escalations that can still arrive in time first.
    public var deadline: Double?
    /// The last moment a verdict is of use to the edge: until then a late one still corrects the provisional record
    /// (Unix seconds, the edge's clock; not before ``deadline``). A cloud stores an escalation past it for training
    /// and does not answer it. Present exactly when ``deadline`` is.
    public var lastUse: Double?
    /// Why the edge escalated the window (``EscalationReason/uncertain`` for payloads of versions 1 and 2).
    public var reason: EscalationReason

    /// Creates a payload.
    public init(
        id: UUID, device: String, stream: String, modelVersion: String, windowStart: Double, windowEnd: Double,
        sampleRateHz: Double?, channels: Int, length: Int, window: [Float], topK: [RankedLabel], confidence: Float,
        deadline: (verdict: Double, lastUse: Double)? = nil, reason: EscalationReason = .uncertain
    ) {
        self.id = id
        self.device = device
        self.stream = stream
        self.modelVersion = modelVersion
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.sampleRateHz = sampleRateHz
        self.channels = channels
        self.length = length
        self.window = window
        self.topK = topK
        self.confidence = confidence
        self.deadline = deadline?.verdict
        self.lastUse = deadline?.lastUse
        self.reason = reason
    }

    /// The version ``encoded()`` writes: 3 for a novel or audit window, else 2 with a deadline and 1 without.
    public var encodedVersion: UInt8 { reason != .uncertain ? 3 : deadline == nil ? 1 : 2 }

    /// The `k` most probable classes of `probabilities`, most probable first (ties: lower index first).
    public static func topK(_ probabilities: UnsafeBufferPointer<Float>, k: Int) -> [RankedLabel] {
        var result = [RankedLabel]()
        result.reserveCapacity(min(k, probabilities.count))
        for (i, p) in probabilities.enumerated() {
            let candidate = RankedLabel(label: i, probability: p)
            var at = result.count
            while at > 0 && result[at - 1].probability < p { at -= 1 }
            if at < k {
                result.insert(candidate, at: at)
                if result.count > k { result.removeLast() }
            }
        }
        return result
    }

    /// The encoded bytes.
    ///
    /// - Throws: ``PayloadError`` with code `malformed` if a field does not fit the layout (a name over
    ///   255 UTF-8 bytes, a window whose size is not `length × channels`, more than 255 top-k entries).
    public func encoded() throws(PayloadError) -> [UInt8] {
        let device = Array(device.utf8), stream = Array(stream.utf8), model = Array(modelVersion.utf8)
        for (name, bytes) in [("device", device), ("stream", stream), ("modelVersion", model)] where bytes.count > 255 {
            throw PayloadError(.malformed, "\(name) is \(bytes.count) UTF-8 bytes, at most 255 fit")
        }
        guard channels > 0, channels <= Int(UInt16.max), length > 0, channels * length <= Self.maximumValues else {
            throw PayloadError(.malformed, "channels \(channels) × length \(length) is outside the layout's limits")
        }
        guard window.count == channels * length else {
            throw PayloadError(
                .malformed, "window has \(window.count) values, channels × length is \(channels * length)")
        }
        if deadline != nil || lastUse != nil {
            guard let deadline, let lastUse, deadline.isFinite, lastUse.isFinite, deadline > 0, lastUse >= deadline
            else {
                throw PayloadError(
                    .malformed,
                    "deadline \(deadline ?? .nan) and last use \(lastUse ?? .nan) are not positive finite times "
                        + "in order")
            }
        }
        guard topK.count <= 255, topK.allSatisfy({ $0.label >= 0 && $0.label <= Int(UInt16.max) }) else {
            throw PayloadError(.malformed, "top-k has \(topK.count) entries (≤ 255) or a label outside 0…65535")
        }
        var out = [UInt8]()
        out.reserveCapacity(72 + device.count + stream.count + model.count + 2 * window.count + 6 * topK.count)
        out += Self.magic
        let version = encodedVersion
        out.append(version)
        out.append(version == 3 ? reason.rawValue : 0)
        let u = id.uuid
        out += [u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15]
        Self.put(windowStart.bitPattern, into: &out)
        Self.put(windowEnd.bitPattern, into: &out)
        Self.put(Float(sampleRateHz ?? 0).bitPattern, into: &out)
        Self.put(UInt16(channels), into: &out)
        Self.put(UInt32(length), into: &out)
        out.append(UInt8(topK.count))
        Self.put(confidence.bitPattern, into: &out)
        if let deadline, let lastUse {
            Self.put(deadline.bitPattern, into: &out)
            Self.put(lastUse.bitPattern, into: &out)
        } else if version == 3 {
            Self.put(UInt64(0), into: &out)
            Self.put(UInt64(0), into: &out)
        }
        for bytes in [device, stream, model] {
            out.append(UInt8(bytes.count))
            out += bytes
        }
        for v in window { Self.put(Float16Bits.encode(v), into: &out) }
        for entry in topK {
            Self.put(UInt16(entry.label), into: &out)
            Self.put(entry.probability.bitPattern, into: &out)
        }
        let crc = out.withUnsafeBytes { CRC32.checksum($0) }
        Self.put(crc, into: &out)
        return out
    }

    /// Decodes a payload.
    ///
    /// - Throws: ``PayloadError``: `badMagic`, `unsupportedVersion`, `truncated` (naming the field that does
    ///   not fit), `checksumMismatch`, or `malformed`. Never traps, whatever the bytes.
    public init(decoding bytes: [UInt8]) throws(PayloadError) {
        var reader = ByteReader(bytes)
        guard bytes.count >= 2 else {
            throw PayloadError(.truncated, "\(bytes.count) bytes, not even the magic", offset: 0)
        }
        guard bytes[0] == Self.magic[0], bytes[1] == Self.magic[1] else {
            throw PayloadError(.badMagic, "does not start with the escalation magic `TE`", offset: 0)
        }
        reader.position = 2
        let version = try reader.u8("version")
        guard Self.readableVersions.contains(version) else {
            throw PayloadError(.unsupportedVersion, "version \(version), this build reads 1, 2 and 3", offset: 2)
        }
        let flags = try reader.u8(version == 3 ? "reason" : "flags")
        if version == 3 {
            // A device names its own reason; one this build does not know is refused, not guessed.
            guard let named = EscalationReason(rawValue: flags) else {
                throw PayloadError(.malformed, "escalation reason \(flags) is not 0, 1 or 2", offset: 3)
            }
            reason = named
        } else {
            guard flags == 0 else {
                throw PayloadError(.malformed, "reserved flags are \(flags), must be 0", offset: 3)
            }
            reason = .uncertain
        }
        // The checksum is checked before any length is trusted: a corrupted length must not decide what is read.
        guard bytes.count >= 4 + 16 + 8 + 8 + 4 + 2 + 4 + 1 + 4 + (version >= 2 ? 16 : 0) + 3 + 4 else {
            throw PayloadError(
                .truncated, "\(bytes.count) bytes, shorter than the fixed header and checksum", offset: bytes.count)
        }
        let stored =
            UInt32(bytes[bytes.count - 4]) | UInt32(bytes[bytes.count - 3]) << 8
            | UInt32(bytes[bytes.count - 2]) << 16 | UInt32(bytes[bytes.count - 1]) << 24
        let computed = bytes.withUnsafeBytes {
            CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 4)]))
        }
        guard stored == computed else {
            throw PayloadError(
                .checksumMismatch, "CRC-32 is \(stored), the bytes give \(computed) (truncated or corrupted)",
                offset: bytes.count - 4)
        }
        reader.end = bytes.count - 4
        let idOffset = reader.position
        _ = try reader.bytes(16, "escalation id")
        id = UUID(uuid: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: idOffset, as: uuid_t.self) })
        windowStart = Double(bitPattern: try reader.u64("window start"))
        windowEnd = Double(bitPattern: try reader.u64("window end"))
        let rate = Float(bitPattern: try reader.u32("sample rate"))
        sampleRateHz = rate == 0 ? nil : Double(rate)
        channels = Int(try reader.u16("channels"))
        length = Int(try reader.u32("window length"))
        let k = Int(try reader.u8("top-k count"))
        confidence = Float(bitPattern: try reader.u32("confidence"))
        // Numbers a device sends are checked before anything computes with them: a NaN window stored for
        // training would poison every later round.
        guard windowStart.isFinite, windowEnd.isFinite, windowEnd >= windowStart else {
            throw PayloadError(
                .malformed, "window start \(windowStart) and end \(windowEnd) are not a finite span", offset: 20)
        }
        guard rate.isFinite, rate >= 0 else {
            throw PayloadError(.malformed, "sample rate \(rate) is not a finite non-negative number", offset: 36)
        }
        guard confidence.isFinite else {
            throw PayloadError(.malformed, "confidence \(confidence) is not finite", offset: 47)
        }
        guard channels > 0, length > 0, channels * length <= Self.maximumValues else {
            throw PayloadError(
                .malformed, "channels \(channels) × length \(length) is outside the layout's limits", offset: 40)
        }
        if version >= 2 {
            let deadline = Double(bitPattern: try reader.u64("deadline"))
            let lastUse = Double(bitPattern: try reader.u64("last use"))
            if version == 3 && deadline.bitPattern == 0 && lastUse.bitPattern == 0 {
                (self.deadline, self.lastUse) = (nil, nil)
            } else {
                guard deadline.isFinite, lastUse.isFinite, deadline > 0, lastUse >= deadline else {
                    throw PayloadError(
                        .malformed,
                        "deadline \(deadline) and last use \(lastUse) are not positive finite times in order",
                        offset: 51)
                }
                (self.deadline, self.lastUse) = (deadline, lastUse)
            }
        } else {
            (deadline, lastUse) = (nil, nil)
        }
        device = try reader.text("device")
        stream = try reader.text("stream")
        modelVersion = try reader.text("model version")
        let count = channels * length
        guard reader.remaining >= 2 * count else {
            throw PayloadError(
                .truncated, "window needs \(2 * count) bytes, \(reader.remaining) left", offset: reader.position)
        }
        let windowOffset = reader.position
        // The first value that is not finite (binary16 exponent all ones: infinity or NaN), if any.
        var notFinite = -1
        window = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                for i in 0..<count {
                    let half = raw.loadUnaligned(fromByteOffset: windowOffset + 2 * i, as: UInt16.self).littleEndian
                    if half & 0x7C00 == 0x7C00 && notFinite < 0 { notFinite = i }
                    buffer[i] = Float16Bits.decode(half)
                }
            }
            initialized = count
        }
        guard notFinite < 0 else {
            let i = notFinite
            throw PayloadError(
                .malformed, "window value \(i) (channel \(i % channels), sample \(i / channels)) is \(window[i])",
                offset: windowOffset + 2 * i)
        }
        reader.position += 2 * count
        var topK = [RankedLabel]()
        topK.reserveCapacity(k)
        for _ in 0..<k {
            let label = Int(try reader.u16("top-k label"))
            let offset = reader.position
            let p = Float(bitPattern: try reader.u32("top-k probability"))
            guard p.isFinite, p >= 0, p <= 1 else {
                throw PayloadError(.malformed, "top-k probability \(p) is outside 0…1", offset: offset)
            }
            topK.append(RankedLabel(label: label, probability: p))
        }
        self.topK = topK
        guard reader.remaining == 0 else {
            throw PayloadError(.malformed, "\(reader.remaining) bytes follow the last field", offset: reader.position)
        }
    }

    private static func put<T: FixedWidthInteger>(_ value: T, into out: inout [UInt8]) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { out += $0 }
    }
}

/// Bounds-checked little-endian reads; every read names its field in the error.
struct ByteReader {
    let bytes: [UInt8]
    var position = 0
    var end: Int

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        end = bytes.count
    }

    var remaining: Int { end - position }

    mutating func bytes(_ count: Int, _ field: String) throws(PayloadError) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else {
            throw PayloadError(.truncated, "\(field) needs \(count) bytes, \(max(remaining, 0)) left", offset: position)
        }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type, _ field: String) throws(PayloadError) -> T {
        let slice = try bytes(MemoryLayout<T>.size, field)
        var value: T = 0
        for (shift, byte) in slice.enumerated() { value |= T(byte) << (8 * shift) }
        return value
    }

    mutating func u8(_ field: String) throws(PayloadError) -> UInt8 { try integer(UInt8.self, field) }
    mutating func u16(_ field: String) throws(PayloadError) -> UInt16 { try integer(UInt16.self, field) }
    mutating func u32(_ field: String) throws(PayloadError) -> UInt32 { try integer(UInt32.self, field) }
    mutating func u64(_ field: String) throws(PayloadError) -> UInt64 { try integer(UInt64.self, field) }

    mutating func text(_ field: String) throws(PayloadError) -> String {
        let start = position
        guard remaining >= 1 else {
            throw PayloadError(.truncated, "\(field) length needs 1 bytes, \(max(remaining, 0)) left", offset: position)
        }
        let count = Int(bytes[position])
        position += 1
        let raw = try bytes(count, field)
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw PayloadError(.malformed, "\(field) is not UTF-8", offset: start)
        }
        return text
    }
}
