import Logging

extension StringProtocol {
    /// The text with every character that could end, split or disguise a log line written as a Swift-style
    /// escape: `\n`, `\r`, `\t`, `\\`, and `\u{…}` for other control characters (C0, DEL, C1), the Unicode line and
    /// paragraph separators and the bidirectional controls.
    ///
    /// Device ids, topics, payload-derived text and error descriptions that quote them come from outside; passed
    /// through this before they reach a log line, a device id holding a newline cannot forge a line of its own.
    /// A backslash is doubled, so the escaped form reads back unambiguously.
    public var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: \.needsLogEscape) else { return String(self) }
        var escaped = ""
        escaped.reserveCapacity(utf8.count + 8)
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case "\\": escaped += "\\\\"
            case _ where scalar.needsLogEscape:
                escaped += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}

extension Unicode.Scalar {
    /// Whether ``StringProtocol/escapingControlCharacters`` rewrites this scalar.
    fileprivate var needsLogEscape: Bool {
        switch properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: true
        default: self == "\\" || properties.isBidiControl
        }
    }
}

extension Logger.MetadataValue {
    /// A metadata value for text that came from outside (a device id, a topic), its control characters escaped.
    public static func escaping(_ text: some StringProtocol) -> Self {
        .string(text.escapingControlCharacters)
    }
}

extension DefaultStringInterpolation {
    /// `\(escaping: value)`: the value's description with its control characters escaped, for a log line
    /// that quotes text from outside (a topic, a payload's device id, an error that repeats either).
    mutating func appendInterpolation(escaping value: some Any) {
        appendLiteral(String(describing: value).escapingControlCharacters)
    }
}
