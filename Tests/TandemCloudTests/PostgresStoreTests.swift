import Foundation
import Synchronization
import TandemCloud
import TandemTestSupport
import Testing

@Suite(.enabled(if: PostgresCluster.isAvailable, "PostgreSQL server binaries are not installed"))
struct PostgresStoreTests {
    func escalation(_ id: UUID = UUID(), receivedAt: Double, device: String = "d1") -> SampleStore.Escalation {
        SampleStore.Escalation(
            id: id, device: device, stream: "s",
            payload: [1, 2, 3, UInt8(receivedAt.truncatingRemainder(dividingBy: 200))],
            responseTopic: "tandem/v1/f/\(device)/verdicts", edgeLabel: 2, edgeConfidence: 0.4, edgeModel: "e1",
            receivedAt: receivedAt)
    }

    @Test(
        "one row per escalation id, the first verdict wins, stale rows are claimed once, labels replace earlier ones; rows with verdicts in one call"
    )
    func storeRules() async throws {
        try await PostgresCluster.with { cluster in
            let store = try PostgresSampleStore(url: cluster.url)
            let first = escalation(receivedAt: 100)
            let second = escalation(receivedAt: 101)
            #expect(try store.insert([first, second, first]) == [true, true, false])
            #expect(try store.insert(first) == false, "a redelivery of a stored id")
            #expect(try store.counts() == (rows: 2, answered: 0))

            let verdict = SampleStore.StoredVerdict(label: 1, probabilities: [0.25, 0.5, 0.25], model: "full-1")
            try store.answer([(first.id, verdict)], at: 102)
            try store.answer(
                [(first.id, SampleStore.StoredVerdict(label: 0, probabilities: [1, 0, 0], model: "full-2"))], at: 103)
            #expect(try store.verdict(for: first.id) == verdict, "the first verdict stays")
            #expect(try store.verdict(for: second.id) == nil)
            #expect(try store.verdict(for: UUID()) == nil)

            // A second handle stands for another worker process: the unanswered row goes to one of them only.
            let other = try PostgresSampleStore(url: cluster.url)
            let claimed = try store.claimStale(worker: "w1", staleSeconds: 5, now: 110, limit: 10)
            #expect(claimed.map(\.id) == [second.id])
            #expect(claimed.first == second, "every field round-trips")
            #expect(try other.claimStale(worker: "w2", staleSeconds: 5, now: 111, limit: 10).isEmpty)
            #expect(try other.claimStale(worker: "w2", staleSeconds: 5, now: 120, limit: 10).map(\.id) == [second.id])
            #expect(Set(try other.ids()) == [first.id, second.id])

            #expect(try store.label(for: first.id) == nil)
            try store.recordLabel(id: first.id, label: 2, at: 130)
            try other.recordLabel(id: first.id, label: 0, at: 131)
            #expect(try store.label(for: first.id) == 0)

            // A batch's rows with the acknowledged verdicts in one call, as on SQLite.
            try StoreBatchTests.rowsWithVerdicts(store)
        }
    }

    @Test("a store opened beside another worker's open write transaction does not wait for it: no DDL once up to date")
    func openBesideAWriter() async throws {
        try await PostgresCluster.with { cluster in
            _ = try PostgresSampleStore(url: cluster.url)
            // Another worker mid-transaction holds a row-exclusive lock on the escalation table until it commits.
            let bin = try #require(PostgresCluster.binDirectory)
            let psql = Process()
            psql.executableURL = URL(fileURLWithPath: "\(bin)/psql")
            psql.arguments = [cluster.url, "-q", "-X", "-v", "ON_ERROR_STOP=1"]
            let input = Pipe()
            let output = Pipe()
            psql.standardInput = input
            psql.standardOutput = output
            psql.standardError = FileHandle.nullDevice
            try psql.run()
            defer { if psql.isRunning { psql.terminate() } }
            try input.fileHandleForWriting.write(
                contentsOf: Data("BEGIN;\nLOCK TABLE escalation IN ROW EXCLUSIVE MODE;\n\\echo locked\n".utf8))
            var seen = Data()
            while !String(decoding: seen, as: UTF8.self).contains("locked") {
                let chunk = output.fileHandleForReading.availableData
                try #require(!chunk.isEmpty, "psql ended before taking its lock")
                seen.append(chunk)
            }

            let finished = Mutex(false)
            let opened = Task.detached {
                defer { finished.withLock { $0 = true } }
                return try PostgresSampleStore(url: cluster.url)
            }
            // Generous for a loaded machine: the lock is held until the wait ends, so the limit costs nothing.
            let inTime = await waitUntil(.seconds(60)) { finished.withLock { $0 } }
            let holding = psql.isRunning
            #expect(holding, "the other transaction was still open")
            if holding { try input.fileHandleForWriting.write(contentsOf: Data("COMMIT;\n".utf8)) }
            try input.fileHandleForWriting.close()
            psql.waitUntilExit()
            let store = try await opened.value
            #expect(inTime, "the second store waited for the other transaction")
            #expect(try store.counts() == (rows: 0, answered: 0))
        }
    }

    @Test("a bad URL and an unreachable server are errors that name the store, without its password")
    func badURLs() throws {
        #expect(throws: StoreError.self) { _ = try PostgresSampleStore(url: "postgres://host-without-user/db") }
        #expect(throws: StoreError.self) {
            _ = try PostgresSampleStore(url: "postgres://u@127.0.0.1:5432/db?sslmode=sometimes")
        }
        let port = try freePort()
        do {
            _ = try PostgresSampleStore(url: "postgres://u:secret@127.0.0.1:\(port)/db?sslmode=disable")
            Issue.record("connected to a port nobody listens on")
        } catch {
            let message = String(describing: error)
            #expect(message.contains("127.0.0.1:\(port)"), "\(message)")
            #expect(!message.contains("secret"), "\(message)")
        }
    }

    func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
