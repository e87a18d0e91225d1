import Crypto
import Foundation
import TandemCloudFuzzTargets
import TandemCore
import TandemFuzzTargets
import TandemMQTT
import TandemProtocol
import TandemTraining
import Testing

/// The seed corpus, made by encoding real messages and files with the product's own encoders.
///
/// `TANDEM_WRITE_FUZZ_SEEDS=1 swift test --filter SeedCorpusTests` writes them to `Fuzz/Corpus/<target>/` (after a
/// format change); otherwise the test checks that every seed it would write is there.
/// The first bytes of an input are the target's options (``FuzzTarget``'s documentation of each target).
enum SeedCorpus {
    static let escalationID = UUID(uuid: (0x8A, 0x1C, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 7))
    static let answeredID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1))
    static let secondID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2))

    /// Every seed, by target and file name.
    static func all() throws -> [String: [String: [UInt8]]] {
        [
            "escalation": try escalation(), "status": status(), "label": label(), "assignment": assignment(),
            "policy": policy(), "verdict": verdict(), "yaml": try yaml(), "artifact": try artifact(),
            "outbox": try outbox(),
            "sample-lines": sampleLines(), "ts": try ts(), "csv": csv(),
        ]
    }

    static func escalationPayload(
        id: UUID = escalationID, device: String = "dev-1", model: String = "edge-1", length: Int = 8
    ) -> EscalationPayload {
        let window = (0..<(length * 2)).map { Float($0 % 7) / 3 - 1 }
        return EscalationPayload(
            id: id, device: device, stream: "vibration", modelVersion: model, windowStart: 100, windowEnd: 100.7,
            sampleRateHz: 10, channels: 2, length: length, window: window,
            topK: [.init(label: 1, probability: 0.45), .init(label: 0, probability: 0.35)], confidence: 0.45)
    }

    static func escalation() throws -> [String: [UInt8]] {
        let valid = try escalationPayload().encoded()
        var corrupt = valid
        corrupt[3] = 1  // reserved flags
        var nan = escalationPayload()
        nan.window[3] = .nan
        // Version 2: a deadline far ahead (counted at most 10 minutes), one whose last use passed long ago (stored,
        // not answered), and a last use before its deadline (the checksum repaired by the target's flag).
        var ahead = escalationPayload()
        (ahead.deadline, ahead.lastUse) = (4e9, 4e9 + 60)
        var expired = escalationPayload(id: UUID(uuid: (0x8A, 0x1C, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 9)))
        (expired.deadline, expired.lastUse) = (1000, 1060)
        var backwards = try ahead.encoded()
        withUnsafeBytes(of: (1000.0).bitPattern.littleEndian) { backwards.replaceSubrange(59..<67, with: $0) }
        // Version 3: an audit with a deadline, a novel window without one (both times 0); a reason this build does
        // not know, and only one of the two times set to 0 (checksums repaired by the target's flag).
        var audit = ahead
        audit.reason = .audit
        var novel = escalationPayload()
        novel.reason = .novel
        var unknownReason = try audit.encoded()
        unknownReason[3] = 7
        var halfDeadline = try novel.encoded()
        withUnsafeBytes(of: (4e9).bitPattern.littleEndian) { halfDeadline.replaceSubrange(59..<67, with: $0) }
        return [
            "valid-audit": [0, 0] + (try audit.encoded()),
            "valid-novel-no-deadline": [0, 0] + (try novel.encoded()),
            "invalid-unknown-reason": [0, 1] + unknownReason,
            "invalid-half-deadline": [0, 1] + halfDeadline,
            "valid-deadline-ahead": [0, 0] + (try ahead.encoded()),
            "valid-expired": [0, 0] + (try expired.encoded()),
            "invalid-deadline-after-last-use": [0, 1] + backwards,
            "valid-edge-model": [0, 0] + valid,
            "valid-full-model": [0, 0] + (try escalationPayload(model: "full-1").encoded()),
            "valid-duplicate": [0, 0] + (try escalationPayload(id: answeredID).encoded()),
            "invalid-wrong-shape": [0, 0] + (try escalationPayload(length: 4).encoded()),
            "invalid-other-device": [1, 0] + valid,
            "invalid-labels-topic": [3, 0] + valid,
            "invalid-corrupt": [0, 0] + corrupt,
            "invalid-corrupt-repaired-crc": [0, 1] + corrupt,
            "invalid-nan-window": [0, 0] + (try nan.encoded()),
            "invalid-truncated": [0, 0] + Array(valid.prefix(40)),
        ]
    }

    static func status() -> [String: [UInt8]] {
        var full = DeviceStatus(
            device: "dev-1", modelVersion: "edge-2", modelUpdate: .active("edge-2"), windows: 12_000,
            escalations: 700, escalationRate: 0.058, inputErrors: ["vibration": ["nonNumeric": 2, "outOfOrder": 1]])
        full.cappedEscalations = 3
        full.verdictsInTime = 690
        full.corrections = 12
        full.sampleRateMismatchHz = ["vibration": 0.2]
        full.meanConfidence = 0.8
        full.threshold = 0.5
        full.uptimeSeconds = 3600
        full.rssBytes = 18_000_000
        full.outbox = .init(pending: 2, delivered: 700, dropped: 0, refused: 0, journalBytes: 4096)
        full.badVerdicts = 0
        full.connected = true
        full.novelWindows = 30
        full.noveltyRate = 0.0025
        full.novelEscalations = 5
        full.auditEscalations = 110
        let rejected = DeviceStatus(
            device: "dev-1", modelVersion: "edge-1",
            modelUpdate: .rejected("edge-2", reason: "untrusted: bad signature"),
            windows: 500, escalations: 20)
        return [
            "valid-full": [0] + full.encoded(),
            "valid-cohort-device-live": [2] + full.encoded(),
            "valid-reported-before": [0x40] + full.encoded(),
            "valid-last-will": [1] + DeviceStatus.lastWill(device: "dev-1").encoded(),
            "valid-rejected-update": [0x41] + rejected.encoded(),
            "invalid-negative-counter": [0] + Array(#"{"device":"dev-1","state":"online","windows":-5}"#.utf8),
            "invalid-huge-counter": [0]
                + Array(#"{"device":"dev-1","escalations":9223372036854775807,"windows":1}"#.utf8),
            "invalid-rate": [0] + Array(#"{"device":"dev-1","escalationRate":1.5}"#.utf8),
            "invalid-novelty-rate": [0] + Array(#"{"device":"dev-1","noveltyRate":-0.5}"#.utf8),
            "invalid-negative-audits": [0] + Array(#"{"device":"dev-1","auditEscalations":-3}"#.utf8),
            "invalid-no-device": [0] + Array(#"{"state":"online"}"#.utf8),
            "invalid-not-json": [0] + Array("online".utf8),
        ]
    }

    static func label() -> [String: [UInt8]] {
        let one = GroundTruthLabel(escalationId: escalationID, label: "bearing-fault")
        return [
            "valid-label": one.encoded(),
            "valid-label-extra-key": Array(#"{"escalationId":"\#(escalationID)","label":"normal","by":"ops"}"#.utf8),
            "invalid-list-on-mqtt": Array("[".utf8) + one.encoded() + Array(",".utf8)
                + GroundTruthLabel(escalationId: secondID, label: "imbalance").encoded() + Array("]".utf8),
            "invalid-unknown-class": GroundTruthLabel(escalationId: escalationID, label: "misaligned").encoded(),
            "invalid-bad-uuid": Array(#"{"escalationId":"8A1C","label":"normal"}"#.utf8),
            "invalid-empty-label": Array(#"{"escalationId":"\#(escalationID)","label":""}"#.utf8),
        ]
    }

    static func assignment() -> [String: [UInt8]] {
        let sha = String(repeating: "0123456789abcdef", count: 4)
        return [
            "valid-assignment": ModelAssignment(version: "edge-3", sha256: sha, size: 14_680).encoded(),
            "valid-with-topic": ModelAssignment(
                version: "edge-3", sha256: sha, size: 14_680, topic: "tandem/v1/plant/models/edge-3"
            ).encoded(),
            "invalid-format-2": Array(#"{"v":2,"version":"edge-3","sha256":"\#(sha)","size":1}"#.utf8),
            "invalid-sha": ModelAssignment(version: "edge-3", sha256: "ABC", size: 14_680).encoded(),
            "invalid-size": ModelAssignment(version: "edge-3", sha256: sha, size: 0).encoded(),
            "invalid-wildcard-version": ModelAssignment(version: "edge/#", sha256: sha, size: 10).encoded(),
        ]
    }

    static func policy() -> [String: [UInt8]] {
        func signed(_ settings: AgentPolicy.Settings, device: String = "dev-1") -> [UInt8] {
            var policy = AgentPolicy(
                version: "policy-3", settings: settings, fleet: "plant", device: device, sequence: 41,
                expiresAt: 1_900_000_000)
            policy.signature = MessageSignature(
                keyID: [UInt8](repeating: 7, count: 8), signature: [UInt8](repeating: 9, count: 64))
            return policy.encoded()
        }
        let valid = signed(AgentPolicy.Settings(threshold: 0.45, maxEscalationsPerSecond: 20))
        let text = String(decoding: valid, as: UTF8.self)
        return [
            "valid-threshold": valid,
            "valid-budget-measure": signed(AgentPolicy.Settings(measure: "margin", budget: 0.05, burst: 4)),
            "valid-local": signed(AgentPolicy.Settings()),
            "invalid-threshold": Array(text.replacingOccurrences(of: "0.45", with: "1.5").utf8),
            "invalid-nan-rate": Array(text.replacingOccurrences(of: "20", with: "1e999").utf8),
            "invalid-unsigned": Array(text.replacingOccurrences(of: "\"signature\"", with: "\"unsigned\"").utf8),
            "invalid-device": signed(AgentPolicy.Settings(threshold: 0.5), device: "dev/1"),
        ]
    }

    static func verdict() -> [String: [UInt8]] {
        let inTime = Verdict(
            escalationId: answeredID, label: 1, probabilities: [0.2, 0.7, 0.1], modelVersion: "full-1")
        let other = Verdict(escalationId: secondID, label: 2, probabilities: [0.1, 0.2, 0.7], modelVersion: "full-1")
        let unknown = Verdict(
            escalationId: escalationID, label: 0, probabilities: [0.9, 0.05, 0.05], modelVersion: "x")
        return [
            "valid-in-time": [0] + inTime.encoded(),
            "valid-late-correction": [1] + other.encoded(),
            "valid-unknown-escalation": [2] + unknown.encoded(),
            "invalid-label-out-of-range": [0]
                + Verdict(escalationId: answeredID, label: 3, probabilities: [0.5, 0.5], modelVersion: "f").encoded(),
            "invalid-version": [0]
                + Array(
                    #"{"v":2,"escalationId":"\#(answeredID)","label":0,"probabilities":[1],"modelVersion":"f"}"#.utf8),
            "invalid-not-json": [0] + Array("verdict".utf8),
        ]
    }

    static func yaml() throws -> [String: [UInt8]] {
        let shipped = try Data(contentsOf: CorpusReplayTests.root.appendingPathComponent("edge-config/agent.yaml"))
        let minimal = """
            device:
              id: dev-1
              fleet: plant
            model:
              path: /var/lib/tandem/model.tandem
              trustedKeys: ["/etc/tandem/cloud.pub", keys/second.pub]
            streams:
              - name: vibration
                channels: 3
                source: {kind: udp, host: 127.0.0.1, port: 9000}
            sinks:
              - {kind: file, path: "/var/log/tandem/predictions.jsonl"}

            """
        return [
            "valid-shipped": Array(shipped),
            "valid-flow-and-quotes": Array(minimal.utf8),
            "invalid-tab": Array("device:\n\tid: x\n".utf8),
            "invalid-unknown-key": Array("device:\n  name: x\n".utf8),
            "invalid-deep": Array(String(repeating: "[", count: 200).utf8),
            "invalid-anchor": Array("device: &a\n  id: x\n".utf8),
        ]
    }

    static func artifact() throws -> [String: [UInt8]] {
        let window = 8, channels = 2, classes = 3
        var generator = SeededGenerator(seed: 11)
        func golden(_ count: Int) -> Tensor {
            Tensor(
                shape: [count, window, channels],
                scalars: (0..<(count * window * channels)).map { _ in generator.nextGaussian() })
        }
        func manifest(_ architecture: [LayerSpec], numerics: String = "float32") -> ModelManifest {
            ModelManifest(
                name: "edge", version: "edge-2", createdAt: "2026-01-01T00:00:00Z", architecture: architecture,
                input: InputSpec(
                    channels: channels, window: window, hop: window / 2, mean: [0.5, -1], std: [2, 0.25],
                    channelNames: ["x", "y"]),
                classNames: ["normal", "bearing-fault", "imbalance"], numerics: numerics)
        }
        let dense = [LayerSpec(type: .flatten), LayerSpec(type: .dense, units: classes)]
        let denseNetwork = try Network(layers: dense, window: window, channels: channels, classes: classes, seed: 1)
        let float = try ModelArtifact(
            model: try denseNetwork.exportFloatModel(), manifest: manifest(dense), goldenInputs: golden(2))
        let conv = [
            LayerSpec(type: .conv1d, filters: 4, kernel: 3, padding: .same), LayerSpec(type: .relu),
            LayerSpec(type: .maxpool1d, kernel: 2), LayerSpec(type: .globalavgpool1d),
            LayerSpec(type: .dense, units: classes),
        ]
        let convNetwork = try Network(layers: conv, window: window, channels: channels, classes: classes, seed: 2)
        let convModel = try convNetwork.exportFloatModel()
        let signed = try ModelArtifact(model: convModel, manifest: manifest(conv), goldenInputs: golden(2))
            .signed(with: ArtifactFixture.signingKey)
        let quantized = try PostTrainingQuantizer().quantize(convModel, calibration: golden(16))
        let int8 = try ModelArtifact(
            quantized: quantized, manifest: manifest(conv, numerics: QuantizedModel.numerics), goldenInputs: golden(2))
        let floatBytes = float.serialized()
        var badMagic = floatBytes
        badMagic[1] = 0
        var tampered = floatBytes
        tampered[tampered.count - 40] ^= 1
        return [
            "valid-float-dense": [0] + floatBytes,
            "valid-float-dense-resealed": [1] + floatBytes,
            "valid-signed-conv": [6] + signed.serialized(),
            "valid-int8-conv": [0] + int8.serialized(),
            "invalid-unsigned-but-required": [6] + floatBytes,
            "invalid-bad-magic": [0] + badMagic,
            "invalid-tampered": [0] + tampered,
            "invalid-truncated": [0] + Array(floatBytes.prefix(100)),
        ]
    }

    static func outbox() throws -> [String: [UInt8]] {
        let message = MQTTMessage(
            topic: "tandem/v1/plant/dev-1/escalations", payload: Array("window".utf8),
            properties: MQTTPublishProperties(
                userProperties: [.init("k", "v")], responseTopic: "tandem/v1/plant/dev-1/verdicts",
                correlationData: [1, 2], messageExpirySeconds: 60, contentType: "application/octet-stream"))
        let first = try OutboxRecord.encodeMessage(message, sequence: 1)
        let second = try OutboxRecord.encodeMessage(message, sequence: 2)
        let third = try OutboxRecord.encodeMessage(message, sequence: 3)
        let removal = OutboxRecord.encodeRemoval(sequence: 1)
        var corrupt = first + second
        corrupt[first.count + 12] ^= 0xFF
        return [
            "valid-two-messages-one-removed": [0] + first + second + removal,
            "valid-two-segments": [
                1, UInt8((first.count + second.count) & 0xFF), UInt8((first.count + second.count) >> 8),
            ]
                + first + second + third,
            "valid-empty": [0],
            "invalid-torn-tail": [0] + first + Array(second.prefix(second.count - 3)),
            "invalid-corrupt-record": [0] + corrupt,
            "invalid-garbage": [0] + Array("not a journal at all".utf8),
        ]
    }

    static func sampleLines() -> [String: [UInt8]] {
        // Options: channels 2 (bit pattern 1), line limit 64 << … (2 << 2), no sample rate; chunk 7 bytes.
        let options: [UInt8] = [0x01 | 0x08, 7]
        let csv = (0..<12).map { "\(Double($0) / 10),\($0 % 3).5,-\($0 % 5)" }.joined(separator: "\n")
        let json = (0..<12).map {
            #"{"ts":\#(Double($0) / 10),"values":[\#($0),-1.25],"stream":"\#($0 % 2 == 0 ? "a" : "b")"}"#
        }
        .joined(separator: "\r\n")
        return [
            "valid-csv": options + Array(("timestamp,x,y\n# comment\n" + csv + "\n").utf8),
            "valid-json-two-streams": options + Array(json.utf8),
            "valid-csv-one-byte-chunks": [0x01 | 0x08, 0] + Array(csv.utf8),
            "invalid-out-of-order": options + Array("1,1,1\n0.5,1,1\n".utf8),
            "invalid-binary": options + [0, 1, 2, 0xFF, 10, 0x7F, 10],
            "invalid-nan": options + Array("1,nan,1\n2,1,inf\n".utf8),
            "invalid-unknown-stream": options + Array(#"{"ts":1,"values":[1,2],"stream":"c"}"#.utf8),
        ]
    }

    static func ts() throws -> [String: [UInt8]] {
        let windows = LabeledWindows(
            windows: Tensor(shape: [3, 5, 2], scalars: (0..<30).map { Float($0 % 7) * 0.25 - 0.5 }),
            labels: [0, 1, 0], classNames: ["a", "b"])
        let written = try TSArchive.text(of: windows, problemName: "Seed")
        let unequal = """
            @problemName Unequal
            @timeStamps false
            @missing false
            @univariate true
            @equalLength false
            @classLabel true up down
            @data
            1,2,3,4:up
            4,3:down
            5,6,7:up

            """
        return [
            "valid-written": [0] + Array(written.utf8),
            "valid-unequal-padded": [1] + Array(unequal.utf8),
            "valid-unequal-resampled": [3] + Array(unequal.utf8),
            "invalid-unequal-required-equal": [0] + Array(unequal.utf8),
            "invalid-missing-value": [0] + Array(unequal.replacingOccurrences(of: "4,3:down", with: "?,3:down").utf8),
            "invalid-no-data": [0] + Array("@problemName X\n@classLabel true a\n".utf8),
        ]
    }

    static func csv() -> [String: [UInt8]] {
        let rows = (0..<40).map {
            "\(Double($0) * 0.01),\(Float($0 % 9) / 4),\(-Float($0 % 4)),\($0 < 20 ? "normal" : "fault")"
        }
        let labelled = "timestamp,x,y,label\n" + rows.joined(separator: "\n") + "\n"
        return [
            "valid-labelled": [0, 7, 3] + Array(labelled.utf8),
            "valid-majority-fixed-classes": [3, 7, 7] + Array(labelled.utf8),
            "valid-strict": [4, 3, 1] + Array(labelled.utf8),
            "invalid-no-header": [0, 7, 3] + Array("1,2,3\n".utf8),
            "invalid-strict-bad-line": [4, 3, 1] + Array("timestamp,x,label\n0,1,a\n0.1,zz,a\n".utf8),
            "invalid-too-short": [0, 15, 1] + Array("timestamp,x,label\n0,1,a\n".utf8),
        ]
    }
}

@Suite(.serialized)
struct SeedCorpusTests {
    @Test("the committed seed corpus holds every seed the encoders make (TANDEM_WRITE_FUZZ_SEEDS=1 rewrites it)")
    func seedsAreCurrent() throws {
        let write = ProcessInfo.processInfo.environment["TANDEM_WRITE_FUZZ_SEEDS"] == "1"
        let corpus = CorpusReplayTests.root.appendingPathComponent("Fuzz/Corpus")
        let seeds = try SeedCorpus.all()
        #expect(Set(seeds.keys) == Set(FuzzTarget.all.map(\.name)))
        for (target, files) in seeds.sorted(by: { $0.key < $1.key }) {
            let directory = corpus.appendingPathComponent(target)
            if write {
                try? FileManager.default.removeItem(at: directory)
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            }
            for (name, bytes) in files {
                let url = directory.appendingPathComponent(name)
                if write { try Data(bytes).write(to: url) }
                // Present, not byte-equal: artifacts carry golden outputs computed with OpenBLAS, whose last bits
                // depend on the CPU's kernels. Whether each seed is still accepted or refused is the replay's check.
                #expect(
                    FileManager.default.fileExists(atPath: url.path), "Fuzz/Corpus/\(target)/\(name) is missing")
            }
        }
    }
}
