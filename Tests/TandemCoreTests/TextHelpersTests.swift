import Foundation
import TandemCore
import Testing

struct TextHelpersTests {
    @Test("describe(error) gives the system's words for file errors, as localizedDescription did")
    func describesFileErrors() throws {
        let missing = "/nonexistent-\(UUID().uuidString)/model.tandem"
        do {
            _ = try Data(contentsOf: URL(fileURLWithPath: missing))
            Issue.record("read a file that does not exist")
        } catch {
            #expect(describe(error) == "No such file or directory", "\(error)")
        }
        do {
            _ = try String(contentsOfFile: "/", encoding: .utf8)
            Issue.record("read a directory as text")
        } catch {
            #expect(describe(error) == "Is a directory", "\(error)")
        }
        #expect(describe(POSIXError(.EACCES)) == "Permission denied")
    }

    @Test("formatted and trimmingWhitespace stand in for Foundation's")
    func formatting() {
        #expect(formatted("%.3g", 49.987) == "50")
        #expect(formatted("%.3g", 0.0012345) == "0.00123")
        #expect(formatted("%0100.1f", 1.5).count == 100, "longer than the first buffer")
        #expect(" \t a b \r\n".trimmingWhitespace() == "a b")
        #expect("   ".trimmingWhitespace() == "")
    }
}
