extension MQTTClient {
    /// Everything the client's lock protects: where the connection stands, as one state that carries its data,
    /// and the publish and subscribe bookkeeping that outlives any one connection.
    ///
    /// - `idle` → `connecting` on `connect()` (strict) or `start()`; → `closed` on `disconnect()`.
    /// - `connecting` → `connected` on CONNACK; → `reconnecting(1)` on a failure after `start()`; → `stopping` on
    ///   a failure after `connect()`, or on `disconnect()`.
    /// - `connected` → `reconnecting(1)` when the connection is lost; → `stopping` on `disconnect()`.
    /// - `reconnecting(n)` → `reconnecting(n + 1)` on a failure; → `connected` on CONNACK; → `stopping` on
    ///   `disconnect()`.
    /// - `stopping` → `closed` when the network thread has exited; `closed` is final.
    ///
    /// Transitions are mutating methods called under the lock. Each returns what is left to do once the lock is
    /// released (resume or fail waiters, start the network thread, back off, tell observers), so no continuation
    /// is resumed and no libmosquitto call is made while the lock is held. Only the network thread reports on
    /// the connection (``connectionAccepted(sessionPresent:)``, ``connectionFailed(_:)``,
    /// ``networkLoopExited()``); the one change reported by another thread while it may run, `.connecting`, is
    /// delivered before the thread starts. So observers see the changes in the order they happened.
    ///
    /// The state is all that says whether the client runs: `connect()` after `start()` stays lenient because the
    /// strictness lives in ``Connecting``, a loss resets the backoff because ``connectionFailed(_:)`` in
    /// `.connected` starts again at attempt 1, and publishing after the close fails because the state is
    /// `.closed`.
    struct StateMachine: Sendable {
        typealias ConnectWaiter = CheckedContinuation<Void, any Error>
        typealias ExitWaiter = CheckedContinuation<Void, Never>
        typealias SubscribeWaiter = CheckedContinuation<[Int32], any Error>
        typealias Observer = AsyncStream<MQTTConnectionState>.Continuation

        /// Where the connection stands, with what only that stage has.
        enum State: Sendable {
            /// Neither `connect()` nor `start()` has run; there is no network thread.
            case idle
            /// The network thread opens the first connection.
            case connecting(Connecting)
            /// The broker accepted the connection.
            case connected(sessionPresent: Bool)
            /// The connection was lost or an attempt failed; the network thread backs off and tries again.
            case reconnecting(Reconnecting)
            /// The network thread is leaving its loop: `disconnect()` was called or a strict first connection
            /// failed. It ends in `.closed` when the thread has exited.
            case stopping(Stopping)
            /// Shut down for good; the error says why when it was not `disconnect()`.
            case closed(MQTTError?)
        }

        /// The first connection, in progress.
        struct Connecting: Sendable {
            /// `connect()` started the client, so the first failure closes it and is thrown to the caller;
            /// after `start()` every failure is retried.
            var strict: Bool
            var waiters: [ConnectWaiter]
            /// The broker's CONNACK refusal; the socket error that follows it says less.
            var refusal: MQTTError?
        }

        /// Between a failure and the next accepted connection.
        struct Reconnecting: Sendable {
            /// Failed attempts since the last accepted connection, from 1.
            var attempt: Int
            var lastError: MQTTError
            var waiters: [ConnectWaiter]
            /// The broker's CONNACK refusal to the attempt in progress.
            var refusal: MQTTError?
        }

        /// Waiting for the network thread to exit.
        struct Stopping: Sendable {
            /// What ``connectionState`` still says: the client is not closed until the thread has exited.
            var lastReported: MQTTConnectionState
            /// Why the client closes; `nil` for `disconnect()`.
            var reason: MQTTError?
            var connectWaiters: [ConnectWaiter]
            var exitWaiters: [ExitWaiter]
        }

        /// Names the client in error messages.
        let clientID: String
        private(set) var state: State = .idle

        private(set) var publishWaiters: [Int32: PublishCompletion] = [:]
        /// Acknowledgements that arrived before their publish registered its waiter.
        private var earlyPublishResults: [Int32: Int32] = [:]
        /// Publishes with a completion that are between `mosquitto_publish_v5` and registering their waiter.
        private(set) var registeringPublishes = 0
        private(set) var subscribeWaiters: [Int32: SubscribeWaiter] = [:]
        private var earlySubscribeResults: [Int32: [Int32]] = [:]
        private(set) var subscriptions: [UInt64: SubscriptionEntry] = [:] {
            didSet { routing = Array(subscriptions.values) }
        }
        /// `subscriptions.values`, kept as an array so routing a message copies a reference, not a dictionary.
        private(set) var routing: [SubscriptionEntry] = []
        private var nextSubscriptionID: UInt64 = 0
        /// Gets messages no subscription of this process matches (a persistent session's backlog, delivered
        /// right after reconnecting, before the subscriptions are renewed).
        var sessionReceiver: (@Sendable (MQTTMessage) -> Void)?
        private(set) var observers: [UInt64: Observer] = [:]
        private var nextObserverID: UInt64 = 0

        init(clientID: String) {
            self.clientID = clientID
        }

        /// The state as the public API reports it.
        var connectionState: MQTTConnectionState {
            switch state {
            case .idle: .idle
            case .connecting: .connecting
            case .connected(let sessionPresent): .connected(sessionPresent: sessionPresent)
            case .reconnecting(let reconnecting):
                .reconnecting(attempt: reconnecting.attempt, lastError: reconnecting.lastError)
            case .stopping(let stopping): stopping.lastReported
            case .closed(let error): .closed(error)
            }
        }

        var isClosed: Bool {
            if case .closed = state { return true }
            return false
        }

        // MARK: Actions

        /// A new connection state and the observers to tell, after the lock is released.
        struct StateChange: Sendable {
            let state: MQTTConnectionState
            let observers: [Observer]

            func deliver() {
                for observer in observers { observer.yield(state) }
            }
        }

        /// Everything the close leaves to fail or finish.
        struct Closing: Sendable {
            /// What `.closed` reports: `nil` after `disconnect()`.
            let reason: MQTTError?
            /// What waiters fail with: the reason, or `.shutDown`.
            let error: MQTTError
            let connectWaiters: [ConnectWaiter]
            let publishCompletions: [PublishCompletion]
            let subscribeWaiters: [SubscribeWaiter]
            let subscriptions: [SubscriptionEntry]
            let observers: [Observer]
            let exitWaiters: [ExitWaiter]

            /// Fails every waiter, finishes every stream, then lets `disconnect()` return.
            func complete() {
                for waiter in connectWaiters { waiter.resume(throwing: error) }
                for completion in publishCompletions { completion.complete(.failure(error)) }
                for waiter in subscribeWaiters { waiter.resume(throwing: error) }
                for subscription in subscriptions { subscription.continuation.finish() }
                for observer in observers {
                    observer.yield(.closed(reason))
                    observer.finish()
                }
                for waiter in exitWaiters { waiter.resume() }
            }
        }

        enum ConnectAction: Sendable {
            /// Already connected.
            case resume(ConnectWaiter)
            /// Closed, or closing.
            case fail(ConnectWaiter, MQTTError)
            /// The client was idle: report `.connecting`, then start the network thread, which resumes the waiter.
            case launchThread(StateChange)
            /// The network thread runs and resumes the waiter when the broker accepts.
            case none
        }

        enum StartAction: Sendable {
            /// Report `.connecting`, then start the network thread.
            case launchThread(StateChange)
            /// Already started, or closed.
            case none
        }

        enum DisconnectAction: Sendable {
            /// No network thread ever ran: fail and finish everything now, the exit waiter included.
            case close(Closing)
            /// Send DISCONNECT and cut the backoff short; the thread's exit resumes the waiter.
            case stopNetworkThread
            /// Already stopping: the waiter is resumed with the first one.
            case none
            /// Already closed.
            case resume(ExitWaiter)
        }

        enum NetworkLoopAction: Sendable {
            /// Keep the connection going.
            case serve
            /// Flush what is queued (the DISCONNECT) and leave the loop.
            case stop
        }

        enum ConnectionAcceptedAction: Sendable {
            /// Send SUBSCRIBE for `resubscribe` (the broker did not keep them), report the change, then resume
            /// the waiters.
            case connected(waiters: [ConnectWaiter], resubscribe: [SubscriptionEntry], change: StateChange)
            /// The client is stopping or closed: nothing to do.
            case none
        }

        enum ConnectionFailedAction: Sendable {
            /// Fail `unacknowledgedSubscribes` (their SUBSCRIBE went down with the connection: libmosquitto does not
            /// send it again, so no SUBACK will ever come), report the change, wait the jittered backoff for
            /// `backoffAttempt` (0-based, as ``MQTTClientConfiguration/Reconnect`` counts), then try again.
            case backOff(backoffAttempt: Int, change: StateChange, unacknowledgedSubscribes: [SubscribeWaiter])
            /// Leave the loop; ``networkLoopExited()`` closes the client.
            case exitLoop
        }

        enum PublishRegistration: Sendable {
            /// The completion waits for the acknowledgement.
            case registered
            /// The acknowledgement arrived first, with this reason code.
            case acknowledged(reasonCode: Int32)
            /// The client closed meanwhile and has already failed its waiters; complete this one with `.shutDown`.
            case closed
        }

        enum SubscribeRegistration: Sendable {
            case registered
            /// The SUBACK arrived first, with these reason codes.
            case acknowledged([Int32])
            case closed
        }

        // MARK: Connection

        /// `connect()`: the first call on an idle client makes the first connection strict.
        mutating func connect(waiter: ConnectWaiter) -> ConnectAction {
            switch state {
            case .idle:
                state = .connecting(Connecting(strict: true, waiters: [waiter]))
                return .launchThread(change())
            case .connecting(var connecting):
                connecting.waiters.append(waiter)
                state = .connecting(connecting)
                return .none
            case .reconnecting(var reconnecting):
                reconnecting.waiters.append(waiter)
                state = .reconnecting(reconnecting)
                return .none
            case .connected:
                return .resume(waiter)
            case .stopping(let stopping):
                return .fail(waiter, stopping.reason ?? MQTTError(.shutDown, "client \(clientID) is disconnecting"))
            case .closed(let error):
                return .fail(waiter, error ?? MQTTError(.shutDown, "client \(clientID) is closed"))
            }
        }

        /// `start()`: connect in the background, retrying every failure.
        mutating func start() -> StartAction {
            guard case .idle = state else { return .none }
            state = .connecting(Connecting(strict: false, waiters: []))
            return .launchThread(change())
        }

        /// `disconnect()`: `waiter` is resumed once the network thread has exited and everything has failed.
        mutating func disconnect(waiter: ExitWaiter) -> DisconnectAction {
            switch state {
            case .idle:
                return .close(close(reason: nil, connectWaiters: [], exitWaiters: [waiter]))
            case .connecting(let connecting):
                state = .stopping(
                    Stopping(lastReported: .connecting, connectWaiters: connecting.waiters, exitWaiters: [waiter]))
                return .stopNetworkThread
            case .connected:
                state = .stopping(Stopping(lastReported: connectionState, connectWaiters: [], exitWaiters: [waiter]))
                return .stopNetworkThread
            case .reconnecting(let reconnecting):
                state = .stopping(
                    Stopping(
                        lastReported: connectionState, connectWaiters: reconnecting.waiters, exitWaiters: [waiter]))
                return .stopNetworkThread
            case .stopping(var stopping):
                stopping.exitWaiters.append(waiter)
                state = .stopping(stopping)
                return .none
            case .closed:
                return .resume(waiter)
            }
        }

        /// Asked by the network thread before each trip through the packet loop.
        func nextNetworkLoopAction() -> NetworkLoopAction {
            switch state {
            case .connecting, .connected, .reconnecting: .serve
            case .idle, .stopping, .closed: .stop
            }
        }

        /// The broker refused the connection; the failure reported next carries this reason.
        mutating func connectionRefused(_ refusal: MQTTError) {
            switch state {
            case .connecting(var connecting):
                connecting.refusal = refusal
                state = .connecting(connecting)
            case .reconnecting(var reconnecting):
                reconnecting.refusal = refusal
                state = .reconnecting(reconnecting)
            case .idle, .connected, .stopping, .closed:
                break
            }
        }

        /// The broker accepted the connection.
        mutating func connectionAccepted(sessionPresent: Bool) -> ConnectionAcceptedAction {
            let waiters: [ConnectWaiter]
            switch state {
            case .connecting(let connecting): waiters = connecting.waiters
            case .reconnecting(let reconnecting): waiters = reconnecting.waiters
            case .connected: waiters = []
            case .idle, .stopping, .closed: return .none
            }
            state = .connected(sessionPresent: sessionPresent)
            var filters = Set<String>()
            let resubscribe = subscriptions.values.filter { entry in
                (!sessionPresent || !entry.acknowledged) && filters.insert(entry.filter).inserted
            }
            return .connected(waiters: waiters, resubscribe: resubscribe, change: change())
        }

        /// An attempt to connect failed or the connection was lost; `error` says how, unless the broker's refusal
        /// said more.
        mutating func connectionFailed(_ error: MQTTError) -> ConnectionFailedAction {
            switch state {
            case .connecting(let connecting):
                let error = connecting.refusal ?? error
                guard !connecting.strict else {
                    state = .stopping(
                        Stopping(
                            lastReported: .connecting, reason: error, connectWaiters: connecting.waiters,
                            exitWaiters: []))
                    return .exitLoop
                }
                return reconnect(attempt: 1, after: error, waiters: connecting.waiters)
            case .connected:
                let lost = Array(subscribeWaiters.values)
                subscribeWaiters = [:]
                earlySubscribeResults = [:]
                guard case .backOff(let attempt, let change, _) = reconnect(attempt: 1, after: error, waiters: [])
                else { return .exitLoop }
                return .backOff(backoffAttempt: attempt, change: change, unacknowledgedSubscribes: lost)
            case .reconnecting(let reconnecting):
                return reconnect(
                    attempt: reconnecting.attempt + 1, after: reconnecting.refusal ?? error,
                    waiters: reconnecting.waiters)
            case .idle, .stopping, .closed:
                return .exitLoop
            }
        }

        private mutating func reconnect(attempt: Int, after error: MQTTError, waiters: [ConnectWaiter])
            -> ConnectionFailedAction
        {
            state = .reconnecting(Reconnecting(attempt: attempt, lastError: error, waiters: waiters))
            return .backOff(backoffAttempt: attempt - 1, change: change(), unacknowledgedSubscribes: [])
        }

        /// The network thread has left its loop: the client is closed.
        mutating func networkLoopExited() -> Closing {
            switch state {
            case .stopping(let stopping):
                return close(
                    reason: stopping.reason, connectWaiters: stopping.connectWaiters,
                    exitWaiters: stopping.exitWaiters)
            case .connecting(let connecting):
                return close(reason: nil, connectWaiters: connecting.waiters, exitWaiters: [])
            case .reconnecting(let reconnecting):
                return close(reason: nil, connectWaiters: reconnecting.waiters, exitWaiters: [])
            case .idle, .connected:
                return close(reason: nil, connectWaiters: [], exitWaiters: [])
            case .closed(let reason):
                return close(reason: reason, connectWaiters: [], exitWaiters: [])
            }
        }

        private mutating func close(reason: MQTTError?, connectWaiters: [ConnectWaiter], exitWaiters: [ExitWaiter])
            -> Closing
        {
            state = .closed(reason)
            defer {
                publishWaiters = [:]
                earlyPublishResults = [:]
                subscribeWaiters = [:]
                earlySubscribeResults = [:]
                subscriptions = [:]
                observers = [:]
            }
            return Closing(
                reason: reason, error: reason ?? MQTTError(.shutDown, "client \(clientID) disconnected"),
                connectWaiters: connectWaiters, publishCompletions: Array(publishWaiters.values),
                subscribeWaiters: Array(subscribeWaiters.values), subscriptions: Array(subscriptions.values),
                observers: Array(observers.values), exitWaiters: exitWaiters)
        }

        private func change() -> StateChange {
            StateChange(state: connectionState, observers: Array(observers.values))
        }

        // MARK: Observers

        /// Adds an observer of later changes; `nil` when the client is closed and there will be none.
        mutating func addObserver(_ observer: Observer) -> UInt64? {
            guard !isClosed else { return nil }
            nextObserverID += 1
            observers[nextObserverID] = observer
            return nextObserverID
        }

        mutating func removeObserver(_ identifier: UInt64) {
            observers.removeValue(forKey: identifier)
        }

        // MARK: Publishing

        /// Before `mosquitto_publish_v5`; a `tracked` publish must then call ``registerPublish(messageID:completion:)``
        /// or ``abandonPublish()``.
        ///
        /// - Throws: `.shutDown` when the client is closed.
        mutating func beginPublish(to topic: String, tracked: Bool) throws(MQTTError) {
            if isClosed { throw MQTTError(.shutDown, "client \(clientID) is closed; cannot publish to \(topic)") }
            if tracked { registeringPublishes += 1 }
        }

        /// A tracked publish that libmosquitto did not take.
        mutating func abandonPublish() {
            finishRegistration()
        }

        /// A tracked publish that libmosquitto took as `messageID`.
        mutating func registerPublish(messageID: Int32, completion: PublishCompletion) -> PublishRegistration {
            defer { finishRegistration() }
            if let reason = earlyPublishResults.removeValue(forKey: messageID) {
                return .acknowledged(reasonCode: reason)
            }
            // A client that closed after `beginPublish` has already failed its waiters; do not add one.
            if isClosed { return .closed }
            publishWaiters[messageID] = completion
            return .registered
        }

        /// Ends one registration; with none left, unclaimed early results belong to nobody.
        private mutating func finishRegistration() {
            registeringPublishes -= 1
            if registeringPublishes == 0 && !earlyPublishResults.isEmpty {
                earlyPublishResults.removeAll(keepingCapacity: true)
            }
        }

        /// PUBACK, PUBCOMP, or a QoS 0 message written: who to tell, if anyone.
        mutating func publishAcknowledged(messageID: Int32, reasonCode: Int32) -> PublishCompletion? {
            if let completion = publishWaiters.removeValue(forKey: messageID) { return completion }
            // Nobody registered: either a publish without completion (drop it) or one whose registration is
            // still in progress (keep it for that caller).
            if registeringPublishes > 0 { earlyPublishResults[messageID] = reasonCode }
            return nil
        }

        // MARK: Subscribing

        /// Registers a local subscription before SUBSCRIBE goes out, so retained messages are not missed.
        ///
        /// - Throws: `.shutDown` when the client is closed.
        mutating func addSubscription(_ entry: SubscriptionEntry) throws(MQTTError) -> UInt64 {
            if isClosed {
                throw MQTTError(.shutDown, "client \(clientID) is closed; cannot subscribe to \(entry.filter)")
            }
            nextSubscriptionID += 1
            subscriptions[nextSubscriptionID] = entry
            return nextSubscriptionID
        }

        /// The broker granted the subscription; a reconnect that lost the session sends it again.
        mutating func subscriptionGranted(_ identifier: UInt64) {
            subscriptions[identifier]?.acknowledged = true
        }

        /// Removes a local subscription; `stillUsed` says whether another one keeps its filter at the broker.
        mutating func removeSubscription(_ identifier: UInt64) -> (entry: SubscriptionEntry, stillUsed: Bool)? {
            guard let entry = subscriptions.removeValue(forKey: identifier) else { return nil }
            return (entry, subscriptions.values.contains { $0.filter == entry.filter })
        }

        /// A SUBSCRIBE that libmosquitto took as `messageID`.
        mutating func registerSubscribe(messageID: Int32, waiter: SubscribeWaiter) -> SubscribeRegistration {
            if let codes = earlySubscribeResults.removeValue(forKey: messageID) { return .acknowledged(codes) }
            // A client that closed meanwhile has already failed its waiters; do not add one.
            if isClosed { return .closed }
            subscribeWaiters[messageID] = waiter
            return .registered
        }

        /// A SUBACK: who to tell, if anyone.
        mutating func subscribeAcknowledged(messageID: Int32, granted: [Int32]) -> SubscribeWaiter? {
            if let waiter = subscribeWaiters.removeValue(forKey: messageID) { return waiter }
            // Resubscriptions after a reconnect have no waiter; only keep results someone may ask for.
            if subscribeWaiters.isEmpty && earlySubscribeResults.count > 64 {
                earlySubscribeResults.removeAll()
            }
            earlySubscribeResults[messageID] = granted
            return nil
        }
    }
}
