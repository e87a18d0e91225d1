import Foundation
import TandemCore
import TandemMQTT
import TandemProtocol
import Testing

struct PayloadTests {
    static func sample(values: [Float]? = nil) -> EscalationPayload {
        let window = values ?? (0..<24).map { Float($0) * 0.25 - 3 }
        return EscalationPayload(
            id: UUID(uuidString: "8A1C6F3E-2B4D-4E5F-9A7B-0C1D2E3F4A5B") ?? UUID(), device: "edge-07", stream: "pump-ä",
            modelVersion: "edge-2026.11.23", windowStart: 1_700_000_000.125, windowEnd: 1_700_000_000.625,
            sampleRateHz: 16, channels: 3, length: 8, window: window,
            topK: [.init(label: 2, probability: 0.5), .init(label: 0, probability: 0.3)], confidence: 0.5)
    }

    @Test("encode → decode gives the same payload (values representable in float16)")
    func roundTrip() throws {
        let payload = Self.sample()
        let bytes = try payload.encoded()
        #expect(bytes.count == 4 + 16 + 8 + 8 + 4 + 2 + 4 + 1 + 4 + (1 + 7) + (1 + 7) + (1 + 15) + 48 + 12 + 4)
        #expect(try EscalationPayload(decoding: bytes) == payload)
    }

    @Test("float16 conversion rounds to nearest, keeps signs, saturates to infinity")
    func float16() {
        for v: Float in [0, -0.0, 1, -2.5, 65504, 0x1p-24, 0x1p-14, 0.333251953125] {
            #expect(Float16Bits.decode(Float16Bits.encode(v)) == v, "\(v)")
        }
        #expect(Float16Bits.decode(Float16Bits.encode(1e6)) == .infinity)
        #expect(Float16Bits.decode(Float16Bits.encode(.nan)).isNaN)
        #expect(abs(Float16Bits.decode(Float16Bits.encode(0.1)) - 0.1) < 0.0001)
        // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
        #expect(Float16Bits.decode(Float16Bits.encode(1 + 0x1p-11)) == 1)
        #expect(Float16Bits.decode(Float16Bits.encode(1 + 0x1p-11 + 0x1p-20)) == 1 + 0x1p-10)
    }

    @Test("every truncation is rejected with an error, never a crash")
    func truncations() throws {
        let bytes = try Self.sample().encoded()
        for n in 0..<bytes.count {
            #expect(throws: PayloadError.self) { try EscalationPayload(decoding: Array(bytes[0..<n])) }
        }
    }

    @Test("random corruption and random bytes are rejected, never a crash")
    func corruption() throws {
        let bytes = try Self.sample().encoded()
        var generator = SeededGenerator(seed: 5)
        for _ in 0..<3000 {
            var copy = bytes
            let flips = Int.random(in: 1...4, using: &generator)
            for _ in 0..<flips {
                copy[Int.random(in: 0..<copy.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            }
            #expect(throws: PayloadError.self) { try EscalationPayload(decoding: copy) }
        }
        for _ in 0..<1000 {
            let junk = (0..<Int.random(in: 0..<200, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            #expect(throws: PayloadError.self) { try EscalationPayload(decoding: junk) }
        }
    }

    /// A way a hostile device bends one field, and the field the refusal names.
    enum Damage: String, CaseIterable, Sendable {
        case nanValue = "window value 5", infiniteValue = "window value 7", nanStart = "window start"
        case backwardsSpan = "window start and end", negativeRate = "sample rate", infiniteConfidence = "confidence"
        case probabilityAboveOne = "probability"

        func apply(to payload: inout EscalationPayload) {
            switch self {
            case .nanValue: payload.window[5] = .nan
            case .infiniteValue: payload.window[7] = .infinity
            case .nanStart: payload.windowStart = .nan
            case .backwardsSpan: payload.windowEnd = payload.windowStart - 1
            case .negativeRate: payload.sampleRateHz = -50
            case .infiniteConfidence: payload.confidence = .infinity
            case .probabilityAboveOne: payload.topK[0].probability = 1.5
            }
        }

        var field: String { self == .backwardsSpan ? "window start" : rawValue }
    }

    @Test("numbers no honest edge sends are refused at decode, naming the field", arguments: Damage.allCases)
    func nonFiniteRefused(damage: Damage) throws {
        var payload = Self.sample()
        #expect(throws: Never.self) { try EscalationPayload(decoding: try payload.encoded()) }
        damage.apply(to: &payload)
        let bytes = try payload.encoded()
        #expect {
            try EscalationPayload(decoding: bytes)
        } throws: { error in
            (error as? PayloadError).map { $0.code == .malformed && $0.message.contains(damage.field) } ?? false
        }
    }

    @Test("a wrong magic or version is named as such")
    func versioning() throws {
        var bytes = try Self.sample().encoded()
        bytes[2] = 9
        #expect(throws: PayloadError(.unsupportedVersion, "version 9, this build reads 1, 2 and 3", offset: 2)) {
            try EscalationPayload(decoding: bytes)
        }
        bytes[0] = 0
        #expect((try? EscalationPayload(decoding: bytes)) == nil)
        do {
            _ = try EscalationPayload(decoding: bytes)
        } catch {
            #expect(error.code == .badMagic)
        }
    }

    @Test(
        "version 2 carries the verdict deadline and last use; without them a payload is written as version 1, which still reads"
    )
    func deadlines() throws {
        var payload = Self.sample()
        let v1 = try payload.encoded()
        #expect(v1[2] == 1)
        #expect(try EscalationPayload(decoding: v1).deadline == nil)
        payload.deadline = 1_700_000_000.75
        payload.lastUse = 1_700_000_060.75
        let v2 = try payload.encoded()
        #expect(v2[2] == 2 && v2.count == v1.count + 16)
        let decoded = try EscalationPayload(decoding: v2)
        #expect(decoded == payload && decoded.deadline == 1_700_000_000.75 && decoded.lastUse == 1_700_000_060.75)
        #expect(v2.count <= EscalationPayload.maximumEncodedBytes(channels: 3, length: 8))
        // An edge never writes these; a device that does is refused when it encodes and when the cloud decodes.
        for (deadline, lastUse) in [(Double.nan, 1.0), (-1, 5), (10, 5), (.infinity, .infinity), (0, 0)] {
            var bad = payload
            (bad.deadline, bad.lastUse) = (deadline, lastUse)
            #expect(throws: PayloadError.self) { try bad.encoded() }
            var bytes = v2
            withUnsafeBytes(of: deadline.bitPattern.littleEndian) { bytes.replaceSubrange(51..<59, with: $0) }
            withUnsafeBytes(of: lastUse.bitPattern.littleEndian) { bytes.replaceSubrange(59..<67, with: $0) }
            let crc = bytes.withUnsafeBytes {
                CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 4)]))
            }
            withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange((bytes.count - 4)..., with: $0) }
            #expect {
                try EscalationPayload(decoding: bytes)
            } throws: { error in
                (error as? PayloadError).map { $0.code == .malformed && $0.message.contains("deadline") } ?? false
            }
        }
        var half = payload
        half.lastUse = nil
        #expect(throws: PayloadError.self) { try half.encoded() }
    }

    @Test("top-k picks the most probable classes in order")
    func topK() {
        let p: [Float] = [0.1, 0.4, 0.05, 0.4, 0.05]
        let top = p.withUnsafeBufferPointer { EscalationPayload.topK($0, k: 3) }
        #expect(top.map(\.label) == [1, 3, 0])
    }

    @Test(
        "a verdict written by hand is the JSON JSONEncoder writes: same keys and values, any model version and numbers")
    func verdictEncoding() throws {
        var generator = SeededGenerator(seed: 31)
        let versions = ["full-3", "q\"uote\\back", "tab\tnew\nline\u{1}\u{1F}", "fünf-✓-🚀", ""]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for trial in 0..<200 {
            let probabilities = (0..<(1 + trial % 7)).map { k -> Float in
                switch k % 4 {
                case 0: Float(generator.nextGaussian()) * 1e-7
                case 1: 1
                case 2: 0
                default: abs(Float(generator.nextGaussian()))
                }
            }
            let verdict = Verdict(
                escalationId: UUID(), label: trial % probabilities.count, probabilities: probabilities,
                modelVersion: versions[trial % versions.count])
            let bytes = verdict.encoded()
            #expect(verdict.escalationId.text == verdict.escalationId.uuidString)
            #expect(try Verdict(decoding: bytes) == verdict)
            let mine = try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary
            let theirs = try JSONSerialization.jsonObject(with: try encoder.encode(verdict)) as? NSDictionary
            #expect(mine != nil && mine == theirs, "\(String(decoding: bytes, as: UTF8.self))")
        }
    }

    @Test("verdicts round-trip as JSON; bad verdicts are rejected")
    func verdicts() throws {
        let verdict = Verdict(escalationId: UUID(), label: 1, probabilities: [0.2, 0.8], modelVersion: "full-3")
        #expect(try Verdict(decoding: verdict.encoded()) == verdict)
        #expect(throws: PayloadError.self) { try Verdict(decoding: Array("{\"v\":1}".utf8)) }
        var bad = verdict
        bad.label = 2
        #expect(throws: PayloadError.self) { try Verdict(decoding: bad.encoded()) }
        bad = verdict
        bad.formatVersion = 2
        #expect(throws: PayloadError.self) { try Verdict(decoding: bad.encoded()) }
        #expect(throws: PayloadError.self) { try Verdict(decoding: [0xFF, 0x00]) }
    }
}

/// The escalation reason: version 3 carries it in byte 3; an uncertain window is still written as version 1 or 2.
struct EscalationReasonTests {
    @Test("each reason round-trips with and without a deadline; uncertain keeps the old layouts byte for byte")
    func roundTrip() throws {
        for reason in EscalationReason.allCases {
            for deadline in [nil, (verdict: 1.7e9, lastUse: 1.7e9 + 5)] {
                var payload = PayloadTests.sample()
                payload.reason = reason
                (payload.deadline, payload.lastUse) = (deadline?.verdict, deadline?.lastUse)
                let bytes = try payload.encoded()
                let version: UInt8 = reason != .uncertain ? 3 : deadline == nil ? 1 : 2
                #expect(bytes[2] == version && bytes[3] == (version == 3 ? reason.rawValue : 0))
                #expect(try EscalationPayload(decoding: bytes) == payload)
            }
        }
        var old = try PayloadTests.sample().encoded()
        #expect(old[2] == 1 && old[3] == 0)
        #expect(try EscalationPayload(decoding: old).reason == .uncertain, "a version 1 payload is uncertain")
        old[3] = 1
        #expect(throws: PayloadError.self, "version 1 keeps its reserved byte at 0") {
            try EscalationPayload(decoding: old)
        }
    }

    @Test("a version 3 payload naming a reason this build does not know is refused as malformed")
    func unknownReason() throws {
        var payload = PayloadTests.sample()
        payload.reason = .novel
        var bytes = try payload.encoded()
        for value: UInt8 in [3, 7, 255] {
            bytes[3] = value
            // Re-seal the CRC so only the reason is wrong.
            let body = Array(bytes[0..<(bytes.count - 4)])
            let crc = body.withUnsafeBytes { CRC32.checksum($0) }
            for i in 0..<4 { bytes[bytes.count - 4 + i] = UInt8(truncatingIfNeeded: crc >> (8 * i)) }
            #expect {
                try EscalationPayload(decoding: bytes)
            } throws: { error in
                (error as? PayloadError).map { $0.code == .malformed && $0.offset == 3 } ?? false
            }
        }
    }
}

/// The bytes on the wire, fixed: each version's encoding of one small payload, as written out from the layout table
/// in docs/PROTOCOL.md by a separate encoder. Edges and clouds of different builds meet on these bytes, so a change
/// to the encoder that round-trips with its own decoder but moves a field fails here.
struct PayloadGoldenBytesTests {
    static func payload(reason: EscalationReason, deadline: (verdict: Double, lastUse: Double)?) -> EscalationPayload {
        EscalationPayload(
            id: UUID(uuidString: "8A1C6F3E-2B4D-4E5F-9A7B-0C1D2E3F4A5B") ?? UUID(), device: "edge-07", stream: "s",
            modelVersion: "m-1", windowStart: 1.5, windowEnd: 2.25, sampleRateHz: 16, channels: 2, length: 2,
            window: [0.5, -1.25, 3, 65504],
            topK: [.init(label: 2, probability: 0.5), .init(label: 0, probability: 0.25)],
            confidence: 0.5, deadline: deadline, reason: reason)
    }

    static let header = "8a1c6f3e2b4d4e5f9a7b0c1d2e3f4a5b000000000000f83f000000000000024000008041020002000000020000003f"
    static let deadline = "00000040fc54d94100004050fc54d941"
    static let tail = "07656467652d30370173036d2d31003800bd0042ff7b02000000003f00000000803e"

    static let cases:
        [(name: String, reason: EscalationReason, deadline: (verdict: Double, lastUse: Double)?, hex: String)] = [
            ("version 1: uncertain, no deadline", .uncertain, nil, "54450100" + header + tail + "01bfb5c5"),
            (
                "version 2: uncertain with a deadline", .uncertain, (1.7e9, 1.7e9 + 65),
                "54450200" + header + deadline + tail + "44e90eea"
            ),
            (
                "version 3: audit, no deadline (zeros)", .audit, nil,
                "54450302" + header + String(repeating: "0", count: 32) + tail + "81bdd2e4"
            ),
            (
                "version 3: novel with a deadline", .novel, (1.7e9, 1.7e9 + 65),
                "54450301" + header + deadline + tail + "d17dae75"
            ),
        ]

    @Test("each version encodes to the documented bytes and decodes from them", arguments: 0..<4)
    func golden(index: Int) throws {
        let c = Self.cases[index]
        let payload = Self.payload(reason: c.reason, deadline: c.deadline)
        let hex = try payload.encoded().map { String(format: "%02x", $0) }.joined()
        #expect(hex == c.hex, "\(c.name)")
        var bytes = [UInt8]()
        var digits = c.hex.makeIterator()
        while let high = digits.next(), let low = digits.next() {
            bytes.append(UInt8(String([high, low]), radix: 16) ?? 0)
        }
        #expect(try EscalationPayload(decoding: bytes) == payload, "\(c.name)")
    }
}
