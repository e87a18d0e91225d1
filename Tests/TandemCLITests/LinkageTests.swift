import Foundation
import TandemTestSupport
import Testing

/// What the executables link, read from their symbol tables: the `tandem` CLI drives the registry, rollouts and
/// provisioning through TandemFleet and must not carry the cloud's HTTP server, database drivers or NIO.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct LinkageTests {
    /// Modules only `tandem-cloud` may link: the service itself, its HTTP server, database drivers, NIO, service
    /// lifecycle and metrics.
    static let serverModules = [
        "TandemCloud", "Hummingbird", "PostgresNIO", "GRDB", "NIOCore", "NIOPosix", "NIOSSL", "ServiceLifecycle",
        "Prometheus",
    ]

    @Test("tandem holds no symbol of TandemCloud, the HTTP server, the database drivers, NIO or the metrics")
    func cliLinksNoServer() throws {
        let symbols = try SymbolTable(of: BuiltProducts.executable("tandem"))
        #expect(symbols.count(module: "TandemFleet") > 0, "the symbol search finds the modules tandem does link")
        for module in Self.serverModules {
            #expect(symbols.count(module: module) == 0, "tandem links \(module): \(symbols.examples(module: module))")
        }
    }

    @Test("tandem-cloud holds symbols of each of them, so the search above finds what is there")
    func cloudLinksServer() throws {
        let symbols = try SymbolTable(of: BuiltProducts.executable("tandem-cloud"))
        for module in Self.serverModules {
            #expect(symbols.count(module: module) > 100, "tandem-cloud links \(module)")
        }
    }
}

/// An executable's symbol table as `nm` lists it, one symbol a line.
struct SymbolTable {
    let lines: [String]

    /// Runs `nm` on `executable`.
    init(of executable: URL) throws {
        let result = try runCommand(URL(fileURLWithPath: "/usr/bin/env"), ["nm", executable.path])
        try #require(result.status == 0, "nm \(executable.path) exited \(result.status): \(result.standardError)")
        lines = result.standardOutput.components(separatedBy: "\n")
        try #require(lines.count > 1000, "nm listed almost nothing for \(executable.path)")
    }

    /// The symbols that name `module`: the module's own and other modules' conformances to its protocols.
    ///
    /// Swift's mangling spells an identifier as its length and its characters (`$s11Hummingbird6RouterC…`), so a
    /// match not preceded by a digit is the identifier itself, not the tail of a longer one.
    func symbols(naming module: String) -> [String] {
        let pattern = "\(module.utf8.count)\(module)"
        return lines.filter { line in
            guard line.contains(pattern) else { return false }
            var rest = line[...]
            while let hit = rest.range(of: pattern) {
                if hit.lowerBound == line.startIndex || !line[line.index(before: hit.lowerBound)].isNumber {
                    return true
                }
                rest = rest[hit.upperBound...]
            }
            return false
        }
    }

    /// How many symbols name `module`.
    func count(module: String) -> Int { symbols(naming: module).count }

    /// The first few symbols that name `module`, for a failure message.
    func examples(module: String) -> String { symbols(naming: module).prefix(3).joined(separator: "; ") }
}
