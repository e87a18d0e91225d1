import TandemProtocol
import Testing

struct TopicTests {
    @Test("a device's topics sit below its own level; artifacts below the fleet's models level")
    func deviceTopics() {
        let topics = DeviceTopics(fleet: "plant-a", device: "press-12")
        #expect(topics.escalations == "tandem/v1/plant-a/press-12/escalations")
        #expect(topics.verdicts == "tandem/v1/plant-a/press-12/verdicts")
        #expect(topics.status == "tandem/v1/plant-a/press-12/status")
        #expect(topics.predictions == "tandem/v1/plant-a/press-12/predictions")
        #expect(topics.labels == "tandem/v1/plant-a/press-12/labels")
        #expect(topics.modelAssignment == "tandem/v1/plant-a/press-12/model")
        #expect(topics.artifact(version: "edge-3") == "tandem/v1/plant-a/models/edge-3")
        #expect(topics.revocations == "tandem/v1/plant-a/keys/revocations")
    }

    @Test("the cloud's filters: shared escalations and labels, statuses of all or one fleet")
    func cloudFilters() {
        #expect(
            ProtocolTopics.shared(.escalations, group: "tandem-cloud")
                == "$share/tandem-cloud/tandem/v1/+/+/escalations")
        #expect(ProtocolTopics.shared(.labels, group: "g") == "$share/g/tandem/v1/+/+/labels")
        #expect(ProtocolTopics.allDevices(.status) == "tandem/v1/+/+/status")
        #expect(ProtocolTopics.fleetDevices(.status, fleet: "plant-a") == "tandem/v1/plant-a/+/status")
        #expect(ProtocolTopics.everything == "tandem/v1/#")
    }

    @Test("every device topic reads back into its fleet, device and kind")
    func addressRoundTrip() throws {
        let topics = DeviceTopics(fleet: "plant-a", device: "press-12")
        for kind in DeviceTopicKind.allCases {
            let address = try #require(DeviceTopicAddress(topic: topics.topic(kind)))
            #expect(address.topics == topics)
            #expect(address.kind == kind)
        }
    }

    @Test(
        "topics of another shape have no device address",
        arguments: [
            "tandem/v1/plant/models/status", "tandem/v1/plant/keys/status", "tandem/v1/plant/keys/revocations",
            "tandem/v1/plant/d/unknown", "tandem/v2/plant/d/status",
            "tandem/v1/plant/d/status/extra", "tandem/v1//d/status", "tandem/v1/plant//status", "tandem/v1/+/d/status",
            "tandem/v1/plant/#/status", "other/v1/plant/d/status", "",
        ])
    func notAnAddress(topic: String) {
        #expect(DeviceTopicAddress(topic: topic) == nil)
    }

    @Test(
        "a device may write only its own topics and read only its verdicts, assignment, policy, fleet's artifacts and key revocations"
    )
    func permissions() {
        let lines = DeviceTopics(fleet: "f", device: "d").permissions.map(\.description)
        #expect(
            lines == [
                "topic write tandem/v1/f/d/escalations", "topic write tandem/v1/f/d/status",
                "topic write tandem/v1/f/d/predictions", "topic write tandem/v1/f/d/labels",
                "topic read tandem/v1/f/d/verdicts", "topic read tandem/v1/f/d/model",
                "topic read tandem/v1/f/d/policy", "topic read tandem/v1/f/models/+",
                "topic read tandem/v1/f/keys/revocations",
            ])
    }
}
