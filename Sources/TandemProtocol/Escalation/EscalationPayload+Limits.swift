extension EscalationPayload {
    /// The largest encoded escalation whose window is `channels × length`: the fixed header (with a deadline), three names of the
    /// most bytes their one-byte lengths allow, the window in binary16, the most top-k entries and the CRC. A
    /// receiver that takes only windows of that shape may refuse anything larger before decoding it.
    public static func maximumEncodedBytes(channels: Int, length: Int) -> Int {
        let header = 51 + 16  // with version 2's deadline and last use
        let names = 3 * (1 + 255)
        let topK = 6 * 255
        let crc = 4
        let values = channels.multipliedReportingOverflow(by: length)
        let window = values.overflow ? Int.max / 4 : min(values.partialValue, Int.max / 4) * 2
        return header + names + topK + crc + window
    }
}
