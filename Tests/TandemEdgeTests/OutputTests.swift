import Foundation
import TandemTestSupport
import Testing

@testable import TandemEdge

struct OutputTests {
    static let record = PredictionRecord(
        stream: "pump \"1\"", windowStart: 12.5, windowEnd: 14.25, label: "bearing", labelIndex: 2, probability: 0.75,
        confidence: 0.75, provisional: true, escalated: true,
        escalationId: UUID(uuidString: "00000000-0000-0000-0000-0000000000AB"), modelVersion: "edge-7",
        latencyMilliseconds: 0.4219)

    @Test("a record is one JSON line with every field")
    func json() throws {
        let line = Self.record.jsonLine
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["type"] as? String == "prediction")
        #expect(object["stream"] as? String == "pump \"1\"")
        #expect(object["start"] as? Double == 12.5 && object["end"] as? Double == 14.25)
        #expect(object["label"] as? String == "bearing" && object["labelIndex"] as? Int == 2)
        #expect(object["source"] as? String == "edge")
        #expect(object["provisional"] as? Bool == true && object["escalated"] as? Bool == true)
        #expect(object["escalationId"] as? String == "00000000-0000-0000-0000-0000000000ab")
        #expect(object["modelVersion"] as? String == "edge-7")
        #expect(object["latencyMs"] as? Double == 0.422)
    }

    @Test("the file sink buffers until flushed and appends")
    func fileSink() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("records.jsonl").path
        let sink = try JSONLinesSink.file(path: path)
        for _ in 0..<3 { sink.write(Self.record) }
        #expect((try? String(contentsOfFile: path, encoding: .utf8)) == "", "nothing written before a flush")
        try sink.flush()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 3)
        #expect(throws: SinkError.self) {
            try JSONLinesSink.file(path: scratch.url.appendingPathComponent("no/such/dir").path)
        }
    }
}
