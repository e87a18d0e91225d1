import Testing

@testable import TandemMQTT

private typealias Machine = MQTTClient.StateMachine

/// The state machine driven the way the network thread and the public API drive it, without a broker: each
/// test plays the events, carries out the returned actions as the client does, and checks the outcome
/// callers would see.
@Suite("MQTTClient's state machine, without a broker", .timeLimit(.minutes(1)))
struct ClientStateMachineTests {
    private let lost = MQTTError(.notConnected, "connection to 127.0.0.1:1883 lost")
    private let unreachable = MQTTError(.unreachable, "connecting to 127.0.0.1:1883: connection refused")
    private let refusal = MQTTError(.badCredentials, "broker refused the connection", reasonCode: 134)

    @Test("connect launches the network thread once and every connect() returns when the broker accepts")
    func connectSucceeds() async throws {
        var machine = Machine(clientID: "unit")
        let first = try await ConnectCall.make()
        let second = try await ConnectCall.make()
        let launch = try #require(machine.connect(waiter: first.waiter).launched)
        #expect(launch.state == .connecting)
        #expect(machine.connectionState == .connecting)
        #expect(machine.nextNetworkLoopAction() == .serve)
        #expect(machine.connect(waiter: second.waiter).isNone, "the thread runs already")
        #expect(machine.start().isNone, "start() after connect() launches no second thread")

        let accepted = try #require(machine.connectionAccepted(sessionPresent: true).connected)
        #expect(accepted.waiters.count == 2)
        #expect(accepted.change.state == .connected(sessionPresent: true))
        for waiter in accepted.waiters { waiter.resume() }
        try await first.task.value
        try await second.task.value
        #expect(machine.connectionState == .connected(sessionPresent: true))

        let third = try await ConnectCall.make()
        guard case .resume(let waiter) = machine.connect(waiter: third.waiter) else {
            Issue.record("connect() while connected should return at once")
            return
        }
        waiter.resume()
        try await third.task.value
    }

    @Test("a refused first connect() closes the client and throws the broker's reason, not the socket error")
    func strictRefusalCloses() async throws {
        var machine = Machine(clientID: "unit")
        let call = try await ConnectCall.make()
        _ = try #require(machine.connect(waiter: call.waiter).launched)
        machine.connectionRefused(refusal)
        #expect(machine.connectionFailed(lost).backoffAttempt == nil, "a strict first failure leaves the loop")
        #expect(machine.nextNetworkLoopAction() == .stop)
        #expect(machine.connectionState == .connecting, "not closed before the thread has exited")

        let closing = machine.networkLoopExited()
        #expect(closing.reason == refusal)
        #expect(closing.connectWaiters.count == 1)
        closing.complete()
        let error = await #expect(throws: MQTTError.self) { try await call.task.value }
        #expect(error?.code == .badCredentials)
        #expect(machine.connectionState == .closed(refusal))
    }

    @Test("after start() a refused connection backs off and retries; connect() meanwhile waits for the success")
    func lenientRefusalRetries() async throws {
        var machine = Machine(clientID: "unit")
        _ = try #require(machine.start().launched)
        let call = try await ConnectCall.make()
        #expect(machine.connect(waiter: call.waiter).isNone, "connect() after start() does not make it strict")
        machine.connectionRefused(refusal)
        let retry = machine.connectionFailed(lost)
        #expect(retry.backoffAttempt == 0)
        #expect(retry.change?.state == .reconnecting(attempt: 1, lastError: refusal))
        #expect(machine.nextNetworkLoopAction() == .serve)
        #expect(machine.connectionFailed(unreachable).backoffAttempt == 1, "the refusal belonged to one attempt")
        #expect(machine.connectionState == .reconnecting(attempt: 2, lastError: unreachable))

        let accepted = try #require(machine.connectionAccepted(sessionPresent: false).connected)
        #expect(accepted.waiters.count == 1)
        for waiter in accepted.waiters { waiter.resume() }
        try await call.task.value
    }

    @Test("each failed attempt grows the backoff; a success resets it, so the next loss starts at attempt 1")
    func backoffCountsAndResets() async throws {
        var machine = Machine(clientID: "unit")
        _ = try #require(machine.start().launched)
        _ = try #require(machine.connectionAccepted(sessionPresent: false).connected)
        var backoffs: [Int?] = []
        var attempts: [MQTTConnectionState] = []
        for _ in 0..<3 {
            backoffs.append(machine.connectionFailed(lost).backoffAttempt)
            attempts.append(machine.connectionState)
        }
        #expect(backoffs == [0, 1, 2])
        #expect(attempts == (1...3).map { .reconnecting(attempt: $0, lastError: lost) })

        _ = try #require(machine.connectionAccepted(sessionPresent: true).connected)
        #expect(machine.connectionFailed(lost).backoffAttempt == 0)
        #expect(machine.connectionState == .reconnecting(attempt: 1, lastError: lost))
    }

    @Test("disconnect() during the first connection fails connect() with shutDown once the thread has exited")
    func stopDuringConnect() async throws {
        var machine = Machine(clientID: "unit")
        let call = try await ConnectCall.make()
        let exit = try await ExitCall.make()
        _ = try #require(machine.connect(waiter: call.waiter).launched)
        #expect(machine.disconnect(waiter: exit.waiter).stopsThread)
        #expect(machine.nextNetworkLoopAction() == .stop)
        #expect(machine.connectionState == .connecting)
        #expect(machine.connectionAccepted(sessionPresent: false).isNone, "a late CONNACK changes nothing")
        #expect(machine.connectionFailed(lost).backoffAttempt == nil, "no backoff while stopping")

        let closing = machine.networkLoopExited()
        #expect(closing.reason == nil)
        #expect(closing.connectWaiters.count == 1)
        #expect(closing.exitWaiters.count == 1)
        closing.complete()
        let error = await #expect(throws: MQTTError.self) { try await call.task.value }
        #expect(error?.code == .shutDown)
        await exit.task.value
        #expect(machine.connectionState == .closed(nil))
    }

    @Test("disconnect() before start closes at once, and start() afterwards launches nothing")
    func stopWhileIdle() async throws {
        var machine = Machine(clientID: "unit")
        let exit = try await ExitCall.make()
        let closing = try #require(machine.disconnect(waiter: exit.waiter).closing)
        #expect(closing.exitWaiters.count == 1)
        closing.complete()
        await exit.task.value
        #expect(machine.connectionState == .closed(nil))
        #expect(machine.start().isNone)
        #expect(machine.nextNetworkLoopAction() == .stop)
    }

    @Test("disconnect() while waiting to reconnect stops the loop and fails the waiting connect()")
    func stopWhileReconnecting() async throws {
        var machine = Machine(clientID: "unit")
        _ = try #require(machine.start().launched)
        #expect(machine.connectionFailed(unreachable).backoffAttempt == 0)
        let call = try await ConnectCall.make()
        let exit = try await ExitCall.make()
        #expect(machine.connect(waiter: call.waiter).isNone)
        #expect(machine.disconnect(waiter: exit.waiter).stopsThread)
        #expect(machine.connectionState == .reconnecting(attempt: 1, lastError: unreachable))
        #expect(machine.nextNetworkLoopAction() == .stop, "the woken backoff ends the loop")

        let closing = machine.networkLoopExited()
        closing.complete()
        let error = await #expect(throws: MQTTError.self) { try await call.task.value }
        #expect(error?.code == .shutDown)
        await exit.task.value
        #expect(machine.connectionState == .closed(nil))
    }

    @Test("a second disconnect() waits for the same exit; one after the close returns at once and keeps its error")
    func stopTwice() async throws {
        var machine = Machine(clientID: "unit")
        _ = try #require(machine.start().launched)
        _ = try #require(machine.connectionAccepted(sessionPresent: false).connected)
        let first = try await ExitCall.make()
        let second = try await ExitCall.make()
        #expect(machine.disconnect(waiter: first.waiter).stopsThread)
        #expect(machine.disconnect(waiter: second.waiter).isNone, "DISCONNECT is sent once")
        #expect(machine.connectionState == .connected(sessionPresent: false))
        let closing = machine.networkLoopExited()
        #expect(closing.exitWaiters.count == 2)
        closing.complete()
        await first.task.value
        await second.task.value

        var refused = Machine(clientID: "unit")
        let call = try await ConnectCall.make()
        _ = try #require(refused.connect(waiter: call.waiter).launched)
        _ = refused.connectionFailed(unreachable)
        refused.networkLoopExited().complete()
        _ = await call.task.result
        let late = try await ExitCall.make()
        guard case .resume(let waiter) = refused.disconnect(waiter: late.waiter) else {
            Issue.record("disconnect() after the close should return at once")
            return
        }
        waiter.resume()
        await late.task.value
        #expect(refused.connectionState == .closed(unreachable), "the reason the client closed is kept")
    }

    @Test("after the close connect, publish and subscribe fail with shutDown, and what waited fails too")
    func operationsAfterClose() async throws {
        var machine = Machine(clientID: "unit")
        let results = Shared<[Result<MQTTPublishResult, MQTTError>]>([])
        try machine.beginPublish(to: "tandem/a", tracked: true)
        #expect(machine.registerPublish(messageID: 7, completion: handler(results)).isRegistered)
        try machine.beginPublish(to: "tandem/b", tracked: true)  // libmosquitto has it; not registered yet
        let (messages, continuation) = AsyncStream<MQTTMessage>.makeStream()
        _ = try machine.addSubscription(entry("tandem/#", continuation))

        let exit = try await ExitCall.make()
        let closing = try #require(machine.disconnect(waiter: exit.waiter).closing)
        #expect(closing.publishCompletions.count == 1)
        #expect(closing.subscriptions.count == 1)
        closing.complete()
        await exit.task.value
        #expect(results.withLock { $0.map(\.failureCode) } == [.shutDown])
        for await _ in messages { Issue.record("the subscription should be finished, empty") }
        #expect(machine.registerPublish(messageID: 8, completion: .ignore).isClosed, "a registration in flight")

        let call = try await ConnectCall.make()
        guard case .fail(let waiter, let error) = machine.connect(waiter: call.waiter) else {
            Issue.record("connect() after the close should fail at once")
            return
        }
        #expect(error.code == .shutDown)
        waiter.resume(throwing: error)
        _ = await call.task.result
        let publishError = #expect(throws: MQTTError.self) { try machine.beginPublish(to: "tandem/c", tracked: false) }
        #expect(publishError?.code == .shutDown)
        let (_, late) = AsyncStream<MQTTMessage>.makeStream()
        let subscribeError = #expect(throws: MQTTError.self) { try machine.addSubscription(entry("tandem/#", late)) }
        #expect(subscribeError?.code == .shutDown)
        let (_, observer) = AsyncStream<MQTTConnectionState>.makeStream()
        #expect(machine.addObserver(observer) == nil)
    }

    @Test("an observer gets every state change in order and its stream finishes on close; a removed one gets none")
    func observersSeeEveryChange() async throws {
        var machine = Machine(clientID: "unit")
        let (states, observer) = AsyncStream<MQTTConnectionState>.makeStream()
        let (otherStates, other) = AsyncStream<MQTTConnectionState>.makeStream()
        observer.yield(machine.connectionState)
        let observerID = machine.addObserver(observer)
        #expect(observerID != nil)
        let otherID = machine.addObserver(other)
        machine.removeObserver(try #require(otherID))
        other.finish()

        try #require(machine.start().launched).deliver()
        try #require(machine.connectionFailed(unreachable).change).deliver()
        try #require(machine.connectionFailed(unreachable).change).deliver()
        try #require(machine.connectionAccepted(sessionPresent: false).connected).change.deliver()
        try #require(machine.connectionFailed(lost).change).deliver()
        let exit = try await ExitCall.make()
        #expect(machine.disconnect(waiter: exit.waiter).stopsThread)
        machine.networkLoopExited().complete()
        await exit.task.value

        var seen: [MQTTConnectionState] = []
        for await state in states { seen.append(state) }
        #expect(
            seen == [
                .idle, .connecting, .reconnecting(attempt: 1, lastError: unreachable),
                .reconnecting(attempt: 2, lastError: unreachable), .connected(sessionPresent: false),
                .reconnecting(attempt: 1, lastError: lost), .closed(nil),
            ])
        var otherSeen = 0
        for await _ in otherStates { otherSeen += 1 }
        #expect(otherSeen == 0)
    }

    @Test("a reconnect without the session renews each filter once; with it, only subscriptions never granted")
    func resubscribeAfterReconnect() throws {
        var machine = Machine(clientID: "unit")
        let (_, continuation) = AsyncStream<MQTTMessage>.makeStream()
        let granted = try machine.addSubscription(entry("tandem/a", continuation))
        _ = try machine.addSubscription(entry("tandem/b", continuation))
        _ = try machine.addSubscription(entry("tandem/b", continuation))
        _ = try #require(machine.start().launched)
        let first = try #require(machine.connectionAccepted(sessionPresent: false).connected)
        #expect(first.resubscribe.map(\.filter).sorted() == ["tandem/a", "tandem/b"], "one SUBSCRIBE per filter")
        machine.subscriptionGranted(granted)
        _ = machine.connectionFailed(lost)
        let resumed = try #require(machine.connectionAccepted(sessionPresent: true).connected)
        #expect(resumed.resubscribe.map(\.filter) == ["tandem/b"], "the broker kept the granted one")
        _ = machine.connectionFailed(lost)
        let renewed = try #require(machine.connectionAccepted(sessionPresent: false).connected)
        #expect(renewed.resubscribe.map(\.filter).sorted() == ["tandem/a", "tandem/b"], "a lost session loses all")
    }

    @Test("a connection lost before the SUBACK fails the waiting subscribe, which would otherwise wait forever")
    func lostConnectionFailsPendingSubscribe() async throws {
        var machine = Machine(clientID: "unit")
        let call = try await ConnectCall.make()
        _ = machine.connect(waiter: call.waiter)
        for waiter in try #require(machine.connectionAccepted(sessionPresent: false).connected).waiters {
            waiter.resume()
        }
        try await call.task.value
        let (waiters, handOut) = AsyncStream<Machine.SubscribeWaiter>.makeStream()
        let subscribe = Task { try await withCheckedThrowingContinuation { handOut.yield($0) } }
        var iterator = waiters.makeAsyncIterator()
        let waiter = try #require(await iterator.next())
        guard case .registered = machine.registerSubscribe(messageID: 11, waiter: waiter) else {
            Issue.record("the subscribe should wait for its SUBACK")
            return
        }
        guard case .backOff(_, _, let lost) = machine.connectionFailed(MQTTError(.notConnected, "test")) else {
            Issue.record("a lost connection should back off and reconnect")
            return
        }
        #expect(lost.count == 1)
        for waiter in lost { waiter.resume(throwing: MQTTError(.notConnected, "lost")) }
        let error = await #expect(throws: MQTTError.self) { try await subscribe.value }
        #expect(error?.code == .notConnected)
        #expect(machine.subscribeAcknowledged(messageID: 11, granted: [1]) == nil, "a late SUBACK finds no waiter")
    }

    @Test("an acknowledgement that overtakes its publish's registration reaches that publish")
    func earlyAcknowledgement() throws {
        var machine = Machine(clientID: "unit")
        try machine.beginPublish(to: "tandem/a", tracked: true)
        #expect(machine.publishAcknowledged(messageID: 3, reasonCode: 135).isNone, "kept for the registration")
        #expect(machine.registerPublish(messageID: 3, completion: .ignore).acknowledgedReason == 135)
        #expect(machine.registeringPublishes == 0)
        #expect(machine.publishAcknowledged(messageID: 4, reasonCode: 0).isNone)
        try machine.beginPublish(to: "tandem/a", tracked: true)
        #expect(
            machine.registerPublish(messageID: 4, completion: .ignore).isRegistered,
            "an acknowledgement nobody waited for is not kept")
    }
}

// MARK: - Helpers

/// A `connect()` call's continuation, handed to the state machine by the test and awaited by a task of its own.
private struct ConnectCall {
    let waiter: Machine.ConnectWaiter
    let task: Task<Void, any Error>

    static func make() async throws -> ConnectCall {
        let (waiters, handOut) = AsyncStream<Machine.ConnectWaiter>.makeStream()
        let task = Task { try await withCheckedThrowingContinuation { handOut.yield($0) } }
        var iterator = waiters.makeAsyncIterator()
        return ConnectCall(waiter: try #require(await iterator.next()), task: task)
    }
}

/// A `disconnect()` call's continuation, likewise.
private struct ExitCall {
    let waiter: Machine.ExitWaiter
    let task: Task<Void, Never>

    static func make() async throws -> ExitCall {
        let (waiters, handOut) = AsyncStream<Machine.ExitWaiter>.makeStream()
        let task = Task { await withCheckedContinuation { handOut.yield($0) } }
        var iterator = waiters.makeAsyncIterator()
        return ExitCall(waiter: try #require(await iterator.next()), task: task)
    }
}

private func handler(_ results: Shared<[Result<MQTTPublishResult, MQTTError>]>) -> PublishCompletion {
    .handler { result in results.withLock { $0.append(result) } }
}

private func entry(_ filter: String, _ continuation: AsyncStream<MQTTMessage>.Continuation) -> SubscriptionEntry {
    SubscriptionEntry(
        filter: filter, qos: .atLeastOnce, options: 0, continuation: continuation, counter: SubscriptionCounter())
}

extension Result<MQTTPublishResult, MQTTError> {
    fileprivate var failureCode: MQTTError.Code? {
        if case .failure(let error) = self { return error.code }
        return nil
    }
}

extension MQTTClient.StateMachine.ConnectAction {
    fileprivate var launched: Machine.StateChange? {
        if case .launchThread(let change) = self { return change }
        return nil
    }

    fileprivate var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}

extension MQTTClient.StateMachine.StartAction {
    fileprivate var launched: Machine.StateChange? {
        if case .launchThread(let change) = self { return change }
        return nil
    }

    fileprivate var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}

extension MQTTClient.StateMachine.DisconnectAction {
    fileprivate var closing: Machine.Closing? {
        if case .close(let closing) = self { return closing }
        return nil
    }

    fileprivate var stopsThread: Bool {
        if case .stopNetworkThread = self { return true }
        return false
    }

    fileprivate var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}

extension MQTTClient.StateMachine.ConnectionAcceptedAction {
    fileprivate var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    fileprivate var connected:
        (waiters: [Machine.ConnectWaiter], resubscribe: [SubscriptionEntry], change: Machine.StateChange)?
    {
        if case .connected(let waiters, let resubscribe, let change) = self { return (waiters, resubscribe, change) }
        return nil
    }
}

extension MQTTClient.StateMachine.ConnectionFailedAction {
    fileprivate var backoffAttempt: Int? {
        if case .backOff(let attempt, _, _) = self { return attempt }
        return nil
    }

    fileprivate var change: Machine.StateChange? {
        if case .backOff(_, let change, _) = self { return change }
        return nil
    }
}

extension PublishCompletion? {
    fileprivate var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}

extension MQTTClient.StateMachine.PublishRegistration {
    fileprivate var isRegistered: Bool {
        if case .registered = self { return true }
        return false
    }

    fileprivate var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }

    fileprivate var acknowledgedReason: Int32? {
        if case .acknowledged(let reason) = self { return reason }
        return nil
    }
}
