import Foundation
import TandemCloud
import TandemCore
import TandemFleetTestSupport
import Testing

/// The escalation server's map from edge model versions to their input specs.
struct EdgeInputCatalogTests {
    @Test(
        "a version registered after start is learned from the registry; a missing one is asked again only after the retry time"
    )
    func learnsFromRegistry() throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        try fixture.register(try edgeArtifact(version: "v1"), source: "initial")
        let given = InputSpec(channels: 3, window: 8, hop: 4, mean: [1, 1, 1], std: [3, 3, 3])
        let catalog = EdgeInputCatalog(known: ["v0": given], registry: fixture.registry, retrySeconds: 10)
        #expect(catalog.spec(for: "v0") == given)
        let learned = try #require(catalog.spec(for: "v1", now: 100))
        #expect(learned.mean == [0.5, 0.5, 0.5] && learned.std == [2, 2, 2])
        #expect(catalog.known.keys.sorted() == ["v0", "v1"])

        #expect(catalog.spec(for: "v2", now: 100) == nil)
        try fixture.register(try edgeArtifact(version: "v2", seed: 2))
        #expect(catalog.spec(for: "v2", now: 105) == nil, "a miss is remembered for the retry time")
        #expect(catalog.spec(for: "v2", now: 111)?.mean == [0.5, 0.5, 0.5])
        #expect(EdgeInputCatalog().spec(for: "v1") == nil, "without a registry only given versions are known")
    }
}
