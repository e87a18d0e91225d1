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
    let state: LockedState<StateMachine>
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
        state = LockedState(StateMachine(clientID: configuration.clientID))
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
        state.withLock { $0.connectionState }
    }

    /// The connection state now, followed by every change, until the client closes.
    public func connectionStates() -> AsyncStream<MQTTConnectionState> {
        let (stream, continuation) = AsyncStream<MQTTConnectionState>.makeStream(bufferingPolicy: .bufferingNewest(32))
        let id = state.withLock { machine -> UInt64? in
            // Yielded under the lock, so a change reported by another thread cannot overtake the current state.
            continuation.yield(machine.connectionState)
            return machine.addObserver(continuation)
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { $0.removeObserver(id) }
        }
        return stream
    }

    /// Connects and waits for the broker's CONNACK; afterwards the client reconnects by itself.
    ///
    /// - Throws: ``MQTTError`` saying why the first connection failed: `.badCredentials`, `.notAuthorized`,
    ///   `.tlsFailure`, `.unreachable` or `.connectionRefused`. The client is then closed.
    public func connect() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            switch state.withLock({ $0.connect(waiter: continuation) }) {
            case .resume(let waiter): waiter.resume()
            case .fail(let waiter, let error): waiter.resume(throwing: error)
            case .launchThread(let change): launchNetworkThread(announcing: change)
            case .none: break
            }
        }
    }

    /// Starts connecting in the background and returns at once; failed attempts, the first included, are
    /// retried with backoff. Use it where the broker may be down when the process starts.
    public func start() {
        if case .launchThread(let change) = state.withLock({ $0.start() }) {
            launchNetworkThread(announcing: change)
        }
    }

    private func launchNetworkThread(announcing change: StateMachine.StateChange) {
        // Reported before the thread starts, so it reaches observers before anything the thread reports.
        change.deliver()
        BackgroundThread.start(name: "mqtt-\(configuration.clientID)") { [self] in
            runNetworkLoop()
        }
    }

    /// Sends DISCONNECT (so the broker discards the last will), stops the network thread and fails whatever
    /// still waits. Idempotent.
    public func disconnect() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            switch state.withLock({ $0.disconnect(waiter: continuation) }) {
            case .close(let closing): closing.complete()
            case .stopNetworkThread:
                mosquitto_disconnect_v5(handle.pointer, 0, nil)
                wakeup.signal()
            case .resume(let waiter): waiter.resume()
            case .none: break
            }
        }
    }

    /// The network thread: connect, run the packet loop, back off and reconnect, until the state machine says
    /// stop. Whether a socket is open and which call opens it are libmosquitto's business, kept here; where the
    /// connection stands is the state machine's.
    private func runNetworkLoop() {
        let mosq = handle.pointer
        var generator = SystemRandomNumberGenerator()
        var socketOpen = false
        var firstAttempt = true
        while true {
            if case .stop = state.withLock({ $0.nextNetworkLoopAction() }) {
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
                let rc = firstAttempt ? connectFirstTime() : mosquitto_reconnect(mosq)
                firstAttempt = false
                if let error = MQTTError.library(rc, "connecting to \(configuration.brokerDescription)") {
                    guard backOff(after: error, using: &generator) else { break }
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
                let error =
                    MQTTError.library(rc, "connection to \(configuration.brokerDescription)")
                    ?? MQTTError(.notConnected, "connection to \(configuration.brokerDescription) lost")
                guard backOff(after: error, using: &generator) else { break }
            }
        }
        deliveries.deliver()
        state.withLock { $0.networkLoopExited() }.complete()
    }

    /// Reports a failed attempt or a lost connection and waits out the backoff; `false` when the loop must end
    /// instead (the client is stopping, or its strict first connection failed).
    private func backOff<G: RandomNumberGenerator>(after error: MQTTError, using generator: inout G) -> Bool {
        switch state.withLock({ $0.connectionFailed(error) }) {
        case .exitLoop:
            return false
        case .backOff(let backoffAttempt, let change, let unacknowledgedSubscribes):
            for waiter in unacknowledgedSubscribes {
                waiter.resume(
                    throwing: MQTTError(.notConnected, "connection lost before the broker acknowledged a subscription"))
            }
            change.deliver()
            wakeup.wait(
                milliseconds: configuration.reconnect.delayMilliseconds(attempt: backoffAttempt, using: &generator))
            return true
        }
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
        try state.withLock { try $0.beginPublish(to: message.topic, tracked: tracked) }
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
            if tracked { state.withLock { $0.abandonPublish() } }
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
        if let error = MQTTError.library(outcome, "publishing to \(message.topic)") {
            state.withLock { $0.abandonPublish() }
            throw error
        }
        // The acknowledgement may already have arrived on the network thread; while a registration is in
        // progress the state machine keeps it for us.
        switch state.withLock({ $0.registerPublish(messageID: messageID, completion: completion) }) {
        case .registered:
            break
        case .acknowledged(let reasonCode):
            completion.complete(.success(MQTTPublishResult(messageID: messageID, reasonCode: reasonCode)))
        case .closed:
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
        let identifier = try state.withLock { try $0.addSubscription(entry) }
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
        state.withLock { $0.subscriptionGranted(identifier) }
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
            switch state.withLock({ $0.registerSubscribe(messageID: messageID, waiter: continuation) }) {
            case .registered: break
            case .acknowledged(let codes): continuation.resume(returning: codes)
            case .closed:
                continuation.resume(throwing: MQTTError(.shutDown, "client closed before SUBACK for \(filter)"))
            }
        }
    }

    func removeSubscription(_ identifier: UInt64, unsubscribeFromBroker: Bool = true) {
        let removed = state.withLock { $0.removeSubscription(identifier) }
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
            state.withLock { $0.connectionRefused(error) }
            return
        }
        let action = state.withLock { $0.connectionAccepted(sessionPresent: flags & 1 == 1) }
        guard case .connected(let waiters, let resubscribe, let change) = action else { return }
        for entry in resubscribe {
            mosquitto_subscribe_v5(handle.pointer, nil, entry.filter, entry.qos.rawValue, entry.options, nil)
        }
        change.deliver()
        for waiter in waiters { waiter.resume() }
    }

    func handlePublished(messageID: Int32, reason: Int32) {
        let completion = state.withLock { $0.publishAcknowledged(messageID: messageID, reasonCode: reason) }
        completion?.complete(.success(MQTTPublishResult(messageID: messageID, reasonCode: reason)))
    }

    func handleSubscribed(messageID: Int32, granted: [Int32]) {
        let waiter = state.withLock { $0.subscribeAcknowledged(messageID: messageID, granted: granted) }
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
