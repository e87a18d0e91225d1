#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Parsing of decimal numbers straight from text bytes, without building a String per field.
enum ASCIINumber {
    /// The number spelled by exactly the bytes `range`, or `nil` if they are not one number.
    ///
    /// - Precondition: the buffer `base` points into ends with a 0 byte, so `strtod` cannot run
    ///   past it, and `range` starts and ends on non-whitespace.
    static func parse(_ base: UnsafePointer<UInt8>, _ range: Range<Int>) -> Double? {
        guard !range.isEmpty else { return nil }
        let start = UnsafeRawPointer(base + range.lowerBound).assumingMemoryBound(to: CChar.self)
        var end: UnsafeMutablePointer<CChar>?
        let value = strtod(start, &end)
        guard let end, Int(bitPattern: end) == Int(bitPattern: base + range.upperBound) else { return nil }
        return value
    }

    /// Whether `byte` is a space, a tab or a carriage return.
    static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    /// `range` without blanks at either end.
    static func trimmed(_ base: UnsafePointer<UInt8>, _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper && isBlank(base[lower]) { lower += 1 }
        while upper > lower && isBlank(base[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    /// The bytes `range` as a String.
    static func string(_ base: UnsafePointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(start: base + range.lowerBound, count: range.count), as: UTF8.self)
    }
}
