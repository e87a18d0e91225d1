import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// A disk-backed queue in front of an ``MQTTClient``: a message accepted by ``append(_:)`` is in the
/// journal before the call returns and leaves it only when the broker acknowledges it.
///
/// Messages are published in the order they were appended, with at most
/// ``Configuration-swift.struct/maximumInflight`` handed to the client at once. The client keeps those
/// across reconnects and resends them; after a process restart the outbox replays every message not yet
/// acknowledged. Delivery is therefore at least once: receivers drop duplicates with a
/// ``MessageDeduplicator`` keyed on an id inside the message.
///
/// A PUBACK with a failure reason code (for example 135, not authorized) is final: the message leaves the
/// journal, ``Statistics-swift.struct/rejected`` counts it and the warning handler names its topic.
///
/// Memory does not grow with the backlog: the queue keeps where each record is in the journal, and a
/// message is read back from disk when it is handed to the client (a record damaged meanwhile is dropped
/// with a warning and counted as rejected).
public final class DurableOutbox: Sendable {
    /// When the journal is forced to stable storage. Every policy writes each message to the kernel before
    /// ``DurableOutbox/append(_:)`` returns, so a killed process never loses an accepted message; the policy
    /// decides what a power loss can take.
    public enum SyncPolicy: Sendable, Hashable {
        /// `fsync` inside every append call (a batch append syncs once).
        case everyAppend
        /// `fsync` at most this often, from a background thread.
        case interval(milliseconds: Int)
        /// Leave it to the operating system.
        case never
    }

    /// What ``DurableOutbox/append(_:)`` does when the journal would exceed its byte bound.
    public enum OverflowPolicy: Sendable, Hashable {
        /// Throw ``MQTTError/Code-swift.enum/outboxFull``; the caller keeps the message.
        case refuseNew
        /// Drop the oldest messages not yet handed to the connection until the new one fits.
        case dropOldest
    }

    /// How an outbox stores and sends.
    public struct Configuration: Sendable {
        /// The directory for segment files; one outbox per directory.
        public var directory: String
        /// A segment is closed and a new one started past this size.
        public var segmentBytes: Int
        /// The most bytes the journal may hold on disk; at least twice `segmentBytes`.
        public var maximumBytes: Int
        /// When the journal is synced.
        public var sync: SyncPolicy
        /// What to do when full.
        public var overflow: OverflowPolicy
        /// The most messages handed to the client and not yet acknowledged.
        public var maximumInflight: Int

        /// Creates a configuration.
        public init(
            directory: String,
            segmentBytes: Int = 4 * 1024 * 1024,
            maximumBytes: Int = 256 * 1024 * 1024,
            sync: SyncPolicy = .interval(milliseconds: 100),
            overflow: OverflowPolicy = .refuseNew,
            maximumInflight: Int = 1000
        ) {
            self.directory = directory
            self.segmentBytes = max(4096, segmentBytes)
            self.maximumBytes = max(2 * self.segmentBytes, maximumBytes)
            self.sync = sync
            self.overflow = overflow
            self.maximumInflight = max(1, maximumInflight)
        }
    }

    /// Counters, read with ``DurableOutbox/statistics``.
    public struct Statistics: Sendable, Hashable {
        /// Messages in the journal not yet acknowledged.
        public var pending: Int
        /// Messages handed to the client and not yet acknowledged.
        public var inflight: Int
        /// Bytes the journal holds on disk.
        public var journalBytes: Int
        /// Messages the broker acknowledged since the outbox opened.
        public var delivered: Int
        /// Messages the broker answered with a failure reason code.
        public var rejected: Int
        /// Messages dropped by the `.dropOldest` overflow policy.
        public var droppedOnOverflow: Int
        /// Appends refused by the `.refuseNew` overflow policy.
        public var refusedOnOverflow: Int
        /// Messages recovered from disk when the outbox opened.
        public var recoveredOnOpen: Int
        /// Torn or corrupt journal tails cut off when the outbox opened.
        public var truncatedTails: Int
    }

    struct Entry: Sendable {
        let sequence: UInt64
        /// Where the message's record is in the journal: its payload is read back only to send it, so a
        /// backlog (a broker away for an hour) costs memory per message, not per payload byte.
        let location: OutboxJournal.RecordLocation
        /// For messages about the message (a broker's rejection).
        let topic: String
    }

    /// What the outbox knows in memory. Its lock is never held across file I/O, because the network thread
    /// takes it for every acknowledgement.
    struct State {
        /// Messages waiting to be handed to the client from ``queueHead`` on; slots before it are nil, so a
        /// message's payload is freed as soon as it leaves the queue, not when the slots are compacted.
        var queue: [Entry?] = []
        var queueHead = 0
        var inflight: [UInt64: Entry] = [:]
        var client: MQTTClient?
        var pumping = false
        var closed = false
        var statistics: Statistics
        /// Acknowledged messages whose removal records the flusher has not written yet.
        var acknowledged: [UInt64] = []

        var pendingCount: Int { queue.count - queueHead + inflight.count }

        mutating func popFront() -> Entry? {
            guard queueHead < queue.count else { return nil }
            let entry = queue[queueHead].take()
            queueHead += 1
            if queueHead == queue.count {
                queue.removeAll(keepingCapacity: queue.count <= 4096)
                queueHead = 0
            } else if queueHead > 4096 && queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            return entry
        }

        /// Takes in-flight message `sequence` out for good — the broker answered, or it cannot be sent —
        /// counting it and queueing its removal record. `wakesFlusher`: it is the first removal of a batch
        /// (one wakeup per batch: the flusher takes every removal queued by the time it runs).
        mutating func retire(_ sequence: UInt64, delivered: Bool) -> (entry: Entry, wakesFlusher: Bool)? {
            guard let entry = inflight.removeValue(forKey: sequence) else { return nil }
            if delivered { statistics.delivered += 1 } else { statistics.rejected += 1 }
            acknowledged.append(sequence)
            return (entry, acknowledged.count == 1)
        }

        mutating func pushFront(_ entry: Entry) {
            if queueHead > 0 {
                queueHead -= 1
                queue[queueHead] = entry
            } else {
                queue.insert(entry, at: 0)
            }
        }
    }

    /// The configuration the outbox was opened with.
    public let configuration: Configuration
    // The journal is a non-Sendable class; it is only touched inside its lock. Whoever needs both locks takes
    // `journal` first. The network thread takes only `state`, so a slow disk never holds up the connection.
    private let journal: LockedState<OutboxJournal>
    /// Used only by the one active pumper (see ``pump()``), so its lock is never contended.
    private let segmentReader = Mutex(SegmentReader())
    private let state: LockedState<State>
    private let warn: @Sendable (String) -> Void
    private let flusherWakeup = Wakeup()

    /// Opens the outbox in `configuration.directory`, recovering every message not yet acknowledged.
    ///
    /// - Parameters:
    ///   - configuration: where and how to store.
    ///   - warn: told about damaged journal tails and rejected messages; defaults to standard error.
    /// - Throws: ``MQTTError`` with `.journalIO` when the directory cannot be used.
    public init(
        configuration: Configuration,
        warn: @escaping @Sendable (String) -> Void = {
            StandardError.write("warning: " + $0 + "\n")
        }
    ) throws {
        self.configuration = configuration
        self.warn = warn
        let journal = try OutboxJournal(
            directory: configuration.directory, segmentBytes: configuration.segmentBytes, warn: warn)
        let recovered = journal.recovered.map {
            Entry(sequence: $0.sequence, location: $0.location, topic: $0.topic)
        }
        let statistics = Statistics(
            pending: recovered.count, inflight: 0, journalBytes: journal.totalBytes, delivered: 0, rejected: 0,
            droppedOnOverflow: 0, refusedOnOverflow: 0, recoveredOnOpen: recovered.count,
            truncatedTails: journal.truncatedTails)
        var initial = State(statistics: statistics)
        initial.queue = recovered
        state = LockedState(initial)
        self.journal = LockedState(journal)
        startFlusher()
    }

    /// Current counters.
    public var statistics: Statistics {
        let journalBytes = journal.withLock { $0.totalBytes }
        return state.withLock { state in
            var statistics = state.statistics
            statistics.pending = state.pendingCount
            statistics.inflight = state.inflight.count
            statistics.journalBytes = journalBytes
            return statistics
        }
    }

    /// Accepts one message: journals it, then sends it when the connection allows.
    ///
    /// - Returns: the message's sequence number in this outbox.
    /// - Throws: `.outboxFull` (policy `.refuseNew`), `.journalIO`, `.invalidArgument`, `.shutDown`.
    @discardableResult
    public func append(_ message: MQTTMessage) throws -> UInt64 {
        try append(contentsOf: [message]).lowerBound
    }

    /// Accepts messages in one journal write (and one sync under `.everyAppend`).
    ///
    /// - Returns: the sequence numbers given to them, in order.
    @discardableResult
    public func append(contentsOf messages: [MQTTMessage]) throws -> Range<UInt64> {
        guard !messages.isEmpty else { return 0..<0 }
        let range = try journal.withLock { journal -> Range<UInt64> in
            guard !state.withLock({ $0.closed }) else {
                throw MQTTError(.shutDown, "outbox \(configuration.directory) is closed")
            }
            let first = journal.nextSequence
            var records: [UInt8] = []
            var sizes: [Int] = []
            sizes.reserveCapacity(messages.count)
            for (offset, message) in messages.enumerated() {
                let record = try OutboxRecord.encodeMessage(message, sequence: first + UInt64(offset))
                sizes.append(record.count)
                records.append(contentsOf: record)
            }
            try makeRoom(for: records.count, in: journal)
            let locations = try journal.appendMessages(records, sizes: sizes)
            if configuration.sync == .everyAppend {
                try journal.sync()
            }
            let entries = zip(messages, locations).enumerated().map { offset, pair in
                Entry(sequence: first + UInt64(offset), location: pair.1, topic: pair.0.topic)
            }
            // Queued while the journal lock is held, so concurrent appends reach the queue in sequence order.
            state.withLock { $0.queue.append(contentsOf: entries) }
            return first..<(first + UInt64(messages.count))
        }
        pump()
        return range
    }

    private func makeRoom(for bytes: Int, in journal: OutboxJournal) throws {
        guard bytes <= configuration.maximumBytes - configuration.segmentBytes else {
            throw MQTTError(
                .invalidArgument,
                "\(bytes) bytes do not fit outbox \(configuration.directory) (bound \(configuration.maximumBytes))")
        }
        if journal.totalBytes + bytes > configuration.maximumBytes {
            // Acknowledged messages the flusher has not retired yet free room too.
            try retireAcknowledged(in: journal)
        }
        while journal.totalBytes + bytes > configuration.maximumBytes {
            let oldest = state.withLock { state -> Entry? in
                guard configuration.overflow == .dropOldest, let oldest = state.popFront() else {
                    state.statistics.refusedOnOverflow += 1
                    return nil
                }
                state.statistics.droppedOnOverflow += 1
                return oldest
            }
            guard let oldest else {
                throw MQTTError(
                    .outboxFull,
                    "outbox \(configuration.directory) holds \(journal.totalBytes) of "
                        + "\(configuration.maximumBytes) bytes; refusing a new message")
            }
            try journal.remove(sequence: oldest.sequence)
            try journal.flushRemovals()
        }
    }

    /// Writes removal records for the messages acknowledged since the last call. Called under the journal lock.
    private func retireAcknowledged(in journal: OutboxJournal) throws {
        let acknowledged = state.withLock { state -> [UInt64] in
            defer { state.acknowledged.removeAll(keepingCapacity: true) }
            return state.acknowledged
        }
        for sequence in acknowledged {
            try journal.remove(sequence: sequence)
        }
    }

    /// Starts sending through `client`. The client may be connected or not; messages wait for it.
    public func attach(to client: MQTTClient) {
        state.withLock { state in
            // Messages stranded by a previous client that closed go first again, in order.
            let stranded = state.inflight.values.sorted { $0.sequence < $1.sequence }
            state.inflight.removeAll()
            for entry in stranded.reversed() { state.pushFront(entry) }
            state.client = client
        }
        let states = client.connectionStates()
        Task { [weak self] in
            for await connection in states {
                guard let self else { return }
                if connection.isConnected { self.pump() }
            }
        }
        pump()
    }

    /// Waits until every journaled message has been acknowledged (or the timeout passes).
    ///
    /// The flusher retires acknowledged messages from the journal files shortly after; ``close()`` does it
    /// at once.
    ///
    /// - Returns: whether the outbox is empty.
    public func waitUntilDrained(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLock({ $0.pendingCount == 0 }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return state.withLock { $0.pendingCount == 0 }
    }

    /// Writes buffered removals, syncs the journal and stops sending. Unacknowledged messages stay on disk.
    public func close() {
        journal.withLock { journal in
            state.withLock { state in
                state.closed = true
                state.client = nil
            }
            do {
                try retireAcknowledged(in: journal)
                try journal.sync()
            } catch {
                warn("outbox \(configuration.directory): \(error)")
            }
        }
        flusherWakeup.signal()
    }

    /// Hands queued messages to the client, in order, while the in-flight window has room.
    ///
    /// One caller pumps at a time (`pumping`); a caller that finds it taken returns at once, and the active
    /// pumper sees its change because the final "nothing to send" check and clearing the flag happen in one
    /// critical section.
    private func pump() {
        let start = state.withLock { state -> Bool in
            guard !state.pumping else { return false }
            state.pumping = true
            return true
        }
        guard start else { return }
        while true {
            let next = state.withLock { state -> (Entry, MQTTClient)? in
                guard !state.closed, let client = state.client, state.inflight.count < configuration.maximumInflight,
                    let entry = state.popFront()
                else {
                    state.pumping = false
                    return nil
                }
                state.inflight[entry.sequence] = entry
                return (entry, client)
            }
            guard let (entry, client) = next else { return }
            let sequence = entry.sequence
            let message: MQTTMessage
            do {
                message = try segmentReader.withLock { reader in
                    try OutboxJournal.readMessage(at: entry.location, reader: &reader)
                }
            } catch {
                // The journal lost it (a damaged or deleted file): sending it is impossible, retrying futile.
                warn(
                    "outbox \(configuration.directory): message \(sequence) cannot be read back (\(error)); dropping it"
                )
                if state.withLock({ $0.retire(sequence, delivered: false) })?.wakesFlusher == true {
                    flusherWakeup.signal()
                }
                continue
            }
            do {
                try client.publish(message) { [weak self] result in
                    self?.completed(sequence: sequence, result: result)
                }
            } catch {
                // Not connected (QoS 0) or closed: put it back; the next connection event pumps again.
                state.withLock { state in
                    if let entry = state.inflight.removeValue(forKey: sequence) { state.pushFront(entry) }
                    state.pumping = false
                }
                return
            }
        }
    }

    /// Runs on the client's network thread: bookkeeping in memory only; the flusher writes the removal record.
    private func completed(sequence: UInt64, result: Result<MQTTPublishResult, MQTTError>) {
        let (rejection, wakeFlusher) = state.withLock { state -> (String?, Bool) in
            guard case .success(let answer) = result else {
                // The client closed before the broker answered: the message stays journaled and in flight,
                // and `attach(to:)` requeues it for the next client.
                return (nil, false)
            }
            guard let (entry, wakesFlusher) = state.retire(sequence, delivered: answer.isAccepted) else {
                return (nil, false)
            }
            let rejection =
                answer.isAccepted
                ? nil
                : "outbox \(configuration.directory): broker rejected message \(sequence) on \(entry.topic) "
                    + "with reason code \(answer.reasonCode); dropping it"
            return (rejection, wakesFlusher)
        }
        if let rejection { warn(rejection) }
        if wakeFlusher { flusherWakeup.signal() }
        pump()
    }

    /// Retires acknowledged messages from the journal and applies the sync policy, on its own thread.
    ///
    /// `fsync` runs on a duplicate of the segment's descriptor outside both locks: a disk busy with other
    /// writers can take seconds to sync, and neither appends nor acknowledgements wait for it.
    private func startFlusher() {
        let period: Int
        switch configuration.sync {
        case .interval(let milliseconds): period = max(1, milliseconds)
        case .everyAppend, .never: period = 200
        }
        let syncs = configuration.sync != .never
        BackgroundThread.start(name: "outbox-flusher") { [weak self] in
            var lastSync = ContinuousClock.now
            while let outbox = self {
                let syncDue = syncs && ContinuousClock.now - lastSync >= .milliseconds(period)
                let (closed, descriptor, failure) = outbox.journal.withLock { journal -> (Bool, Int32?, String?) in
                    let closed = outbox.state.withLock { $0.closed }
                    do {
                        try outbox.retireAcknowledged(in: journal)
                        if closed { return (true, nil, nil) }
                        if syncDue { return (false, try journal.descriptorToSync(), nil) }
                        try journal.flushRemovals()
                        return (false, nil, nil)
                    } catch {
                        return (closed, nil, "outbox \(outbox.configuration.directory): \(error)")
                    }
                }
                if let failure { outbox.warn(failure) }
                if syncDue { lastSync = ContinuousClock.now }
                if let descriptor {
                    if fsync(descriptor) != 0 {
                        outbox.warn("outbox \(outbox.configuration.directory): fsync failed: errno \(errno)")
                    }
                    Glibc.close(descriptor)
                }
                if closed { return }
                let wakeup = outbox.flusherWakeup
                _ = consume outbox
                wakeup.wait(milliseconds: period)
            }
        }
    }
}
