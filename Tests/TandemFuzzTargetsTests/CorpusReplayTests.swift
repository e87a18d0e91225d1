import Foundation
import TandemCloudFuzzTargets
import TandemFuzzTargets
import Testing

/// The CI smoke of the fuzz targets: every committed seed (`Fuzz/Corpus/<target>/`) and every input that once
/// crashed a target (`Fuzz/Regressions/<target>/`) goes through the same entry function libFuzzer calls.
///
/// Each target replays in a child process (an exit test), so an input that traps fails its target's test and names
/// the file, instead of ending the whole test run. Seeds named `valid-…` must be accepted and `invalid-…` refused:
/// a seed that a format change made unreadable would leave the fuzzer starting from nothing.
struct CorpusReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func files(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test("every target has a seed corpus with valid and invalid inputs", arguments: FuzzTarget.all.map(\.name))
    func corpusIsThere(target: String) throws {
        let seeds = Self.files(in: Self.root.appendingPathComponent("Fuzz/Corpus/\(target)"))
        #expect(seeds.count >= 4, "Fuzz/Corpus/\(target) holds \(seeds.count) seeds")
        #expect(seeds.contains { $0.lastPathComponent.hasPrefix("valid-") }, "no valid seed for \(target)")
        #expect(seeds.contains { $0.lastPathComponent.hasPrefix("invalid-") }, "no invalid seed for \(target)")
    }

    @Test("a corpus directory without a target is a mistake")
    func noStrayCorpus() {
        let names = Set(FuzzTarget.all.map(\.name))
        for kind in ["Corpus", "Regressions"] {
            for directory in Self.files(in: Self.root.appendingPathComponent("Fuzz/\(kind)")) {
                #expect(names.contains(directory.lastPathComponent), "Fuzz/\(kind)/\(directory.lastPathComponent)")
            }
        }
    }

    @Test(
        "seeds and crash regressions run through the target without a crash, valid seeds accepted, invalid refused",
        arguments: FuzzTarget.all.map(\.name))
    func replay(target name: String) async throws {
        let progress = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(name)-\(UUID()).log")
        defer { try? FileManager.default.removeItem(at: progress) }
        let root = Self.root.path
        let progressPath = progress.path
        await #expect(processExitsWith: .success) {
            [name, root = root as String, progressPath = progressPath as String] in
            let root = URL(fileURLWithPath: root)
            guard let target = FuzzTarget.all.first(where: { $0.name == name }) else { exit(4) }
            _ = FileManager.default.createFile(atPath: progressPath, contents: nil)
            let log = FileHandle(forWritingAtPath: progressPath)
            func note(_ line: String) {
                log?.write(Data((line + "\n").utf8))
                try? log?.synchronize()
            }
            let seeds = CorpusReplayTests.files(in: root.appendingPathComponent("Fuzz/Corpus/\(name)"))
            let regressions = CorpusReplayTests.files(in: root.appendingPathComponent("Fuzz/Regressions/\(name)"))
            var wrong = 0
            for file in seeds + regressions {
                let relative = file.path.replacingOccurrences(of: root.path + "/", with: "")
                note("running \(relative)")
                let bytes = Array((try? Data(contentsOf: file)) ?? Data())
                let outcome = target.run(bytes)
                let base = file.lastPathComponent
                if base.hasPrefix("valid-") && outcome != .accepted || base.hasPrefix("invalid-") && outcome != .refused
                {
                    note("wrong outcome: \(relative) was \(outcome)")
                    wrong += 1
                }
            }
            note("done")
            exit(wrong == 0 ? 0 : 3)
        }
        let lines = ((try? String(contentsOf: progress, encoding: .utf8)) ?? "").split(separator: "\n")
        for line in lines where line.hasPrefix("wrong outcome") { Issue.record("\(name): \(line)") }
        if lines.last != "done" {
            Issue.record("\(name) stopped at: \(lines.last.map(String.init) ?? "(nothing run)")")
        }
    }
}
