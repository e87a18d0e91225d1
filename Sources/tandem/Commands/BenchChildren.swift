import Dispatch
import Foundation
import Synchronization
import TandemMQTT

#if canImport(Glibc)
    import Glibc
#endif

/// The processes a `tandem bench …` command starts (mosquitto, the stock clients, `tandem-cloud` workers), and
/// the promise that none of them outlives the bench.
///
/// Foundation's `Process` puts every child in a process group of its own, so a signal to the bench's group
/// (Ctrl-C, `timeout`, a supervisor) does not reach the children, and a `defer` does not run when the bench is
/// signalled. Three things close the gaps:
///
/// - ``stopOnSignals()``: SIGTERM, SIGINT and SIGHUP stop every child (SIGTERM, then SIGKILL after
///   ``graceSeconds``), remove the scratch directories and exit with 128 + the signal number.
/// - Children are started from one thread that lives as long as the bench, because Linux sends the parent-death
///   signal when the *thread* that started a child ends, not the process. `tandem-cloud serve` arms it itself
///   (`--exit-with-parent`, which also catches a bench that died before the worker got that far); programs that
///   cannot are started through util-linux `setpriv --pdeathsig KILL` when it is installed. So even a bench
///   killed with SIGKILL, which runs nothing, leaves nothing behind.
/// - ``stop(_:)`` is how a bench ends its children on the normal path, so both paths share one list.
final class BenchChildren: Sendable {
    /// The bench's one list.
    static let shared = BenchChildren()

    /// How long a child may take to stop after SIGTERM before it is killed.
    static let graceSeconds = 3.0

    private struct State {
        var running: [Process] = []
        var directories: [URL] = []
        /// Set once a signal arrived: nothing new starts.
        var stopping = false
        /// Kept alive for the process's lifetime; a released source stops delivering.
        var signalSources: [any DispatchSourceSignal] = []
    }

    private let state = Mutex(State())
    private let launcher = Launcher()

    /// Makes SIGTERM, SIGINT and SIGHUP stop every child and exit the bench non-zero. Idempotent.
    func stopOnSignals() {
        state.withLock { state in
            guard state.signalSources.isEmpty else { return }
            for number in [SIGTERM, SIGINT, SIGHUP] {
                // The default action would end the bench at once; the source below sees the signal instead.
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [self] in
                    FileHandle.standardError.write(
                        Data("tandem bench: signal \(number); stopping the processes it started\n".utf8))
                    stopAll()
                    exit(128 + number)
                }
                source.resume()
                state.signalSources.append(source)
            }
        }
    }

    /// Starts `process` and adds it to the list.
    ///
    /// - Parameter deathSignal: Start it through `setpriv --pdeathsig KILL` (when installed) so that it dies with
    ///   the bench; for programs that cannot arm the parent-death signal themselves.
    /// - Throws: Whatever `Process.run()` throws, or `CancellationError` once the bench is stopping.
    func start(_ process: Process, deathSignal: Bool) throws {
        if deathSignal, let setpriv = try? benchExecutable("setpriv"), let program = process.executableURL {
            process.arguments = ["--pdeathsig", "KILL", "--", program.path] + (process.arguments ?? [])
            process.executableURL = setpriv
        }
        guard !state.withLock({ $0.stopping }) else { throw CancellationError() }
        try launcher.run(process)
        let stopping = state.withLock { state -> Bool in
            state.running.append(process)
            return state.stopping
        }
        // A signal that came while it started: the handler may not have seen it in the list.
        if stopping { stop([process]) }
    }

    /// Removes `directory` (or a file) when the bench is stopped by a signal (the normal path removes it itself).
    func removeOnSignal(_ directory: URL) {
        state.withLock { $0.directories.append(directory) }
    }

    /// Forgets `directory` (or a file), removed on the normal path.
    func forget(_ directory: URL) {
        state.withLock { $0.directories.removeAll { $0 == directory } }
    }

    /// Stops `processes`: SIGTERM, up to ``graceSeconds`` to exit, then SIGKILL; returns once all have exited.
    func stop(_ processes: [Process], signal first: Int32 = SIGTERM) {
        for process in processes where process.isRunning { kill(process.processIdentifier, first) }
        let deadline = monotonicNanoseconds() + UInt64(Self.graceSeconds * 1e9)
        while processes.contains(where: \.isRunning) && monotonicNanoseconds() < deadline {
            usleep(20_000)
        }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in processes { process.waitUntilExit() }
        state.withLock { state in state.running.removeAll { running in processes.contains { $0 === running } } }
    }

    /// Stops every child and removes the registered directories; nothing starts afterwards.
    func stopAll() {
        let (processes, directories) = state.withLock { state in
            state.stopping = true
            return (state.running, state.directories)
        }
        stop(processes)
        for directory in directories { try? FileManager.default.removeItem(at: directory) }
    }
}

/// Starts processes from one thread that never ends, so that the parent-death signal of a child (sent when the
/// thread that created it ends) fires only when the bench itself dies. Callers block until their child started.
private final class Launcher: Sendable {
    private final class Request: Sendable {
        let process: Process
        let started = DispatchSemaphore(value: 0)
        let failure = Mutex<(any Error)?>(nil)
        init(_ process: Process) { self.process = process }
    }

    private let pending = Mutex<[Request]>([])
    private let available = DispatchSemaphore(value: 0)

    init() {
        // The thread keeps the launcher (one per bench, alive as long as the process) for good.
        BackgroundThread.start(name: "tandem-bench-launcher") { [self] in
            while true {
                available.wait()
                guard let request = pending.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
                do {
                    try request.process.run()
                } catch {
                    request.failure.withLock { $0 = error }
                }
                request.started.signal()
            }
        }
    }

    func run(_ process: Process) throws {
        let request = Request(process)
        pending.withLock { $0.append(request) }
        available.signal()
        request.started.wait()
        if let error = request.failure.withLock({ $0 }) { throw error }
    }
}
