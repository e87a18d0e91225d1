import Foundation
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemEdge

struct ModelLoadingTests {
    @Test("a verified artifact loads; tampered, unsigned, wrongly signed and self-test-failing ones are refused")
    func verification() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url
        let artifact = try TestModel.artifact()
        let keyURL = dir.appendingPathComponent("key"), otherURL = dir.appendingPathComponent("other")
        let (publicURL, _) = try SigningKeyFile.createKeyPair(at: keyURL)
        let (otherPublicURL, _) = try SigningKeyFile.createKeyPair(at: otherURL)
        let signed = try artifact.signed(with: try SigningKeyFile.readPrivateKey(from: keyURL))
        let signedURL = dir.appendingPathComponent("signed.tandem")
        try signed.write(to: signedURL)
        let unsignedURL = dir.appendingPathComponent("unsigned.tandem")
        try artifact.write(to: unsignedURL)

        let loaded = try FloatWindowClassifier.load(path: signedURL.path, trustedKeyPaths: [publicURL.path])
        #expect(loaded.modelVersion == "test-1" && loaded.classNames.count == 3)
        #expect(throws: Never.self) { try FloatWindowClassifier.load(path: unsignedURL.path) }

        func code(_ body: () throws -> Void) -> ModelLoadError.Code? {
            do { try body() } catch let error as ModelLoadError { return error.code } catch { return nil }
            return nil
        }
        #expect(
            code { _ = try FloatWindowClassifier.load(path: unsignedURL.path, trustedKeyPaths: [publicURL.path]) }
                == .untrusted)
        #expect(
            code { _ = try FloatWindowClassifier.load(path: unsignedURL.path, requireSignature: true) } == .untrusted)
        #expect(
            code { _ = try FloatWindowClassifier.load(path: signedURL.path, trustedKeyPaths: [otherPublicURL.path]) }
                == .untrusted)
        #expect(
            code { _ = try FloatWindowClassifier.load(path: signedURL.path, trustedKeyPaths: [keyURL.path]) } == .badKey
        )
        var bytes = try Data(contentsOf: signedURL)
        bytes[bytes.count / 2] ^= 0x40
        let tamperedURL = dir.appendingPathComponent("tampered.tandem")
        try bytes.write(to: tamperedURL)
        #expect(
            code { _ = try FloatWindowClassifier.load(path: tamperedURL.path, trustedKeyPaths: [publicURL.path]) }
                != nil)
        var wrongGolden = artifact
        wrongGolden.goldenOutputs.scalars[0] += 5
        let goldenURL = dir.appendingPathComponent("golden.tandem")
        try wrongGolden.write(to: goldenURL)
        #expect(code { _ = try FloatWindowClassifier.load(path: goldenURL.path) } == .selfTestFailed)
        #expect(
            code { _ = try FloatWindowClassifier.load(path: dir.appendingPathComponent("missing.tandem").path) }
                == .unreadable)
    }

    @Test("a stream whose channels differ from the model's is refused, naming the key")
    func channelMismatch() throws {
        var configuration = AgentConfiguration()
        var file = AgentConfiguration.Source()
        file.kind = .file
        file.path = "/nonexistent/b.csv"
        configuration.streams = [.init(name: "a", channels: 3), .init(name: "b", channels: 4, source: file)]
        #expect {
            try EdgeAgent(
                configuration: configuration, classifier: try TestModel.classifier(),
                sources: [TextSource([], maximumLineBytes: 64), TextSource([], maximumLineBytes: 64)], sinks: [])
        } throws: { error in
            (error as? ConfigurationError)?.issues.first?.key == "streams[1].channels"
        }
    }

    @Test("budget mode starts from the model's calibration quantiles when the manifest has them")
    func calibrationFromManifest() throws {
        var artifact = try TestModel.artifact()
        artifact.manifest.metrics = [
            "confidence.maxProbability.p5": 0.4, "confidence.maxProbability.p10": 0.5,
            "confidence.maxProbability.p50": 0.8, "test_accuracy": 0.9,
        ]
        let classifier = FloatWindowClassifier(model: try FloatModel(artifact: artifact), manifest: artifact.manifest)
        let table = try #require(classifier.calibration(for: .maxProbability))
        #expect(abs(table.value(at: 0.1) - 0.5) < 1e-9)
        #expect(classifier.calibration(for: .margin) == nil)
        var configuration = AgentConfiguration()
        configuration.streams = [.init(name: "a", channels: 3)]
        configuration.policy.budget = 0.1
        let agent = try EdgeAgent(
            configuration: configuration, classifier: classifier, sources: [TextSource([], maximumLineBytes: 64)],
            sinks: [])
        #expect(abs(agent.currentStatistics().threshold - 0.5) < 1e-9)
    }
}
