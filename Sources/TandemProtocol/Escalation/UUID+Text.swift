#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension UUID {
    /// The same text as `uuidString` (upper-case hex, `8-4-4-4-12`), written without the C library's formatted
    /// printing, which a worker would otherwise run three times for every escalation (its row, its verdict, the
    /// verdict's row).
    public var text: String {
        let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                var at = 0
                for (i, byte) in bytes.enumerated() {
                    if i == 4 || i == 6 || i == 8 || i == 10 {
                        out[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    out[at] = digits[Int(byte >> 4)]
                    out[at + 1] = digits[Int(byte & 0xF)]
                    at += 2
                }
                return at
            }
        }
    }
}
