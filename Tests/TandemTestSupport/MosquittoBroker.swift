import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real `mosquitto` broker on a free loopback port with a generated configuration, for tests.
///
/// Use ``MosquittoBroker/with(_:_:)`` so the broker is stopped and its directory removed whatever the
/// test body does; ``stop()``, ``start()`` and ``kill()`` let a test take it down and bring it back on the
/// same port with the same persisted sessions.
public final class MosquittoBroker: @unchecked Sendable {
    /// What the broker requires of clients.
    public struct Options: Sendable {
        /// `user → password` entries for a password file; empty means anonymous access.
        public var users: [String: String]
        /// ACL file text (mosquitto's `user`/`topic` syntax); only with `users`.
        public var acl: String?
        /// Serve TLS with a throwaway CA made by `openssl`.
        public var tls: Bool
        /// With `tls`: require clients to present a certificate signed by the test CA.
        public var requireClientCertificate: Bool
        /// Keep sessions and queued messages across ``MosquittoBroker/stop()``/``MosquittoBroker/start()``.
        public var persistence: Bool
        /// An existing password file (and ACL file) to use as they are, instead of `users`/`acl`.
        public var passwordFile: String?
        /// With `passwordFile`: an existing ACL file.
        public var aclFile: String?
        /// An existing dynamic-security file (what `tandem provision` writes), loaded with mosquitto's plugin;
        /// takes the place of `users`, `acl` and `passwordFile`.
        public var securityFile: String?
        /// TLS with certificates made elsewhere (by `tandem provision cloud --broker-host`), instead of `tls`.
        public var serverCertificate: ServerCertificate?

        /// A broker's TLS files.
        public struct ServerCertificate: Sendable {
            /// The CA that clients verify the broker against (and that signs client certificates).
            public var caFile: String
            /// The broker's certificate.
            public var certificateFile: String
            /// Its key.
            public var keyFile: String

            /// Names the files.
            public init(caFile: String, certificateFile: String, keyFile: String) {
                self.caFile = caFile
                self.certificateFile = certificateFile
                self.keyFile = keyFile
            }
        }

        /// Creates options; the defaults give an anonymous plain-TCP broker.
        public init(
            users: [String: String] = [:], acl: String? = nil, tls: Bool = false,
            requireClientCertificate: Bool = false, persistence: Bool = false, passwordFile: String? = nil,
            aclFile: String? = nil, securityFile: String? = nil, serverCertificate: ServerCertificate? = nil
        ) {
            self.securityFile = securityFile
            self.serverCertificate = serverCertificate
            self.passwordFile = passwordFile
            self.aclFile = aclFile
            self.users = users
            self.acl = acl
            self.tls = tls
            self.requireClientCertificate = requireClientCertificate
            self.persistence = persistence
        }
    }

    /// Certificates made for a TLS broker.
    public struct Certificates: Sendable {
        /// The CA that signed the broker's certificate.
        public let caFile: String
        /// An unrelated CA, for tests that must fail verification.
        public let wrongCAFile: String
        /// A client certificate signed by `caFile`.
        public let clientCertificateFile: String
        /// The key of `clientCertificateFile`.
        public let clientKeyFile: String
    }

    /// The loopback port the broker listens on.
    public let port: Int
    /// The host name clients use (`localhost`, which the TLS certificate names).
    public let host = "localhost"
    /// Where the configuration, logs, certificates and persistence live.
    public let directory: ScratchDirectory
    /// The TLS certificates, when the broker serves TLS.
    public let certificates: Certificates?
    private let configPath: String
    // `processID` is only touched under `lock` (an NSLock, which ThreadSanitizer understands).
    private let lock = NSLock()
    private var processIDStorage: pid_t?

    private init(options: Options) throws {
        directory = try ScratchDirectory(prefix: "tandem-mosquitto")
        port = try Self.freeLoopbackPort()
        let dir = directory.url.path
        var lines = [
            "listener \(port) 127.0.0.1", "log_dest file \(dir)/mosquitto.log", "log_type error", "log_type warning",
        ]
        if ProcessInfo.processInfo.environment["TANDEM_MOSQUITTO_LOG_ALL"] != nil {
            lines.append("log_type all")
        }
        if getuid() == 0 {
            // Started as root, mosquitto drops to the `mosquitto` user, which cannot read our 0600 files.
            lines.append("user root")
        }
        if let securityFile = options.securityFile {
            lines += [
                "allow_anonymous false", "plugin \(try Self.dynamicSecurityPlugin())",
                "plugin_opt_config_file \(securityFile)",
            ]
        } else if let passwordFile = options.passwordFile {
            lines += ["allow_anonymous false", "password_file \(passwordFile)"]
            if let aclFile = options.aclFile { lines.append("acl_file \(aclFile)") }
        } else if options.users.isEmpty {
            lines.append("allow_anonymous true")
        } else {
            let passwordFile = "\(dir)/passwords"
            var first = true
            for (user, password) in options.users.sorted(by: { $0.key < $1.key }) {
                try Self.run(
                    try Self.executable("mosquitto_passwd"),
                    first ? ["-b", "-c", passwordFile, user, password] : ["-b", passwordFile, user, password])
                first = false
            }
            lines += ["allow_anonymous false", "password_file \(passwordFile)"]
            if let acl = options.acl {
                let aclFile = "\(dir)/acl"
                try acl.write(toFile: aclFile, atomically: true, encoding: .utf8)
                lines.append("acl_file \(aclFile)")
            }
        }
        if let provided = options.serverCertificate {
            certificates = nil
            lines += [
                "cafile \(provided.caFile)", "certfile \(provided.certificateFile)", "keyfile \(provided.keyFile)",
            ]
            if options.requireClientCertificate {
                lines.append("require_certificate true")
            }
        } else if options.tls {
            certificates = try Self.makeCertificates(in: dir)
            lines += ["cafile \(dir)/ca.crt", "certfile \(dir)/server.crt", "keyfile \(dir)/server.key"]
            if options.requireClientCertificate {
                lines.append("require_certificate true")
            }
        } else {
            certificates = nil
        }
        if options.persistence {
            lines += [
                "persistence true", "persistence_location \(dir)/", "autosave_interval 1", "max_queued_messages 0",
            ]
        } else {
            lines.append("max_queued_messages 100000")
        }
        configPath = "\(dir)/mosquitto.conf"
        try (lines.joined(separator: "\n") + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    deinit {
        shutdown()
    }

    /// mosquitto's dynamic-security plugin, where Debian's mosquitto package puts it for this machine's
    /// architecture.
    public static func dynamicSecurityPlugin() throws -> String {
        let name = "mosquitto_dynamic_security.so"
        let roots = ["/usr/lib", "/usr/local/lib", "/usr/lib64"]
        for root in roots {
            let direct = "\(root)/\(name)"
            if FileManager.default.fileExists(atPath: direct) { return direct }
            for sub in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
                let path = "\(root)/\(sub)/\(name)"
                if FileManager.default.fileExists(atPath: path) { return path }
            }
        }
        throw BrokerError("\(name) not found under \(roots.joined(separator: ", ")); install the mosquitto package")
    }

    /// Starts a broker, runs `body` with it, then stops it and removes its files, whatever happens.
    public static func with<Result: Sendable>(
        _ options: Options = Options(), _ body: (MosquittoBroker) async throws -> Result
    ) async throws -> Result {
        let broker = try await MosquittoBroker.start(options)
        defer { broker.shutdown() }
        return try await body(broker)
    }

    /// Creates and starts a broker; call ``shutdown()`` when done.
    ///
    /// The free port is found by binding port 0 and closing it, so another process can take it before
    /// mosquitto binds it; a broker that fails to start is therefore retried on a new port, twice.
    public static func start(_ options: Options = Options()) async throws -> MosquittoBroker {
        var attempt = 0
        while true {
            attempt += 1
            let broker = try MosquittoBroker(options: options)
            do {
                try await broker.start()
                return broker
            } catch {
                broker.shutdown()
                if attempt == 3 { throw error }
            }
        }
    }

    /// Starts (or restarts) the broker process and waits until it accepts connections.
    public func start() async throws {
        let child = try Self.spawn(Self.executable("mosquitto"), ["-c", configPath])
        lock.withLock { processIDStorage = child }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            // Another broker (from a parallel test, or another process on the machine) may have taken the
            // port since it was found free; then ours fails to bind and exits while connecting still works.
            if Self.canConnect(port: port) && Self.isListening(process: child, port: port) { return }
            var status: Int32 = 0
            if waitpid(child, &status, WNOHANG) == child {
                lock.withLock { processIDStorage = nil }
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let log = (try? String(contentsOfFile: "\(directory.url.path)/mosquitto.log", encoding: .utf8)) ?? ""
        throw BrokerError("mosquitto on port \(port) did not start; log:\n\(log)")
    }

    /// What the broker logged so far (errors and warnings; everything with `TANDEM_MOSQUITTO_LOG_ALL` set).
    public var logText: String {
        (try? String(contentsOfFile: "\(directory.url.path)/mosquitto.log", encoding: .utf8)) ?? ""
    }

    /// Stops the broker gracefully (SIGTERM), so it saves persisted sessions, and waits for it to exit.
    public func stop() {
        signalAndWait(SIGTERM)
    }

    /// Kills the broker with SIGKILL and waits for it to exit.
    public func kill() {
        signalAndWait(SIGKILL)
    }

    /// Stops the broker and removes its directory.
    public func shutdown() {
        stop()
        if ProcessInfo.processInfo.environment["TANDEM_MOSQUITTO_KEEP"] == nil {
            directory.remove()
        }
    }

    private func signalAndWait(_ signal: Int32) {
        let child = lock.withLock { () -> pid_t? in
            defer { processIDStorage = nil }
            return processIDStorage
        }
        guard let child else { return }
        Glibc.kill(child, signal)
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    }

    /// Starts `executable` with `arguments`, its output discarded (or appended to the file `output`).
    static func spawn(_ executable: String, _ arguments: [String], output: String = "/dev/null") throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // The test process blocks signals on its threads; the child must not inherit that, or SIGTERM waits.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw BrokerError("cannot start \(executable): error \(rc)") }
        return child
    }

    // MARK: Helpers

    private static func makeCertificates(in dir: String) throws -> Certificates {
        let openssl = try executable("openssl")
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for name in ["ca", "wrong-ca"] {
            try run(
                openssl,
                ["req", "-x509"] + ec + [
                    "-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).crt", "-days", "2", "-subj",
                    "/CN=Tandem test \(name)",
                ])
        }
        // The server certificate names only DNS:localhost, so connecting to 127.0.0.1 must fail the
        // hostname check.
        try "subjectAltName=DNS:localhost\n".write(toFile: "\(dir)/server.ext", atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: "\(dir)/client.ext", atomically: true, encoding: .utf8)
        for (name, subject) in [("server", "/CN=localhost"), ("client", "/CN=edge-7")] {
            try run(
                openssl,
                ["req"] + ec + ["-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).csr", "-subj", subject])
            try run(
                openssl,
                [
                    "x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", "\(dir)/ca.crt", "-CAkey", "\(dir)/ca.key",
                    "-CAcreateserial", "-out", "\(dir)/\(name).crt", "-days", "2", "-extfile", "\(dir)/\(name).ext",
                ])
        }
        return Certificates(
            caFile: "\(dir)/ca.crt", wrongCAFile: "\(dir)/wrong-ca.crt", clientCertificateFile: "\(dir)/client.crt",
            clientKeyFile: "\(dir)/client.key")
    }

    /// The full path of `name`, from `PATH` and the sbin directories where Debian puts `mosquitto`.
    public static func executable(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
            return "\(directory)/\(name)"
        }
        throw BrokerError("\(name) not found in PATH; install the mosquitto, mosquitto-clients and openssl packages")
    }

    /// Runs a command to completion and throws when it fails.
    static func run(_ executable: String, _ arguments: [String]) throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = arguments
        child.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        child.standardError = errors
        try child.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        guard child.terminationStatus == 0 else {
            throw BrokerError(
                "\(executable) \(arguments.joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
        }
    }

    /// A port that was free on 127.0.0.1 a moment ago.
    public static func freeLoopbackPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw BrokerError("socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw BrokerError("bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func canConnect(port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Whether `process` owns the socket listening on 127.0.0.1:`port`, from `/proc/net/tcp` and the
    /// process's descriptors.
    static func isListening(process: pid_t, port: Int) -> Bool {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return false }
        let local = "0100007F:" + String(format: "%04X", port)
        var inodes = Set<Substring>()
        for line in table.split(separator: "\n").dropFirst() {
            // sl, local_address, rem_address, st, tx:rx queue, tr:when, retrnsmt, uid, timeout, inode
            let fields = line.split(separator: " ")
            if fields.count > 9 && fields[1] == local && fields[3] == "0A" { inodes.insert(fields[9]) }
        }
        let descriptors = "/proc/\(process)/fd"
        guard !inodes.isEmpty, let names = try? FileManager.default.contentsOfDirectory(atPath: descriptors) else {
            return false
        }
        return names.contains { name in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(descriptors)/\(name)"),
                target.hasPrefix("socket:[")
            else { return false }
            return inodes.contains(target.dropFirst("socket:[".count).dropLast())
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}

/// A broker harness failure.
public struct BrokerError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
