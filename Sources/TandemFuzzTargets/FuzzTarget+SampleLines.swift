import Foundation
import TandemCore
import TandemEdge
import TandemProtocol

extension FuzzTarget {
    /// Sensor input as a file, a socket or a pipe delivers it: chunks through the line splitter, lines through
    /// ``SampleLineParser`` (CSV and JSON, two named streams), samples through each stream's ``StreamWindower``, and
    /// every completed window into the escalation payload the edge would send.
    ///
    /// Input: a byte of options (channels, line limit, chunk size, a sample rate or none), then the bytes.
    /// Checks: every accepted sample has a finite timestamp and finite values; every window is finite and its
    /// escalation payload is one the cloud decodes. Accepted: some samples and no line or sample refused.
    static let sampleLines = FuzzTarget(
        name: "sample-lines",
        summary: "LineSplitter → SampleLineParser (CSV/JSON) → StreamWindower → EscalationPayload the cloud reads"
    ) { bytes in
        var input = FuzzInput(bytes)
        let options = input.byte()
        let channels = 1 + Int(options & 3)
        let maximumLineBytes = 16 << Int((options >> 2) & 3)
        let chunk = 1 + Int(input.byte())
        let rate: Double? = options & 0x10 != 0 ? 10 : nil
        let text = input.rest

        var splitter = LineSplitter(maximumLineBytes: maximumLineBytes)
        var parser = SampleLineParser(channels: channels, streamNames: ["a", "b"], maximumLineBytes: maximumLineBytes)
        let spec = InputSpec(
            channels: channels, window: 4, hop: 2, sampleRateHz: rate, mean: [Float](repeating: 0.5, count: channels),
            std: [Float](repeating: 2, count: channels))
        guard let windower = try? StreamWindower(spec: spec) else {
            FuzzCheck.require(false, "the fixture's input spec makes no windower")
            return .refused
        }
        var windowers = [windower, windower]
        var window = [Float](repeating: 0, count: 4 * channels)
        var samples = 0
        var rejected = 0
        func consume(_ batch: LineBatch) {
            rejected += batch.overlongLines
            parser.parseLines(of: batch) { _, outcome, stream, values in
                switch outcome {
                case .skipped: return
                case .rejected: rejected += 1
                case .sample(let timestamp):
                    samples += 1
                    FuzzCheck.require(timestamp.isFinite, "a sample was accepted with timestamp \(timestamp)")
                    FuzzCheck.require(
                        values.allSatisfy(\.isFinite), "a sample was accepted with values \(Array(values))")
                    FuzzCheck.require(stream < windowers.count, "a sample names stream \(stream) of 2")
                    switch windowers[stream].append(timestamp: timestamp, values: values) {
                    case .accepted: return
                    case .rejected: rejected += 1; return
                    case .windowReady: break
                    }
                    let span = window.withUnsafeMutableBufferPointer { windowers[stream].copyCurrentWindow(into: $0) }
                    guard let span else {
                        FuzzCheck.require(false, "a completed window cannot be copied")
                        return
                    }
                    SampleLinesFixture.checkEscalation(window: window, span: span, channels: channels)
                }
            }
        }
        var offset = 0
        while offset < text.count {
            let end = min(text.count, offset + chunk)
            var batch = LineBatch()
            splitter.feed(UnsafeRawBufferPointer(rebasing: text[offset..<end]), into: &batch)
            consume(batch)
            offset = end
        }
        var last = LineBatch()
        splitter.finish(into: &last)
        consume(last)
        return samples > 0 && rejected == 0 ? .accepted : .refused
    }
}

enum SampleLinesFixture {
    /// The window as the edge escalates it, encoded and decoded as the cloud would.
    static func checkEscalation(window: [Float], span: (start: Double, end: Double), channels: Int) {
        FuzzCheck.require(window.allSatisfy(\.isFinite), "a window holds non-finite values: \(window)")
        let payload = EscalationPayload(
            id: UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)), device: "dev-1", stream: "a",
            modelVersion: "edge-1",
            windowStart: span.start, windowEnd: span.end, sampleRateHz: nil, channels: channels, length: 4,
            window: window, topK: [.init(label: 0, probability: 0.4)], confidence: 0.4)
        do {
            _ = try EscalationPayload(decoding: try payload.encoded())
        } catch {
            FuzzCheck.require(false, "the cloud refuses a window the edge escalates: \(error)")
        }
    }
}
