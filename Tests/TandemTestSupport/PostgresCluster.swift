import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL cluster on a free loopback port: `initdb` into a scratch directory (trust
/// authentication, superuser `tandem`), `pg_ctl start`, and on ``shutdown()`` an immediate stop and the
/// directory removed. Started as root it runs as the `postgres` user, since the server refuses root.
public final class PostgresCluster: @unchecked Sendable {
    // Mutable state (`running`) is touched only under `lock`.
    private let lock = NSLock()
    private var running = true
    private let bin: String
    /// The port the server listens on (127.0.0.1).
    public let port: Int
    /// The cluster's scratch directory.
    public let directory: String

    /// A URL for the cluster's `postgres` database as superuser `tandem`.
    public var url: String { "postgres://tandem@127.0.0.1:\(port)/postgres?sslmode=disable" }

    /// The newest installed server's bin directory (Debian's /usr/lib/postgresql/N/bin), if any.
    public static var binDirectory: String? {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return versions.compactMap { Int($0) }.sorted().reversed().map { "\(root)/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }

    /// Whether a server can be started here.
    public static var isAvailable: Bool { binDirectory != nil }

    /// Creates and starts a cluster.
    public init() throws {
        guard let bin = Self.binDirectory else {
            throw BrokerError(
                "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
        }
        self.bin = bin
        port = try MosquittoBroker.freeLoopbackPort()
        var template = Array("/tmp/tandem-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw BrokerError("mkdtemp failed") }
        directory = String(cString: made)
        if getuid() == 0, let user = getpwnam("postgres") {
            chown(directory, user.pointee.pw_uid, user.pointee.pw_gid)
        }
        do {
            try run(
                "initdb",
                [
                    "-D", "\(directory)/data", "-A", "trust", "-U", "tandem", "-E", "UTF8", "--no-sync",
                    "--no-instructions",
                ])
            try run(
                "pg_ctl",
                [
                    "-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-t", "60", "-o",
                    "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40",
                    "start",
                ])
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    deinit { shutdown() }

    /// Starts a cluster, runs `body` with it, then stops it and removes its files, whatever happens.
    public static func with<Result: Sendable>(_ body: (PostgresCluster) async throws -> Result) async throws -> Result {
        let cluster = try PostgresCluster()
        defer { cluster.shutdown() }
        return try await body(cluster)
    }

    /// The server log so far (for failure messages).
    public var logText: String {
        (try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8)) ?? ""
    }

    /// Stops the server at once and removes the cluster's directory; later calls do nothing.
    public func shutdown() {
        let wasRunning = lock.withLock {
            defer { running = false }
            return running
        }
        guard wasRunning else { return }
        try? run("pg_ctl", ["-D", "\(directory)/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs one of the server's programs to completion, as the `postgres` user when this process is root.
    /// (posix_spawn and waitpid rather than Foundation's Process, whose exit monitoring missed runuser's exit.)
    private func run(_ program: String, _ arguments: [String]) throws {
        let executable = "\(bin)/\(program)"
        let output = "\(directory)/\(program).out"
        let child =
            getuid() == 0
            ? try MosquittoBroker.spawn(
                "/usr/sbin/runuser", ["-u", "postgres", "--", executable] + arguments, output: output)
            : try MosquittoBroker.spawn(executable, arguments, output: output)
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            throw BrokerError("\(program) \(arguments.joined(separator: " ")) failed (status \(status)): \(text)")
        }
    }
}
