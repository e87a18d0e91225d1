import Foundation
import TandemCloud
import TandemMQTT
import TandemTestSupport
import Testing

extension ClosedLoopTests {
    @Test("status messages showing a device's escalation rate jumping start a round for drift; steady ones do not")
    func driftFromStatuses() async throws {
        let fixture = try LoopFixture.shared.get()
        try await fixture.withBroker { broker, install, scratch in
            // Counts alone never start a round here: only drift can.
            let worker = try ChildProcess(
                cloud,
                trainerArguments(
                    install, port: broker.port, hardExamples: 0,
                    extra: [
                        "--retrain-drift-window", "3", "--retrain-drift-min-windows", "200", "--fine-tune-epochs", "1",
                    ]), errorURL: scratch.url.appendingPathComponent("cloud.log"))
            #expect(await waitUntil(.seconds(30)) { worker.log.contains("checking every") }, "\(worker.log)")
            #expect(worker.log.contains("drift (a device's escalation rate over the last 3 s"), "\(worker.log)")

            let publisher = try MQTTClient(
                configuration: MQTTClientConfiguration(port: broker.port, clientID: "devices"))
            try await publisher.connect()
            // Two devices report every 0.2 s, 50 windows each time: press-1 escalates 10 % and then 60 %,
            // press-2 10 % throughout.
            var counters = ["press-1": (windows: 0, escalations: 0), "press-2": (windows: 0, escalations: 0)]
            func report(press1Rate: Double) async throws {
                for (device, rate) in [("press-1", press1Rate), ("press-2", 0.1)] {
                    var (windows, escalations) = counters[device, default: (0, 0)]
                    windows += 50
                    escalations += Int((50 * rate).rounded())
                    counters[device] = (windows, escalations)
                    let status = """
                        {"device":"\(device)","state":"online","modelVersion":"edge-1","modelUpdate":"active edge-1",\
                        "windows":\(windows),"escalations":\(escalations)}
                        """
                    _ = try await publisher.publish(
                        MQTTMessage(
                            topic: "tandem/v1/\(Self.fleet)/\(device)/status", string: status, qos: .atLeastOnce,
                            retain: true))
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            // Steady for 6 s: two drift windows, so both devices have a baseline and a recent rate, both 10 %.
            let steadyUntil = ContinuousClock.now + .seconds(6)
            while ContinuousClock.now < steadyUntil { try await report(press1Rate: 0.1) }
            #expect(!worker.log.contains("round:"), "no round while the rates are steady: \(worker.log)")
            #expect(!worker.log.contains("is due"), "\(worker.log)")

            // press-1 jumps to 60 %.
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline && !worker.log.contains("round: starting") {
                try await report(press1Rate: 0.6)
            }
            await publisher.disconnect()
            let line = worker.log.split(separator: "\n").first { $0.contains("round: starting") } ?? ""
            #expect(line.contains("starting from edge-1 (device press-1 escalates"), "\(worker.log)")
            #expect(line.contains("baseline 10.0 %"), "\(line)")
            #expect(!line.contains("press-2"), "the steady device is not drift: \(line)")
            #expect(await worker.terminate() == 0, "\(worker.log)")
            #expect(worker.log.contains("trainer: stopped"))
        }
    }

    @Test("the schedule starts a round once --retrain-every has passed since the worker started, given new data")
    func scheduleFromService() async throws {
        let fixture = try LoopFixture.shared.get()
        try await fixture.withBroker { broker, install, scratch in
            // One new hard example (its payload is not a window: the round skips it), far below any count rule.
            try install.store.insert(
                SampleStore.Escalation(
                    id: UUID(), device: "press-1", stream: "vib", payload: [0], responseTopic: "t", edgeLabel: 0,
                    edgeConfidence: 0.3, edgeModel: "edge-1", receivedAt: Date().timeIntervalSince1970))
            let launched = ContinuousClock.now
            let worker = try ChildProcess(
                cloud,
                trainerArguments(
                    install, port: broker.port, hardExamples: 0,
                    extra: ["--retrain-every", "4", "--retrain-drift-min-windows", "0", "--fine-tune-epochs", "1"]),
                errorURL: scratch.url.appendingPathComponent("cloud.log"))
            #expect(await waitUntil(.seconds(30)) { worker.log.contains("checking every") }, "\(worker.log)")
            #expect(worker.log.contains("every 4 s with new data; drift off"), "\(worker.log)")
            #expect(await waitUntil(.seconds(30)) { worker.log.contains("round: starting") }, "\(worker.log)")
            let elapsed = ContinuousClock.now - launched
            #expect(elapsed >= .seconds(4), "not before the schedule: \(elapsed)")
            let line = worker.log.split(separator: "\n").first { $0.contains("round: starting") } ?? ""
            #expect(
                line.contains("(scheduled: ")
                    && line.contains(" s since the last round, 1 new hard examples and 0 new labels)"),
                "\(line)")
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }
}
