import TandemCore
import Testing

/// An artifact's input spec is outside input until checked: its sizes are bounded before anything is sized by them.
struct InputSpecBoundsTests {
    @Test(
        "specs outside the bounds are refused",
        arguments: [
            InputSpec(channels: 1, window: 5_000_000, hop: 1),
            InputSpec(channels: 5000, window: 1, hop: 1),
            InputSpec(channels: 64, window: 20_000, hop: 1),
            InputSpec(channels: 1, window: 128, hop: 2_000_000),
            InputSpec(channels: 1, window: 128, hop: 0),
            InputSpec(channels: 1, window: 128, hop: 64, sampleRateHz: .nan),
            InputSpec(channels: 1, window: 128, hop: 64, sampleRateHz: -1),
            InputSpec(channels: 1, window: 128, hop: 64, sampleRateHz: 1e9),
        ])
    func refused(spec: InputSpec) {
        #expect(throws: ModelError.self) { try spec.validate() }
    }

    @Test(
        "specs at the bounds are accepted",
        arguments: [
            InputSpec(channels: 1, window: 1 << 20, hop: 1 << 20),
            InputSpec(channels: 4096, window: 256, hop: 1),
            InputSpec(channels: 3, window: 128, hop: 64, sampleRateHz: 1000),
        ])
    func accepted(spec: InputSpec) {
        #expect(throws: Never.self) { try spec.validate() }
    }
}
