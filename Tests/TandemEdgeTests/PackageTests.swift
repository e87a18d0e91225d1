import Foundation
import Synchronization
import TandemTestSupport
import Testing

/// The Debian package `scripts/package-edge` makes, unpacked into a scratch root and run from there as
/// an edge box would run it.
///
/// Building the static release binary takes minutes, too long for a test, so `scripts/test` builds the
/// package first and names it in `TANDEM_EDGE_PACKAGE`. Without that variable (a plain `swift test`)
/// these tests are skipped; with it, a missing file or a missing `dpkg-deb` fails them.
@Suite(
    .serialized, .timeLimit(.minutes(2)),
    .enabled(
        if: EdgePackage.path != nil,
        """
        no edge package to test: scripts/test builds one and sets TANDEM_EDGE_PACKAGE (or run \
        scripts/package-edge --out DIR and set TANDEM_EDGE_PACKAGE=DIR/tandem-edge_….deb)
        """))
struct PackageTests {
    @Test("the package holds the binary, the default config as a conffile and the unit; Depends covers every library")
    func contents() throws {
        let unpacked = try EdgePackage.unpacked()
        let root = unpacked.root
        for path in [
            "usr/bin/tandem-edge", "etc/tandem/agent.yaml", "lib/systemd/system/tandem-edge.service",
            "usr/share/doc/tandem-edge/EDGE.md",
        ] {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path), "\(path)")
        }
        #expect(FileManager.default.isExecutableFile(atPath: root.appendingPathComponent("usr/bin/tandem-edge").path))
        let conffiles = try String(contentsOf: unpacked.control.appendingPathComponent("conffiles"), encoding: .utf8)
        #expect(conffiles.split(separator: "\n") == ["/etc/tandem/agent.yaml"])
        let shipped = try String(contentsOf: root.appendingPathComponent("etc/tandem/agent.yaml"), encoding: .utf8)
        #expect(shipped == (try String(contentsOf: Repository.file("edge-config/agent.yaml"), encoding: .utf8)))

        let fields = try EdgePackage.controlFields(unpacked.control)
        #expect(fields["Package"] == "tandem-edge")
        #expect(fields["Version"]?.first?.isNumber == true, "a Debian version starts with a digit")
        let depends = Set(
            (fields["Depends"] ?? "").split(separator: ",").map {
                String($0.trimmingCharacters(in: .whitespaces).prefix { $0 != " " && $0 != "(" })
            })
        #expect(depends.contains("adduser"), "postinst runs adduser")
        // Every library the binary links must come from a package it depends on.
        let dynamic = try runCommand(
            Tool.url("readelf"), ["-d", root.appendingPathComponent("usr/bin/tandem-edge").path])
        let needed = dynamic.standardOutput.split(separator: "\n").compactMap { line -> String? in
            guard line.contains("(NEEDED)"), let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]")
            else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        #expect(needed.contains("libmosquitto.so.1"), "\(needed)")
        // OpenBLAS is loaded only for a float32 model, so it is a suggestion, not a link.
        #expect(!needed.contains("libopenblas.so.0"), "\(needed)")
        #expect(fields["Suggests"] == "libopenblas0")
        for library in needed {
            let package = try #require(
                EdgePackage.debianPackage(ofLibrary: library),
                "the binary links \(library): add its package to Depends and to debianPackage(ofLibrary:)")
            #expect(depends.contains(package), "\(library) needs \(package); Depends: \(fields["Depends"] ?? "")")
        }
        #expect(!dynamic.standardOutput.contains("RPATH") && !dynamic.standardOutput.contains("RUNPATH"))
    }

    @Test("the unpacked binary runs with a clean environment, is stripped and links no Swift library")
    func selfContained() throws {
        let unpacked = try EdgePackage.unpacked()
        let binary = unpacked.root.appendingPathComponent("usr/bin/tandem-edge").path
        let help = try runCommand(Tool.env, ["-i", binary, "--help"])
        #expect(help.status == 0, "\(help.standardError)")
        #expect(help.standardOutput.contains("check-config"))
        let config = unpacked.root.appendingPathComponent("etc/tandem/agent.yaml").path
        let check = try runCommand(Tool.env, ["-i", binary, "check-config", "--config", config])
        #expect(check.status == 0, "\(check.standardError)")
        #expect(check.standardOutput.contains("path: /var/lib/tandem/model.tandem"), "\(check.standardOutput)")
        #expect(check.standardOutput.contains("directory: /var/lib/tandem/outbox"))

        let ldd = try runCommand(Tool.url("ldd"), [binary])
        #expect(ldd.status == 0, "\(ldd.standardError)")
        let links = ldd.standardOutput
        #expect(links.contains("libmosquitto.so.1"), "\(links)")
        #expect(!links.contains("not found"), "\(links)")
        for name in ["libswift", "libFoundation", "lib_FoundationICU", "libdispatch", "libBlocksRuntime"] {
            #expect(!links.contains(name), "\(name) in\n\(links)")
        }
        // This test runner links the toolchain's runtime dynamically: nothing may come from that directory.
        let runtime = try #require(Toolchain.runtimeDirectory, "libswiftCore.so not found in /proc/self/maps")
        #expect(!links.contains(runtime), "\(runtime) in\n\(links)")
        let sections = try runCommand(Tool.url("readelf"), ["-S", "-W", binary])
        #expect(sections.status == 0)
        #expect(!sections.standardOutput.contains(".symtab") && !sections.standardOutput.contains(".debug_info"))
    }

    @Test("an agent run from the unpacked root with the shipped config classifies CSV lines from stdin")
    func runsFromRoot() throws {
        let unpacked = try EdgePackage.unpacked()
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        try TestModel.artifact().write(to: scratch.url.appendingPathComponent("model.tandem"))
        let samples = (0..<40).map { i in
            let t = Double(i) * 0.02
            return "\(t),\(sin(t * 7)),\(cos(t * 3)),\(Double(i % 5) * 0.1)"
        }
        try ("timestamp,a,b,c\n" + samples.joined(separator: "\n") + "\nnot,a,sample,line\n").write(
            toFile: "\(dir)/in.csv", atomically: true, encoding: .utf8)
        let root = unpacked.root.path
        // The packaged config as it is (one stdin stream of 3 channels, records to stdout), pointed at the
        // test model, without a broker, and with nothing from the environment.
        let result = try runCommand(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c",
                "exec env -i '\(root)/usr/bin/tandem-edge' run --config '\(root)/etc/tandem/agent.yaml'"
                    + " --model '\(dir)/model.tandem' --broker-url '' --device-id box"
                    + " --set 'outbox.directory=\(dir)/outbox' < '\(dir)/in.csv'",
            ])
        #expect(result.status == 0, "\(result.standardError)")
        let records = result.standardOutput.split(separator: "\n")
        #expect(records.count == (40 - 8) / 4 + 1, "\(result.standardError)")
        let line = try #require(records.first)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(first["stream"] as? String == "main" && first["modelVersion"] as? String == "test-1")
        #expect(result.standardError.contains("\"nonNumeric\":1"), "the final status counts the bad line")
    }

    @Test("the unit runs the agent as tandem, restarts it on failure, leaves room for the drain and is hardened")
    func unit() throws {
        let unpacked = try EdgePackage.unpacked()
        let text = try String(
            contentsOf: unpacked.root.appendingPathComponent("lib/systemd/system/tandem-edge.service"), encoding: .utf8)
        #expect(text == (try String(contentsOf: Repository.file("edge-config/tandem-edge.service"), encoding: .utf8)))
        var settings: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("[") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            settings[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        let expected = [
            "User": "tandem", "Group": "tandem", "StateDirectory": "tandem", "Restart": "on-failure",
            "KillSignal": "SIGTERM", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
            "ReadWritePaths": "/var/lib/tandem", "PrivateTmp": "yes", "WantedBy": "multi-user.target",
            "ExecStart": "/usr/bin/tandem-edge run --config /etc/tandem/agent.yaml",
        ]
        for (key, value) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(settings[key] == value, "\(key)")
        }
        #expect(settings["RestartSec"] != nil)
        // The agent's stop: one verdict deadline (0.5 s by default) and up to 5 s of outbox drain, plus the
        // final flush and status; the unit must not SIGKILL it before that.
        let stop = try #require(settings["TimeoutStopSec"])
        let seconds = try #require(Double(stop.hasSuffix("s") ? String(stop.dropLast()) : stop), "\(stop)")
        #expect(seconds >= 15, "TimeoutStopSec=\(stop)")
        for path in ["usr/bin/tandem-edge", "etc/tandem/agent.yaml"] {
            #expect(FileManager.default.fileExists(atPath: unpacked.root.appendingPathComponent(path).path))
        }
    }

    @Test("postinst creates the tandem user and enables the unit without starting it; postrm disables it")
    func maintainerScripts() throws {
        let unpacked = try EdgePackage.unpacked()
        for script in ["postinst", "prerm", "postrm"] {
            let path = unpacked.control.appendingPathComponent(script).path
            #expect(FileManager.default.isExecutableFile(atPath: path), "\(script)")
            let syntax = try runCommand(URL(fileURLWithPath: "/bin/sh"), ["-n", path])
            #expect(syntax.status == 0, "\(script): \(syntax.standardError)")
        }
        // Every command the scripts run is a stub on an otherwise empty PATH that logs its arguments, so
        // nothing on this machine changes and a command the stubs do not know fails the script.
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        func run(_ script: String, _ arguments: [String], userExists: Bool) throws -> [String] {
            let stubs = scratch.url.appendingPathComponent("stubs-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: stubs, withIntermediateDirectories: true)
            let log = stubs.appendingPathComponent("calls.log").path
            for command in ["getent", "adduser", "install", "deb-systemd-helper", "deb-systemd-invoke", "systemctl"] {
                let status = command == "getent" && !userExists ? 2 : 0
                let stub = stubs.appendingPathComponent(command).path
                try "#!/bin/sh\necho \"\(command) $*\" >> '\(log)'\nexit \(status)\n".write(
                    toFile: stub, atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stub)
            }
            let result = try runCommand(
                URL(fileURLWithPath: "/bin/sh"), [unpacked.control.appendingPathComponent(script).path] + arguments,
                environment: ["PATH": stubs.path])
            #expect(result.status == 0, "\(script) \(arguments): \(result.standardError)")
            return ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        let install = try run("postinst", ["configure"], userExists: false)
        #expect(install.contains { $0.hasPrefix("adduser --system --group") && $0.hasSuffix(" tandem") }, "\(install)")
        #expect(install.contains("install -d -o tandem -g tandem -m 0750 /var/lib/tandem"), "\(install)")
        #expect(install.contains("deb-systemd-helper enable tandem-edge.service"), "\(install)")
        #expect(!install.contains { $0.contains("start") }, "a first install starts nothing: \(install)")
        let again = try run("postinst", ["configure"], userExists: true)
        #expect(!again.contains { $0.hasPrefix("adduser") }, "an existing tandem user is kept: \(again)")
        let remove = try run("postrm", ["remove"], userExists: true)
        #expect(remove.contains("deb-systemd-helper disable tandem-edge.service"), "\(remove)")
        let purge = try run("postrm", ["purge"], userExists: true)
        #expect(purge.contains("deb-systemd-helper purge tandem-edge.service"), "\(purge)")
    }
}

/// The package under test and how to unpack it.
enum EdgePackage {
    /// The `.deb` named by `TANDEM_EDGE_PACKAGE`, if set.
    static var path: String? {
        guard let path = ProcessInfo.processInfo.environment["TANDEM_EDGE_PACKAGE"], !path.isEmpty else { return nil }
        return path
    }

    /// A package's files extracted under `root` and its control files under `control`.
    struct Unpacked: Sendable {
        let root: URL
        let control: URL
    }

    /// Why the package could not be unpacked.
    struct UnpackError: Error, CustomStringConvertible {
        let description: String
    }

    /// The package unpacked once for all these tests (each `dpkg-deb -x` decompresses some 60 MB), in a
    /// scratch directory removed when the test process exits.
    static func unpacked() throws -> Unpacked { try shared.get() }

    private static let shared = Result<Unpacked, any Error> {
        guard let package = path, FileManager.default.fileExists(atPath: package) else {
            throw UnpackError(description: "TANDEM_EDGE_PACKAGE=\(path ?? "") does not exist")
        }
        guard let dpkgDeb = Tool.find("dpkg-deb") else { throw UnpackError(description: "dpkg-deb is not installed") }
        let scratch = try ScratchDirectory(prefix: "tandem-package")
        scratchToRemove.withLock { $0 = scratch }
        atexit { EdgePackage.scratchToRemove.withLock { $0?.remove() } }
        let unpacked = Unpacked(
            root: scratch.url.appendingPathComponent("root"), control: scratch.url.appendingPathComponent("DEBIAN"))
        for (flag, target) in [("-x", unpacked.root), ("-e", unpacked.control)] {
            let result = try runCommand(dpkgDeb, [flag, package, target.path])
            guard result.status == 0 else {
                throw UnpackError(description: "dpkg-deb \(flag) \(package): \(result.standardError)")
            }
        }
        return unpacked
    }

    private static let scratchToRemove = Mutex<ScratchDirectory?>(nil)

    /// The fields of a control file (`Key: value`; continuation lines are left out).
    static func controlFields(_ control: URL) throws -> [String: String] {
        let text = try String(contentsOf: control.appendingPathComponent("control"), encoding: .utf8)
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix(" ") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }

    /// The Debian package that provides a shared library the binary may link, by its soname.
    static func debianPackage(ofLibrary soname: String) -> String? {
        let glibc = ["libc.so.", "libm.so.", "libpthread.so.", "libdl.so.", "librt.so.", "ld-linux"]
        if glibc.contains(where: { soname.hasPrefix($0) }) { return "libc6" }
        let packages = [
            "libmosquitto.so.1": "libmosquitto1", "libopenblas.so.0": "libopenblas0", "libstdc++.so.6": "libstdc++6",
            "libgcc_s.so.1": "libgcc-s1",
        ]
        return packages[soname]
    }
}

/// Programs the package tests run.
enum Tool {
    /// `/usr/bin/env`, which `-i` makes start a program with an empty environment.
    static let env = URL(fileURLWithPath: "/usr/bin/env")

    /// The first executable `name` on `PATH`.
    static func find(_ name: String) -> URL? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return directories.map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }.first {
            FileManager.default.isExecutableFile(atPath: $0.path)
        }
    }

    /// Like `find`, but a missing program fails the test.
    static func url(_ name: String) throws -> URL {
        try #require(find(name), "\(name) is not installed")
    }
}

/// The Swift toolchain this test runner was built with.
enum Toolchain {
    /// The directory of the `libswiftCore.so` this process has mapped, if it links the runtime dynamically.
    static var runtimeDirectory: String? {
        // Read to the end: /proc files report a size of 0, which whole-file readers take at its word.
        guard let file = FileHandle(forReadingAtPath: "/proc/self/maps") else { return nil }
        defer { try? file.close() }
        let maps = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/"), line.hasSuffix("/libswiftCore.so") else { continue }
            return URL(fileURLWithPath: String(line[slash...])).deletingLastPathComponent().path
        }
        return nil
    }
}

/// Files of this repository, found from this source file's path.
enum Repository {
    /// The file at `path` relative to the repository's root.
    static func file(_ path: String, source: String = #filePath) -> URL {
        URL(fileURLWithPath: source).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(path)
    }
}
