import TandemProtocol
import Testing

/// Sums over what a device reports cannot trap, whether the status was validated or built in code.
struct DeviceStatusArithmeticTests {
    @Test("input errors add up exactly at the validated maximum, and saturate instead of trapping beyond it")
    func inputErrorTotal() throws {
        let top = DeviceStatus.maximumCount
        let atMaximum = DeviceStatus(device: "d", inputErrors: ["a": ["x": top / 2], "b": ["y": top - top / 2]])
        let validated = try DeviceStatus(validating: atMaximum.encoded())
        #expect(validated.inputErrorTotal == top)
        #expect(throws: PayloadError.self, "one more is refused") {
            _ = try DeviceStatus(
                validating: DeviceStatus(device: "d", inputErrors: ["a": ["x": top], "b": ["y": 1]]).encoded())
        }
        let unvalidated = DeviceStatus(
            device: "d", inputErrors: ["a": ["x": Int.max, "y": Int.max], "b": ["z": -7, "w": Int.max]])
        #expect(unvalidated.inputErrorTotal == Int.max)
        #expect(DeviceStatus(device: "d", inputErrors: ["a": ["x": -3, "y": 4]]).inputErrorTotal == 4)
    }
}
