import Logging
import TandemCloud
import Testing

struct LogEscapingTests {
    @Test(
        "control characters, line separators, bidi controls and backslashes are escaped; other text is kept",
        arguments: [
            ("pump-1", "pump-1"),
            ("Pumpe-ü-東京", "Pumpe-ü-東京"),
            ("a\nb", "a\\nb"),
            ("a\r\nb", "a\\r\\nb"),
            ("tab\there", "tab\\there"),
            ("esc\u{1B}[31mred", "esc\\u{1B}[31mred"),
            ("nul\u{0}", "nul\\u{0}"),
            ("del\u{7F}", "del\\u{7F}"),
            ("c1\u{85}", "c1\\u{85}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("para\u{2029}sep", "para\\u{2029}sep"),
            ("rtl\u{202E}gnp.exe", "rtl\\u{202E}gnp.exe"),
            ("back\\slash", "back\\\\slash"),
            ("already\\n", "already\\\\n"),
        ])
    func escapes(_ input: String, _ expected: String) {
        #expect(input.escapingControlCharacters == expected)
    }

    @Test("a newline in a device id cannot forge a log line, in the message or in the metadata")
    func noForgedLine() {
        let forged = "pump-1\n2026-01-01T00:00:00+0000 critical tandem-cloud: worker=1 [TandemCloud] trainer: stopped"
        let escaped = LogCapture()
        escaped.logger().warning(
            "escalation from \(forged.escapingControlCharacters) refused", metadata: ["device": .escaping(forged)])
        let lines = escaped.contents.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "one line and its newline: \(escaped.contents)")
        #expect(lines[0].contains("device=pump-1\\n2026-01-01T00:00:00+0000 critical"), "\(lines[0])")
        #expect(
            lines[0].hasSuffix(
                "escalation from pump-1\\n2026-01-01T00:00:00+0000 critical tandem-cloud: worker=1 [TandemCloud] trainer: stopped refused"
            ))

        // Without the escape the same id writes a line of its own, which is what the helper is for.
        let raw = LogCapture()
        raw.logger().warning("escalation from \(forged) refused")
        #expect(raw.contents.split(separator: "\n").contains { $0.hasPrefix("2026-01-01T00:00:00+0000 critical") })
    }
}
