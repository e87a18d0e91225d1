#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 address block, `192.168.1.0/24` or one address `10.0.0.7`: who a UDP source takes datagrams from.
public struct IPv4Network: Sendable, Equatable, CustomStringConvertible {
    /// The block's first address, host byte order.
    public let address: UInt32
    /// The prefix length, 0…32.
    public let prefixLength: Int

    /// Reads `a.b.c.d` or `a.b.c.d/n`; nil for anything else or host bits set below the prefix.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return nil }
        var raw = in_addr()
        guard inet_pton(AF_INET, String(parts[0]), &raw) == 1 else { return nil }
        let length: Int
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...32).contains(n), parts[1].allSatisfy(\.isASCII) else { return nil }
            length = n
        } else {
            length = 32
        }
        let value = UInt32(bigEndian: raw.s_addr)
        guard value & ~Self.mask(length) == 0 else { return nil }
        address = value
        prefixLength = length
    }

    /// Whether `host` (host byte order) is in the block.
    public func contains(_ host: UInt32) -> Bool { host & Self.mask(prefixLength) == address }

    /// `a.b.c.d/n`.
    public var description: String {
        let octets = [24, 16, 8, 0].map { String((address >> UInt32($0)) & 0xFF) }
        return octets.joined(separator: ".") + "/\(prefixLength)"
    }

    static func mask(_ length: Int) -> UInt32 { length == 0 ? 0 : UInt32.max << UInt32(32 - length) }
}
