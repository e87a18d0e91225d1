import CMosquitto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// An MQTT client over libmosquitto with a Swift concurrency API.
///
/// The client owns one network thread that runs libmosquitto's packet loop, reconnects with jittered
/// exponential backoff after a lost connection, and resubscribes when the broker did not keep the session.
/// libmosquitto's own `mosquitto_loop_start` thread is not used because its reconnect delay is whole
/// seconds without jitter: a fleet that loses its broker would come back in lock-step.
///
/// QoS 1/2 publishes made while the connection is down are queued inside libmosquitto, sent after the
/// reconnect and completed by their acknowledgement then; QoS 0 publishes fail with
/// ``MQTTError/Code-swift.enum/notConnected``. Queued messages live as long as this client: when it closes,
/// their completions fail with `.shutDown` (the outbox keeps them for the next client).
///
/// - Important: Call ``disconnect()`` when done; the network thread keeps the client alive until then.
public final class MQTTClient: Sendable {
    /// The configuration the client was made with.
    public let configuration: MQTTClientConfiguration

    let handle: MosquittoHandle
    let state: LockedState<ClientState>
    let wakeup: Wakeup
    let deliveries = PendingDeliveries()

    /// Creates a client; nothing touches the network until ``connect()`` or ``start()``.
    ///
    /// - Throws: ``MQTTError`` when libmosquitto rejects the configuration (bad TLS files, will topic).
    public init(configuration: MQTTClientConfiguration) throws {
        LibraryInitialization.ensure()
        self.configuration = configuration
        guard let pointer = mosquitto_new(configuration.clientID, configuration.cleanStart, nil) else {
            throw MQTTError(.library, "mosquitto_new failed for client id \(configuration.clientID)")
        }
        handle = MosquittoHandle(pointer)
        state = LockedState(ClientState())
        wakeup = Wakeup()
        try configureHandle()
    }

    deinit {
        // The log callback may run on any thread; none may reach a client being torn down.
        mosquitto_log_callback_set(handle.pointer, nil)
        mosquitto_destroy(handle.pointer)
    }

    private func configureHandle() throws {
        let mosq = handle.pointer
        let config = configuration
        try check(
            mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, config.protocolVersion.libraryValue), "protocol")
        try check(mosquitto_threaded_set(mosq, true), "threaded mode")
        try check(
            mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, Int32(clamping: config.maximumInflightMessages)),
            "send maximum")
        if config.protocolVersion == .v5 {
            try check(
                mosquitto_int_option(mosq, MOSQ_OPT_RECEIVE_MAXIMUM, Int32(min(65_535, max(1, config.receiveMaximum)))),
                "receive maximum")
        }
        if config.tcpNoDelay {
            try check(mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1), "TCP_NODELAY")
        }
        if let username = config.username {
            try check(mosquitto_username_pw_set(mosq, username, config.password), "username")
        }
        if let tls = config.tls {
            try check(
                mosquitto_tls_set(mosq, tls.caFile, nil, tls.certificateFile, tls.keyFile, nil),
                "TLS files (CA \(tls.caFile))")
            try check(mosquitto_tls_insecure_set(mosq, false), "TLS hostname verification")
        }
        if let will = config.lastWill {
            var properties = LibraryPropertyList()
            if config.protocolVersion == .v5 {
                properties = try LibraryPropertyList(
                    publish: will.message.properties, willDelaySeconds: will.delaySeconds)
            }
            let rc = will.message.payload.withUnsafeBytes { bytes in
                mosquitto_will_set_v5(
                    mosq, will.message.topic, Int32(bytes.count), bytes.baseAddress, will.message.qos.rawValue,
                    will.message.retain, properties.pointer)
            }
            // On success libmosquitto owns the property list; on failure it is still ours.
            if rc != MOSQ_ERR_SUCCESS.rawValue { properties.free() }
            try check(rc, "last will on \(will.message.topic)")
        }
        let context = Unmanaged.passUnretained(self).toOpaque()
        mosquitto_user_data_set(mosq, context)
        mosquitto_connect_v5_callback_set(mosq, mqttOnConnect)
        mosquitto_disconnect_v5_callback_set(mosq, mqttOnDisconnect)
        mosquitto_publish_v5_callback_set(mosq, mqttOnPublish)
        mosquitto_message_v5_callback_set(mosq, mqttOnMessage)
        mosquitto_subscribe_v5_callback_set(mosq, mqttOnSubscribe)
        if config.libraryLog != nil {
            mosquitto_log_callback_set(mosq, mqttOnLog)
        }
    }

    private func check(_ rc: Int32, _ what: String) throws {
        if let error = MQTTError.library(rc, "configuring \(what) for \(configuration.brokerDescription)") {
            throw error
        }
    }

    // MARK: Connection

    /// The connection state now.
    public var connectionState: MQTTConnectionState {
        state.withLock { $0.connection }
    }

    /// The connection state now, followed by every change, until the client closes.
    public func connectionStates() -> AsyncStream<MQTTConnectionState> {
        let (stream, continuation) = AsyncStream<MQTTConnectionState>.makeStream(bufferingPolicy: .bufferingNewest(32))
        let id = state.withLock { state -> UInt64? in
            continuation.yield(state.connection)
            if case .closed = state.connection { return nil }
            state.nextObserverID += 1
            state.stateObservers[state.nextObserverID] = continuation
            return state.nextObserverID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.stateObservers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Connects and waits for the broker's CONNACK; afterwards the client reconnects by itself.
    ///
    /// - Throws: ``MQTTError`` saying why the first connection failed: `.badCredentials`, `.notAuthorized`,
    ///   `.tlsFailure`, `.unreachable` or `.connectionRefused`. The client is then closed.
    public func connect() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = state.withLock { state -> Result<Bool, MQTTError> in
                switch state.connection {
                case .connected: return .success(false)
                case .closed(let error):
                    return .failure(error ?? MQTTError(.shutDown, "client \(configuration.clientID) is closed"))
                default:
                    state.connectWaiters.append(continuation)
                    if state.started { return .success(true) }
                    state.started = true
                    state.firstConnectionIsStrict = true
                    return .success(true)
                }
            }
            switch outcome {
            case .success(false): continuation.resume()
            case .success(true): startThreadIfNeeded()
            case .failure(let error): continuation.resume(throwing: error)
            }
        }
    }

    /// Starts connecting in the background and returns at once; failed attempts, the first included, are
    /// retried with backoff. Use it where the broker may be down when the process starts.
    public func start() {
        let begin = state.withLock { state -> Bool in
            guard !state.started else { return false }
            state.started = true
            return true
        }
        if begin { startThreadIfNeeded() }
    }

    private func startThreadIfNeeded() {
        let launch = state.withLock { state -> Bool in
            guard !state.threadLaunched else { return false }
            state.threadLaunched = true
            state.connection = .connecting
            return true
        }
        guard launch else { return }
        notifyObservers()
        BackgroundThread.start(name: "mqtt-\(configuration.clientID)") { [self] in
            runNetworkLoop()
        }
    }

    /// Sends DISCONNECT (so the broker discards the last will), stops the network thread and fails whatever
    /// still waits. Idempotent.
    public func disconnect() async {
        let running = state.withLock { state -> Bool in
            state.stopRequested = true
            return state.threadLaunched && !state.threadExited
        }
        guard running else {
            finishClosed(error: nil)
            return
        }
        mosquitto_disconnect_v5(handle.pointer, 0, nil)
        wakeup.signal()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = state.withLock { state -> Bool in
                if state.threadExited { return true }
                state.exitWaiters.append(continuation)
                return false
            }
            if exited { continuation.resume() }
        }
    }

    /// The network thread: connect, run the packet loop, back off and reconnect, until asked to stop.
    private func runNetworkLoop() {
        let mosq = handle.pointer
        var generator = SystemRandomNumberGenerator()
        var socketOpen = false
        var firstAttempt = true
        var attempt = 0
        var closingError: MQTTError?
        while true {
            if state.withLock({ $0.stopRequested }) {
                if socketOpen {
                    // Let the queued DISCONNECT reach the wire before the socket closes.
                    for _ in 0..<20
                    where mosquitto_loop(mosq, 50, 1) == MOSQ_ERR_SUCCESS.rawValue
                        && mosquitto_socket(mosq) >= 0
                    {}
                }
                break
            }
            if !socketOpen {
                let rc: Int32
                if firstAttempt {
                    rc = connectFirstTime()
                    firstAttempt = false
                } else {
                    rc = mosquitto_reconnect(mosq)
                }
                if let error = MQTTError.library(rc, "connecting to \(configuration.brokerDescription)") {
                    if let fatal = connectionFailed(error, attempt: attempt) {
                        closingError = fatal
                        break
                    }
                    backOff(attempt: attempt, using: &generator)
                    attempt += 1
                    continue
                }
                socketOpen = true
            }
            var rc = mosquitto_loop(mosq, 1000, 1)
            // What reading queued (PUBACKs for received messages, publishes released by acknowledgements) goes
            // out now. `mosquitto_loop` picked the descriptors to wait on before it read, so it would send
            // these only after another trip through `pselect`, while the broker waits for them.
            if rc == MOSQ_ERR_SUCCESS.rawValue && mosquitto_want_write(mosq) {
                rc = mosquitto_loop_write(mosq, 1)
            }
            // Messages wait while more bytes are already on the socket, so a burst wakes each consumer once
            // instead of once per message; the next `mosquitto_loop` does not block while they wait.
            if !deliveries.isEmpty
                && (deliveries.count >= PendingDeliveries.batchLimit || rc != MOSQ_ERR_SUCCESS.rawValue
                    || !Self.hasBytesToRead(mosquitto_socket(mosq)))
            {
                deliveries.deliver()
            }
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                socketOpen = false
                if state.withLock({ $0.stopRequested }) { break }
                let refusal = state.withLock { state -> MQTTError? in
                    defer { state.lastRefusal = nil }
                    return state.lastRefusal
                }
                if state.withLock({ $0.connection.isConnected }) { attempt = 0 }
                let error =
                    refusal ?? MQTTError.library(rc, "connection to \(configuration.brokerDescription)")
                    ?? MQTTError(.notConnected, "connection to \(configuration.brokerDescription) lost")
                if let fatal = connectionFailed(error, attempt: attempt) {
                    closingError = fatal
                    break
                }
                backOff(attempt: attempt, using: &generator)
                attempt += 1
            }
        }
        deliveries.deliver()
        finishClosed(error: closingError)
    }

    private static func hasBytesToRead(_ descriptor: Int32) -> Bool {
        guard descriptor >= 0 else { return false }
        var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&request, 1, 0) > 0
    }

    private func connectFirstTime() -> Int32 {
        let mosq = handle.pointer
        var properties = LibraryPropertyList()
        if configuration.protocolVersion == .v5 {
            do {
                properties = try LibraryPropertyList(sessionExpirySeconds: configuration.sessionExpirySeconds)
            } catch {
                return MOSQ_ERR_INVAL.rawValue
            }
        }
        defer { properties.free() }
        return mosquitto_connect_bind_v5(
            mosq, configuration.host, Int32(configuration.port), Int32(configuration.keepAliveSeconds), nil,
            properties.pointer)
    }

    /// Records a failed attempt; returns the error to close with when the client must give up.
    private func connectionFailed(_ error: MQTTError, attempt: Int) -> MQTTError? {
        let giveUp = state.withLock { state -> Bool in
            if state.firstConnectionIsStrict && !state.everConnected { return true }
            state.connection = .reconnecting(attempt: attempt + 1, lastError: error)
            return false
        }
        if giveUp { return error }
        notifyObservers()
        return nil
    }

    private func backOff<G: RandomNumberGenerator>(attempt: Int, using generator: inout G) {
        let milliseconds = configuration.reconnect.delayMilliseconds(attempt: attempt, using: &generator)
        wakeup.wait(milliseconds: milliseconds)
    }

    /// Marks the client closed, fails every waiter and finishes every stream.
    private func finishClosed(error: MQTTError?) {
        let closed = error ?? MQTTError(.shutDown, "client \(configuration.clientID) disconnected")
        let taken = state.withLock { state -> ClientState.Drained in
            state.threadExited = true
            state.connection = .closed(error)
            state.isClosed = true
            return state.drain()
        }
        for waiter in taken.connectWaiters { waiter.resume(throwing: closed) }
        for completion in taken.publishCompletions { completion.complete(.failure(closed)) }
        for waiter in taken.subscribeWaiters { waiter.resume(throwing: closed) }
        for subscription in taken.subscriptions { subscription.continuation.finish() }
        for observer in taken.stateObservers {
            observer.yield(.closed(error))
            observer.finish()
        }
        for waiter in taken.exitWaiters { waiter.resume() }
    }

    func notifyObservers() {
        let (observers, current) = state.withLock { state in (Array(state.stateObservers.values), state.connection) }
        for observer in observers { observer.yield(current) }
    }

    // MARK: Publishing

    /// Publishes a message and waits until the broker has it: PUBACK for QoS 1, PUBCOMP for QoS 2, written to
    /// the socket for QoS 0.
    ///
    /// - Returns: the broker's reason code; check ``MQTTPublishResult/isAccepted`` (an ACL denial under
    ///   MQTT v5 is reason code 135).
    /// - Throws: ``MQTTError`` when the message is invalid, the client is not connected (QoS 0) or closes
    ///   before the acknowledgement.
    @discardableResult
    public func publish(_ message: MQTTMessage) async throws -> MQTTPublishResult {
        try await withCheckedThrowingContinuation { continuation in
            do {
                try publish(message, completion: .continuation(continuation))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Publishes a message without waiting; `onComplete` runs on the network thread with the broker's answer.
    ///
    /// - Returns: the packet identifier.
    /// - Important: `onComplete` must not block; it runs on the thread that serves the connection.
    @discardableResult
    public func publish(
        _ message: MQTTMessage,
        onComplete: (@Sendable (Result<MQTTPublishResult, MQTTError>) -> Void)? = nil
    ) throws -> Int32 {
        try publish(message, completion: onComplete.map(PublishCompletion.handler) ?? .ignore)
    }

    @discardableResult
    func publish(_ message: MQTTMessage, completion: PublishCompletion) throws -> Int32 {
        let tracked: Bool
        if case .ignore = completion { tracked = false } else { tracked = true }
        let closed = state.withLock { state -> Bool in
            if state.isClosed { return true }
            if tracked { state.registeringPublishes += 1 }
            return false
        }
        if closed {
            throw MQTTError(.shutDown, "client \(configuration.clientID) is closed; cannot publish to \(message.topic)")
        }
        var messageID: Int32 = 0
        let rc: Int32
        do {
            var properties = LibraryPropertyList()
            if configuration.protocolVersion == .v5 && !message.properties.isEmpty {
                properties = try LibraryPropertyList(publish: message.properties)
            }
            defer { properties.free() }
            rc = message.payload.withUnsafeBytes { bytes in
                mosquitto_publish_v5(
                    handle.pointer, &messageID, message.topic, Int32(bytes.count), bytes.baseAddress,
                    message.qos.rawValue, message.retain, properties.pointer)
            }
        } catch {
            if tracked { state.withLock { $0.finishRegistration() } }
            throw error
        }
        // A QoS 1/2 message that libmosquitto answers with MOSQ_ERR_NO_CONN is queued all the same and sent
        // after the reconnect; only its first transmission failed. Reporting that as an error would make the
        // caller publish it again, and the broker would get it twice.
        let outcome =
            rc == MOSQ_ERR_NO_CONN.rawValue && message.qos != .atMostOnce ? MOSQ_ERR_SUCCESS.rawValue : rc
        guard tracked else {
            if let error = MQTTError.library(outcome, "publishing to \(message.topic)") { throw error }
            return messageID
        }
        // The acknowledgement may already have arrived on the network thread; while a registration is in
        // progress it waits in `earlyPublishResults` for us.
        let (early, closedMeanwhile) = state.withLock { state -> (Int32?, Bool) in
            defer { state.finishRegistration() }
            guard outcome == MOSQ_ERR_SUCCESS.rawValue else { return (nil, false) }
            if let reason = state.earlyPublishResults.removeValue(forKey: messageID) { return (reason, false) }
            // A client that closed after the call above has already failed its waiters; do not add one.
            if state.isClosed { return (nil, true) }
            state.publishWaiters[messageID] = completion
            return (nil, false)
        }
        if let error = MQTTError.library(outcome, "publishing to \(message.topic)") { throw error }
        if let early {
            completion.complete(.success(MQTTPublishResult(messageID: messageID, reasonCode: early)))
        } else if closedMeanwhile {
            completion.complete(
                .failure(
                    MQTTError(
                        .shutDown, "client \(configuration.clientID) closed before \(message.topic) was acknowledged")))
        }
        return messageID
    }

    // MARK: Subscribing

    /// Subscribes to a topic filter and returns its messages as an `AsyncSequence`.
    ///
    /// Shared subscriptions work as filters: `$share/group/tandem/v1/+/+/escalations`.
    /// The subscription is registered before SUBSCRIBE is sent, so retained messages are not missed, and it
    /// is sent again after a reconnect when the broker did not keep the session.
    ///
    /// - Parameters:
    ///   - filter: the topic filter.
    ///   - qos: the maximum QoS to receive with.
    ///   - noLocal: MQTT v5: do not receive this client's own publishes.
    ///   - bufferCapacity: messages buffered for a slow consumer.
    ///   - whenFull: which message is lost when the buffer is full (counted in `droppedMessageCount`).
    ///   - receiver: when given, each message is handed to it on the network thread instead of the sequence
    ///     (which then only ends when the subscription does). libmosquitto acknowledges a QoS 1/2 message
    ///     only after this returns, so a receiver that stores the message makes its receipt durable;
    ///     it must be quick and must not wait on the client.
    /// - Throws: ``MQTTError`` with `.notAuthorized` or `.rejected` when the broker refuses the filter,
    ///   `.shutDown` when the client closes first.
    public func subscribe(
        to filter: String,
        qos: MQTTQoS = .atLeastOnce,
        noLocal: Bool = false,
        bufferCapacity: Int = 4096,
        whenFull: MQTTSubscription.OverflowPolicy = .dropOldest,
        receiver: (@Sendable (MQTTMessage) -> Void)? = nil
    ) async throws -> MQTTSubscription {
        let buffering: AsyncStream<MQTTMessage>.Continuation.BufferingPolicy =
            switch whenFull {
            case .dropOldest: .bufferingNewest(max(1, bufferCapacity))
            case .dropNewest: .bufferingOldest(max(1, bufferCapacity))
            }
        let (stream, continuation) = AsyncStream<MQTTMessage>.makeStream(bufferingPolicy: buffering)
        let counter = SubscriptionCounter()
        let options = noLocal && configuration.protocolVersion == .v5 ? Int32(MQTT_SUB_OPT_NO_LOCAL.rawValue) : 0
        let entry = SubscriptionEntry(
            filter: filter, qos: qos, options: options, continuation: continuation, counter: counter, receiver: receiver
        )
        let identifier = try state.withLock { state -> UInt64 in
            if case .closed = state.connection {
                throw MQTTError(.shutDown, "client \(configuration.clientID) is closed; cannot subscribe to \(filter)")
            }
            state.nextSubscriptionID += 1
            state.subscriptions[state.nextSubscriptionID] = entry
            return state.nextSubscriptionID
        }
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.removeSubscription(identifier) }
        }
        let granted: [Int32]
        do {
            granted = try await sendSubscribe(filter: filter, qos: qos, options: options)
        } catch {
            removeSubscription(identifier, unsubscribeFromBroker: false)
            throw error
        }
        let code = granted.first ?? 128
        if code >= 128 {
            removeSubscription(identifier, unsubscribeFromBroker: false)
            let errorCode: MQTTError.Code = code == 135 ? .notAuthorized : .rejected
            throw MQTTError(errorCode, "broker refused subscription to \(filter)", reasonCode: Int(code))
        }
        state.withLock { $0.subscriptions[identifier]?.acknowledged = true }
        return MQTTSubscription(
            filter: filter, grantedQoS: MQTTQoS(rawValue: code) ?? qos, stream: stream, counter: counter,
            identifier: identifier, client: self)
    }

    private func sendSubscribe(filter: String, qos: MQTTQoS, options: Int32) async throws -> [Int32] {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[Int32], any Error>) in
            var messageID: Int32 = 0
            let rc = mosquitto_subscribe_v5(handle.pointer, &messageID, filter, qos.rawValue, options, nil)
            if let error = MQTTError.library(rc, "subscribing to \(filter)") {
                continuation.resume(throwing: error)
                return
            }
            let early = state.withLock { state -> [Int32]?? in
                if let codes = state.earlySubscribeResults.removeValue(forKey: messageID) { return codes }
                // A client that closed meanwhile has already failed its waiters; do not add one.
                if state.isClosed { return .some(nil) }
                state.subscribeWaiters[messageID] = continuation
                return nil
            }
            switch early {
            case .some(.some(let codes)): continuation.resume(returning: codes)
            case .some(.none):
                continuation.resume(throwing: MQTTError(.shutDown, "client closed before SUBACK for \(filter)"))
            case .none: break
            }
        }
    }

    func removeSubscription(_ identifier: UInt64, unsubscribeFromBroker: Bool = true) {
        let removed = state.withLock { state -> (SubscriptionEntry, Bool)? in
            guard let entry = state.subscriptions.removeValue(forKey: identifier) else { return nil }
            let stillUsed = state.subscriptions.values.contains { $0.filter == entry.filter }
            return (entry, stillUsed)
        }
        guard let (entry, stillUsed) = removed else { return }
        entry.continuation.finish()
        if unsubscribeFromBroker && !stillUsed {
            mosquitto_unsubscribe_v5(handle.pointer, nil, entry.filter, nil)
        }
    }

    // MARK: Callbacks from the network thread

    func handleConnect(reason: Int32, flags: Int32) {
        if reason != 0 {
            let error = MQTTError.connack(
                reason, version: configuration.protocolVersion, broker: configuration.brokerDescription)
            state.withLock { $0.lastRefusal = error }
            return
        }
        let sessionPresent = flags & 1 == 1
        let (waiters, resend) = state.withLock {
            state -> ([CheckedContinuation<Void, any Error>], [SubscriptionEntry]) in
            state.everConnected = true
            state.connection = .connected(sessionPresent: sessionPresent)
            let waiters = state.connectWaiters
            state.connectWaiters = []
            let resend = state.subscriptions.values.filter { !sessionPresent || !$0.acknowledged }
            return (waiters, resend)
        }
        var sent = Set<String>()
        for entry in resend where sent.insert(entry.filter).inserted {
            mosquitto_subscribe_v5(handle.pointer, nil, entry.filter, entry.qos.rawValue, entry.options, nil)
        }
        notifyObservers()
        for waiter in waiters { waiter.resume() }
    }

    func handlePublished(messageID: Int32, reason: Int32) {
        let completion = state.withLock { state -> PublishCompletion? in
            if let completion = state.publishWaiters.removeValue(forKey: messageID) { return completion }
            // Nobody registered: either a publish without completion (drop it) or one whose registration is
            // still in progress (keep it for that caller).
            if state.registeringPublishes > 0 { state.earlyPublishResults[messageID] = reason }
            return nil
        }
        completion?.complete(.success(MQTTPublishResult(messageID: messageID, reasonCode: reason)))
    }

    func handleSubscribed(messageID: Int32, granted: [Int32]) {
        let waiter = state.withLock { state -> CheckedContinuation<[Int32], any Error>? in
            if let waiter = state.subscribeWaiters.removeValue(forKey: messageID) { return waiter }
            // Resubscriptions after a reconnect have no waiter; only keep results someone may ask for.
            if state.subscribeWaiters.isEmpty && state.earlySubscribeResults.count > 64 {
                state.earlySubscribeResults.removeAll()
            }
            state.earlySubscribeResults[messageID] = granted
            return nil
        }
        waiter?.resume(returning: granted)
    }

    func handleMessage(_ raw: UnsafePointer<mosquitto_message>, properties: OpaquePointer?) {
        let topic = String(cString: raw.pointee.topic)
        let (routing, sessionReceiver) = state.withLock { ($0.routing, $0.sessionReceiver) }
        var message: MQTTMessage?
        var routed = false
        for target in routing where target.matches(topic) {
            routed = true
            if message == nil {
                let payload: [UInt8]
                if let bytes = raw.pointee.payload, raw.pointee.payloadlen > 0 {
                    payload = Array(UnsafeRawBufferPointer(start: bytes, count: Int(raw.pointee.payloadlen)))
                } else {
                    payload = []
                }
                message = MQTTMessage(
                    topic: topic, payload: payload, qos: MQTTQoS(rawValue: raw.pointee.qos) ?? .atMostOnce,
                    retain: raw.pointee.retain,
                    properties: properties == nil
                        ? MQTTPublishProperties() : LibraryPropertyList.publishProperties(from: properties))
            }
            if let message, let receiver = target.receiver {
                receiver(message)  // before libmosquitto acknowledges it: see `subscribe(…, receiver:)`
            } else if let message {
                deliveries.append(message, to: target)
            }
        }
        if !routed, let sessionReceiver {
            sessionReceiver(
                MQTTMessage(
                    topic: topic,
                    payload: raw.pointee.payload.map {
                        Array(UnsafeRawBufferPointer(start: $0, count: Int(raw.pointee.payloadlen)))
                    } ?? [],
                    qos: MQTTQoS(rawValue: raw.pointee.qos) ?? .atMostOnce, retain: raw.pointee.retain,
                    properties: properties == nil
                        ? MQTTPublishProperties() : LibraryPropertyList.publishProperties(from: properties)))
        }
    }

    /// Hands every message that matches none of this client's subscriptions to `receiver`, on the network
    /// thread, before it is acknowledged. With a persistent session (`cleanStart: false`) the broker sends
    /// the session's backlog right after the connection, before subscriptions made in this process exist:
    /// set this before ``start()`` or ``connect()`` to receive it.
    public func receiveSessionMessages(_ receiver: @escaping @Sendable (MQTTMessage) -> Void) {
        state.withLock { $0.sessionReceiver = receiver }
    }
}

// MARK: - C callbacks

private func client(from context: UnsafeMutableRawPointer?) -> MQTTClient? {
    guard let context else { return nil }
    // The network thread holds a strong reference to the client while it runs, and libmosquitto calls back
    // only from inside its packet loop on that thread, so the unretained pointer is alive here. The one
    // exception, the log callback, also runs on threads that call into libmosquitto through a method of this
    // client, which holds the client alive; `deinit` removes it before the handle goes.
    return Unmanaged<MQTTClient>.fromOpaque(context).takeUnretainedValue()
}

private func mqttOnConnect(
    _ mosq: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ reason: Int32, _ flags: Int32,
    _ properties: OpaquePointer?
) {
    client(from: context)?.handleConnect(reason: reason, flags: flags)
}

private func mqttOnDisconnect(
    _ mosq: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ reason: Int32, _ properties: OpaquePointer?
) {
    // The packet loop reports the loss too and drives the reconnect; nothing to do here.
}

private func mqttOnPublish(
    _ mosq: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ messageID: Int32, _ reason: Int32,
    _ properties: OpaquePointer?
) {
    client(from: context)?.handlePublished(messageID: messageID, reason: reason)
}

private func mqttOnMessage(
    _ mosq: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ message: UnsafePointer<mosquitto_message>?,
    _ properties: OpaquePointer?
) {
    guard let message else { return }
    client(from: context)?.handleMessage(message, properties: properties)
}

private func mqttOnLog(
    _ mosq: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ level: Int32, _ text: UnsafePointer<CChar>?
) {
    guard let text, let client = client(from: context), let log = client.configuration.libraryLog else { return }
    log(MQTTLogLevel(libraryLevel: level), String(cString: text))
}

private func mqttOnSubscribe(
    _ mosq: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ messageID: Int32, _ count: Int32,
    _ granted: UnsafePointer<Int32>?, _ properties: OpaquePointer?
) {
    let codes = granted.map { Array(UnsafeBufferPointer(start: $0, count: Int(count))) } ?? []
    client(from: context)?.handleSubscribed(messageID: messageID, granted: codes)
}
