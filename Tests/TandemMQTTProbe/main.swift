// A publisher process for TandemMQTT's tests to kill with SIGKILL.
//
//   tandem-mqtt-probe will PORT CLIENT_ID TOPIC [PAYLOAD [retain]]
//       Connects with a last will on TOPIC (payload "offline" unless given, retained with "retain"), prints
//       "connected", then waits to be killed.
//   tandem-mqtt-probe outbox PORT DIRECTORY TOPIC COUNT BATCH PAUSE_MS
//       Accepts messages "0" … "COUNT-1" into a DurableOutbox in DIRECTORY, BATCH at a time with a pause,
//       recording progress in DIRECTORY/next-id so a restarted process carries on; exits 0 when every
//       message is acknowledged.
import Foundation
import TandemMQTT

func fail(_ text: String) -> Never {
    FileHandle.standardError.write(Data("tandem-mqtt-probe: \(text)\n".utf8))
    exit(2)
}

func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

let arguments = CommandLine.arguments
guard arguments.count >= 5, let port = Int(arguments[2]) else { fail("usage: see the source") }

switch arguments[1] {
case "will":
    let payload = arguments.count > 5 ? arguments[5] : "offline"
    let will = MQTTClientConfiguration.LastWill(
        MQTTMessage(
            topic: arguments[4], payload: Array(payload.utf8), qos: .atLeastOnce,
            retain: arguments.count > 6 && arguments[6] == "retain"))
    let client = try MQTTClient(
        configuration: MQTTClientConfiguration(port: port, clientID: arguments[3], keepAliveSeconds: 5, lastWill: will))
    do {
        try await client.connect()
    } catch {
        fail("\(error)")
    }
    say("connected")
    while true { try await Task.sleep(for: .seconds(60)) }

case "outbox":
    guard arguments.count == 8, let count = Int(arguments[5]), let batch = Int(arguments[6]),
        let pause = Int(arguments[7])
    else { fail("usage: outbox PORT DIRECTORY TOPIC COUNT BATCH PAUSE_MS") }
    let directory = arguments[3]
    let topic = arguments[4]
    let progressFile = "\(directory)/next-id"
    var nextID = Int((try? String(contentsOfFile: progressFile, encoding: .utf8)) ?? "0") ?? 0
    let outbox = try DurableOutbox(
        configuration: .init(
            directory: "\(directory)/journal", segmentBytes: 256 * 1024, sync: .interval(milliseconds: 50)))
    say("recovered \(outbox.statistics.recoveredOnOpen) next \(nextID)")
    let client = try MQTTClient(
        configuration: MQTTClientConfiguration(
            port: port, clientID: "probe-outbox", keepAliveSeconds: 5,
            reconnect: .init(initialDelayMilliseconds: 50, maximumDelayMilliseconds: 500)))
    client.start()
    outbox.attach(to: client)
    let padding = String(repeating: "x", count: 100)
    while nextID < count {
        let upper = min(count, nextID + batch)
        let messages = (nextID..<upper).map { MQTTMessage(topic: topic, string: "\($0) \(padding)", qos: .atLeastOnce) }
        try outbox.append(contentsOf: messages)
        nextID = upper
        // The progress file is this producer's own state, written after the outbox accepted the batch: a
        // kill between the two re-sends a batch, which receivers deduplicate.
        let temporary = progressFile + ".tmp"
        try String(nextID).write(toFile: temporary, atomically: false, encoding: .utf8)
        _ = rename(temporary, progressFile)
        if pause > 0 { try await Task.sleep(for: .milliseconds(pause)) }
    }
    say("accepted all")
    while !(await outbox.waitUntilDrained(timeout: .seconds(1))) {}
    outbox.close()
    await client.disconnect()
    say("drained")
    exit(0)

default:
    fail("unknown mode \(arguments[1])")
}
