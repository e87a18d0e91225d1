import Foundation
import Synchronization
import TandemCore
import Testing

@testable import TandemEdge

/// Random and malformed lines interleaved with valid ones, through the real splitter, parser, windower,
/// classifier, policy and sink.
@Suite(.timeLimit(.minutes(2)))
struct GarbageTests {
    @Test("100,000 bad lines among valid ones: no crash, every valid window classified, counters equal the garbage")
    func garbage() async throws {
        let classifier = try TestModel.classifier(window: 8, hop: 4, channels: 3)
        var generator = SeededGenerator(seed: 2026)
        var text = [UInt8]()
        var injected = [InputRejection: Int]()
        var valid = 0
        var timestamp = 1000.0
        let maxLine = 256
        let garbageLines = 100_000
        let validLines = 40_000
        var garbageLeft = garbageLines, validLeft = validLines
        func line(_ s: String) { text += Array(s.utf8); text.append(0x0A) }
        func inject(_ reason: InputRejection, _ s: String) {
            line(s)
            injected[reason, default: 0] += 1
        }
        while garbageLeft + validLeft > 0 {
            let pickValid = Int.random(in: 0..<(garbageLeft + validLeft), using: &generator) < validLeft
            if pickValid || valid == 0 {
                guard validLeft > 0 else { break }
                timestamp += 0.01
                let v = (0..<3).map { _ in String(Double.random(in: -5...5, using: &generator)) }
                if Bool.random(using: &generator) {
                    line("\(timestamp),\(v.joined(separator: ","))")
                } else {
                    line("{\"ts\":\(timestamp),\"values\":[\(v.joined(separator: ","))],\"stream\":\"s\"}")
                }
                valid += 1
                validLeft -= 1
                continue
            }
            garbageLeft -= 1
            switch Int.random(in: 0..<10, using: &generator) {
            case 0:
                inject(
                    .nonNumeric,
                    ["\(timestamp),abc,1,2", "x\(timestamp),1,2,3", "1,2,3,--4", "1, ,2,3"].randomElement(
                        using: &generator)!)
            case 1:
                inject(
                    .wrongChannelCount,
                    ["\(timestamp),1,2", "\(timestamp),1,2,3,4", "\(timestamp)", "{\"ts\":1,\"values\":[1]}"]
                        .randomElement(using: &generator)!)
            case 2:
                inject(
                    .nonFinite,
                    ["\(timestamp),nan,1,2", "\(timestamp),1,inf,2", "1,2,3,1e99", "-Infinity,1,2,3"].randomElement(
                        using: &generator)!)
            case 3: inject(.outOfOrder, "\(timestamp - Double.random(in: 0.001...50, using: &generator)),1,2,3")
            case 4: inject(.duplicateTimestamp, "\(timestamp),1,2,3")
            case 5: inject(.lineTooLong, "\(timestamp)," + String(repeating: "1,", count: maxLine) + "1")
            case 6:
                // Random bytes with at least one control byte and no newline.
                var bytes = (0..<Int.random(in: 1...120, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
                bytes = bytes.map { $0 == 0x0A ? 0x0B : $0 }
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...8, using: &generator)
                text += bytes
                text.append(0x0A)
                injected[.binaryGarbage, default: 0] += 1
            case 7:
                inject(
                    .malformedJSON,
                    ["{\"ts\":1,\"values\":[1,2,3]", "{\"ts\" 1}", "{]", "{\"values\":[1,2,3],}"].randomElement(
                        using: &generator)!)
            case 8: inject(.unknownStream, "{\"ts\":\(timestamp),\"values\":[1,2,3],\"stream\":\"other\"}")
            default:
                // Lines that are nothing, not errors: blank, comments, headers.
                line(["", "   ", "# note", "timestamp,a,b,c"].randomElement(using: &generator)!)
            }
        }
        var configuration = AgentConfiguration()
        configuration.device.id = "box"
        var source = AgentConfiguration.Source()
        source.maxLineBytes = maxLine
        configuration.streams = [.init(name: "s", channels: 3, source: source)]
        configuration.policy.maxEscalationsPerSecond = 1e9
        configuration.log.maxMessages = 3
        let messages = Mutex<[String]>([])
        let sink = CollectingSink()
        let escalations = OfflineEscalations()
        let agent = try EdgeAgent(
            configuration: configuration, classifier: classifier,
            sources: [TextSource(text, maximumLineBytes: maxLine)],
            sinks: [sink], escalations: escalations, log: { m in messages.withLock { $0.append(m) } })
        try await agent.run()

        let statistics = agent.currentStatistics()
        let expectedWindows = (valid - 8) / 4 + 1
        #expect(statistics.samples == valid)
        #expect(statistics.windows == expectedWindows)
        #expect(sink.snapshot.count == expectedWindows)
        #expect(statistics.gapResetsByStream["s"] == 0)
        #expect(
            statistics.inputErrors.byStream["s"] ?? [:] == injected, "counters equal the garbage injected, per reason")
        #expect(injected.values.reduce(0, +) > 85_000, "most picks were garbage, the rest blank/comment lines")
        // `senderNotAllowed` is a UDP source's (its sender address is not in a line); SourceTests makes it.
        #expect(
            Set(injected.keys) == Set(InputRejection.allCases).subtracting([.senderNotAllowed]),
            "every reason a line can earn was exercised")
        #expect(escalations.count == statistics.escalations)
        #expect(sink.snapshot.filter(\.escalated).count == statistics.escalations)
        // Windows are consecutive: start i is 4 samples after start i − 1.
        let starts = sink.snapshot.map(\.windowStart)
        #expect(zip(starts, starts.dropFirst()).allSatisfy { abs($1 - $0 - 0.04) < 1e-6 })
        let logged = messages.withLock { $0 }
        #expect(logged.count < 50, "bad-input messages are rate-limited")
        #expect(logged.contains { $0.contains("line ") && $0.contains("stream s") })
    }
}
