import TandemMQTT
import Testing

@Suite("CRC-32")
struct CRC32Tests {
    /// The checksum one bit at a time, straight from the polynomial.
    static func bitwise(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return crc ^ 0xFFFF_FFFF
    }

    @Test("the check value of \"123456789\" is 0xCBF43926, and nothing gives 0")
    func checkValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
    }

    @Test("eight bytes a step agree with the bit-at-a-time checksum at every length and alignment")
    func agreesWithBitwise() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for start in 0..<9 {
            for end in stride(from: start, through: bytes.count, by: 1) where end - start < 40 || end % 37 == 0 {
                let slice = Array(bytes[start..<end])
                let sliced = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
                #expect(sliced == Self.bitwise(slice), "bytes \(start)..<\(end)")
            }
        }
    }
}
