import Foundation
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import Testing

/// The fleet view adds up numbers devices report; what validation lets through must add up without trapping.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct FleetViewLimitsTests {
    @Test(
        "/v1/devices adds up statuses at the largest numbers validation allows; larger or negative ones are unreadable and left out"
    )
    func fleetViewAtTheLimits() async throws {
        try await MosquittoBroker.with { broker in
            let cloud = try await RunningCloud(broker: broker)
            let device = try await cloud.client("statuses")
            let top = DeviceStatus.maximumCount
            var largest = DeviceStatus(
                device: "d-max", modelVersion: "v1", windows: top, escalations: top, escalationRate: 1,
                inputErrors: ["s": ["r": top]])
            largest.outbox = DeviceStatus.Outbox(
                pending: top, delivered: top, dropped: top, refused: top, journalBytes: top)
            largest.uptimeSeconds = 1e300
            var streams = [String: [String: Int]]()
            for k in 0..<2000 { streams["s\(k)"] = ["r": top / 2000] }
            let manyStreams = DeviceStatus(device: "d-streams", modelVersion: "v1", inputErrors: streams)
            let statuses: [(String, [UInt8])] = [
                ("d-max", largest.encoded()), ("d-streams", manyStreams.encoded()),
                ("d-huge", DeviceStatus(device: "d-huge", windows: Int.max, escalations: 1).encoded()),
                ("d-negative", DeviceStatus(device: "d-negative", inputErrors: ["s": ["r": -1]]).encoded()),
                ("d-sum", DeviceStatus(device: "d-sum", inputErrors: ["a": ["r": top], "b": ["r": top]]).encoded()),
            ]
            for (name, payload) in statuses {
                try await device.publish(
                    MQTTMessage(
                        topic: "tandem/v1/plant/\(name)/status", payload: payload, qos: .atLeastOnce, retain: true))
            }
            // The five retained statuses arrive; wait until the two readable ones are listed, then a little longer.
            for _ in 0..<100 {
                let listed = try await cloud.json("GET", "/v1/devices").object["devices"] as? [[String: Any]] ?? []
                if listed.count >= 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .milliseconds(500))
            let view = try await cloud.json("GET", "/v1/devices")
            #expect(view.status == 200)
            let devices = view.object["devices"] as? [[String: Any]] ?? []
            #expect(devices.compactMap { $0["device"] as? String }.sorted() == ["d-max", "d-streams"], "\(devices)")
            let byName = Dictionary(
                devices.map { ($0["device"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
            #expect(byName["d-max"]?["windows"] as? Int == top && byName["d-max"]?["inputErrors"] as? Int == top)
            #expect(byName["d-streams"]?["inputErrors"] as? Int == 2000 * (top / 2000))
            #expect(try await cloud.request("GET", "/metrics").status == 200)
            await device.disconnect()
            #expect(await cloud.terminate() == 0, "\(cloud.log)")
        }
    }
}
