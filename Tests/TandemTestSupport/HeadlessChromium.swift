import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: commands in on fd 3, replies out on fd 4, each a JSON object ended by NUL), for tests
/// that open a page, read it and click in it as a user would.
///
/// Calls block until the reply arrives (use them off the cooperative threads); the browser and its profile
/// directory go away with ``close()``.
public final class HeadlessChromium: @unchecked Sendable {
    // `pid`, the descriptors and `profile` are set once in init and only read afterwards; `replies` and the next id
    // are behind `state`.
    private let pid: pid_t
    private let commands: Int32
    private let events: Int32
    private let profile: URL
    private let state = Mutex(State())
    private var reader: Thread?

    private struct State {
        var nextID = 1
        var replies: [Int: Data] = [:]
        var closed = false
    }

    /// A browser error or a reply that did not come.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The browser's executable: `chromium` on the PATH, as Debian installs it.
    public static var executable: String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(directory)/chromium"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Starts the browser with a fresh profile and a `width`×`height` window.
    public init(width: Int = 1400, height: Int = 900) throws {
        guard let executable = Self.executable else {
            throw Failure(description: "chromium is not installed (scripts/test installs Debian's chromium)")
        }
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        var toBrowser: [Int32] = [0, 0]
        var fromBrowser: [Int32] = [0, 0]
        guard pipe(&toBrowser) == 0, pipe(&fromBrowser) == 0 else { throw Failure(description: "pipe failed") }
        let arguments = [
            executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--hide-scrollbars", "--remote-debugging-pipe",
            "--user-data-dir=\(profile.path)", "--window-size=\(width),\(height)", "about:blank",
        ]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toBrowser[0], 3)
        posix_spawn_file_actions_adddup2(&actions, fromBrowser[1], 4)
        let devNull = "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, devNull, O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, devNull, O_WRONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, executable, &actions, nil, argv, environ)
        Glibc.close(toBrowser[0])
        Glibc.close(fromBrowser[1])
        guard spawned == 0 else {
            Glibc.close(toBrowser[1])
            Glibc.close(fromBrowser[0])
            throw Failure(description: "cannot start \(executable): error \(spawned)")
        }
        pid = child
        commands = toBrowser[1]
        events = fromBrowser[0]
        let thread = Thread { [self] in readReplies() }
        reader = thread
        thread.start()
    }

    deinit { close() }

    /// Stops the browser and removes its profile.
    public func close() {
        let wasClosed = state.withLock { state in
            defer { state.closed = true }
            return state.closed
        }
        guard !wasClosed else { return }
        // Closing its end of the pipe asks the browser to quit (and take its helper processes with it).
        Glibc.close(commands)
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(3)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(20_000)
        }
        try? FileManager.default.removeItem(at: profile)
    }

    private func readReplies() {
        var pending = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(events, &buffer, buffer.count)
            if n <= 0 { break }
            pending.append(contentsOf: buffer[0..<n])
            while let end = pending.firstIndex(of: 0) {
                let message = pending[pending.startIndex..<end]
                pending = Data(pending[(end + 1)...])
                guard let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any],
                    let id = object["id"] as? Int
                else { continue }
                state.withLock { $0.replies[id] = Data(message) }
            }
        }
        Glibc.close(events)
    }

    /// Sends a DevTools command and returns its `result`.
    ///
    /// - Throws: ``Failure`` with the browser's error, or when no reply came within `timeout` seconds.
    @discardableResult
    public func send(_ method: String, _ params: [String: Any] = [:], session: String? = nil, timeout: Double = 30)
        throws -> [String: Any]
    {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        let written = bytes.withUnsafeBytes { write(commands, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw Failure(description: "\(method): the browser's pipe is closed") }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let data = state.withLock({ $0.replies.removeValue(forKey: id) }) {
                let reply = (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
                if let error = reply["error"] as? [String: Any] {
                    throw Failure(description: "\(method): \(error["message"] ?? error)")
                }
                return reply["result"] as? [String: Any] ?? [:]
            }
            usleep(5000)
        }
        throw Failure(description: "\(method): no reply within \(timeout) s")
    }

    /// A tab showing `url`; returns its DevTools session.
    public func open(_ url: String) throws -> String {
        let target = try send("Target.createTarget", ["url": url])
        guard let targetID = target["targetId"] as? String else { throw Failure(description: "no target id") }
        let attached = try send("Target.attachToTarget", ["targetId": targetID, "flatten": true])
        guard let session = attached["sessionId"] as? String else { throw Failure(description: "no session id") }
        return session
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value as JSON (`returnByValue`).
    ///
    /// - Throws: ``Failure`` if the expression threw.
    public func evaluate(_ expression: String, session: String) throws -> Any? {
        let result = try send(
            "Runtime.evaluate", ["expression": expression, "awaitPromise": true, "returnByValue": true],
            session: session)
        if let exception = result["exceptionDetails"] as? [String: Any] {
            throw Failure(description: "\(expression.prefix(80)): \(exception["exception"] ?? exception)")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Evaluates `expression` every 50 ms until it is `true` or `timeout` seconds pass; returns whether it was. An
    /// expression that throws (the page is still loading: no `document.body` yet) counts as not yet.
    public func wait(until expression: String, session: String, timeout: Double = 30) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        let guarded = "(() => { try { return (\(expression)) === true } catch (_) { return false } })()"
        repeat {
            if try evaluate(guarded, session: session) as? Bool == true { return true }
            usleep(50_000)
        } while Date() < deadline
        return false
    }

    /// A PNG of the whole page.
    public func screenshot(session: String) throws -> Data {
        let result = try send(
            "Page.captureScreenshot", ["format": "png", "captureBeyondViewport": true], session: session)
        guard let base64 = result["data"] as? String, let data = Data(base64Encoded: base64) else {
            throw Failure(description: "Page.captureScreenshot returned no image")
        }
        return data
    }
}
