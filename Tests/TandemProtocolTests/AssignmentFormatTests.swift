import Foundation
import TandemProtocol
import Testing

/// The signed assignment (format 2) and the key revocation list on the wire: what both sides encode, what the
/// signature covers, and what a reader refuses before any key is consulted.
struct AssignmentFormatTests {
    static let sha = String(repeating: "ab", count: 32)
    static let signature = MessageSignature(
        keyID: Array(0..<8), signature: [UInt8](repeating: 0x5A, count: 64))!

    static func signed(target: ModelAssignment.Target = .device("press-1")) -> ModelAssignment {
        var assignment = ModelAssignment(
            version: "edge-3", sha256: sha, size: 14_680, topic: "tandem/v1/plant/models/edge-3",
            terms: .init(
                fleet: "plant", target: target, sequence: 42, release: 17, expiresAt: 1_767_225_600, rollback: false))
        assignment.signature = signature
        return assignment
    }

    @Test("a signed assignment encoded by the cloud decodes on the edge, for a device or the whole fleet")
    func roundTrip() throws {
        for target in [ModelAssignment.Target.device("press-1"), .fleet] {
            let assignment = Self.signed(target: target)
            let decoded = try ModelAssignment(decoding: assignment.encoded())
            #expect(decoded == assignment)
            #expect(decoded.formatVersion == 2 && decoded.signedBytes == assignment.signedBytes)
        }
        let text = String(decoding: Self.signed().encoded(), as: UTF8.self)
        #expect(text.hasPrefix(#"{"device":"press-1","expires":1767225600,"fleet":"plant","keyId":"0001020304050607""#))
        #expect(text.contains(#""v":2"#) && text.contains(#""target":"device""#))
    }

    @Test("the signed bytes are the documented layout: context, fields little-endian, texts length-prefixed")
    func signedBytesLayout() {
        func text(_ s: String) -> [UInt8] { [UInt8(s.utf8.count), 0] + Array(s.utf8) }
        func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        let expected =
            Array("tandem-model-assignment-v2".utf8) + [0, 2] + text("plant") + [1] + text("press-1")
            + text("edge-3") + [UInt8](repeating: 0xAB, count: 32) + u64(14_680)
            + text("tandem/v1/plant/models/edge-3") + u64(42) + u64(17) + u64(1_767_225_600) + [0]
        #expect(Self.signed().signedBytes == expected)
        var fleetWide = Self.signed(target: .fleet)
        fleetWide.topic = nil
        #expect(fleetWide.signedBytes.contains(2) && !fleetWide.signedBytes.isEmpty)
        #expect(ModelAssignment(version: "v", sha256: Self.sha, size: 1).signedBytes.isEmpty)
    }

    @Test(
        "the signature covers every field but itself",
        arguments: [
            "version", "sha256", "size", "topic", "fleet", "target", "sequence", "release", "expires", "rollback",
        ])
    func everyFieldSigned(field: String) {
        let original = Self.signed()
        var changed = original
        switch field {
        case "version": changed.version = "edge-4"
        case "sha256": changed.sha256 = String(repeating: "cd", count: 32)
        case "size": changed.size += 1
        case "topic": changed.topic = nil
        case "fleet": changed.terms?.fleet = "plant2"
        case "target": changed.terms?.target = .fleet
        case "sequence": changed.terms?.sequence += 1
        case "release": changed.terms?.release -= 1
        case "expires": changed.terms?.expiresAt += 1
        default: changed.terms?.rollback = true
        }
        #expect(changed.signedBytes != original.signedBytes)
    }

    @Test(
        "a reader refuses a malformed signed assignment before any key is consulted",
        arguments: [
            // no signature
            #"{"device":"d","expires":5,"fleet":"f","release":1,"rollback":false,"sequence":1,"sha256":"SHA","size":1,"target":"device","v":2,"version":"v"}"#,
            // a device target without the device, a fleet target with one
            #"{"expires":5,"fleet":"f","keyId":"KEY","release":1,"rollback":false,"sequence":1,"sha256":"SHA","signature":"SIG","size":1,"target":"device","v":2,"version":"v"}"#,
            #"{"device":"d","expires":5,"fleet":"f","keyId":"KEY","release":1,"rollback":false,"sequence":1,"sha256":"SHA","signature":"SIG","size":1,"target":"fleet","v":2,"version":"v"}"#,
            // a release above the sequence, a zero sequence, one beyond 2^53 - 1
            #"{"device":"d","expires":5,"fleet":"f","keyId":"KEY","release":2,"rollback":false,"sequence":1,"sha256":"SHA","signature":"SIG","size":1,"target":"device","v":2,"version":"v"}"#,
            #"{"device":"d","expires":5,"fleet":"f","keyId":"KEY","release":1,"rollback":false,"sequence":0,"sha256":"SHA","signature":"SIG","size":1,"target":"device","v":2,"version":"v"}"#,
            #"{"device":"d","expires":5,"fleet":"f","keyId":"KEY","release":1,"rollback":false,"sequence":9007199254740992,"sha256":"SHA","signature":"SIG","size":1,"target":"device","v":2,"version":"v"}"#,
            // no rollback flag, no fleet, a wildcard in the topic, a short key id
            #"{"device":"d","expires":5,"fleet":"f","keyId":"KEY","release":1,"sequence":1,"sha256":"SHA","signature":"SIG","size":1,"target":"device","v":2,"version":"v"}"#,
            #"{"device":"d","expires":5,"keyId":"KEY","release":1,"rollback":false,"sequence":1,"sha256":"SHA","signature":"SIG","size":1,"target":"device","v":2,"version":"v"}"#,
            #"{"device":"d","expires":5,"fleet":"f","keyId":"KEY","release":1,"rollback":false,"sequence":1,"sha256":"SHA","signature":"SIG","size":1,"target":"device","topic":"a/+","v":2,"version":"v"}"#,
            #"{"device":"d","expires":5,"fleet":"f","keyId":"0011","release":1,"rollback":false,"sequence":1,"sha256":"SHA","signature":"SIG","size":1,"target":"device","v":2,"version":"v"}"#,
            // another format version
            #"{"sha256":"SHA","size":1,"v":3,"version":"v"}"#,
        ])
    func refusesMalformed(json: String) throws {
        let text = json.replacingOccurrences(of: "SHA", with: Self.sha)
            .replacingOccurrences(of: "KEY", with: "0001020304050607")
            .replacingOccurrences(of: "SIG", with: String(repeating: "5a", count: 64))
        #expect(throws: PayloadError.self) { try ModelAssignment(decoding: Array(text.utf8)) }
    }

    @Test("the well-formed message those refusals are made from decodes")
    func wellFormedBase() throws {
        let text =
            #"{"device":"d","expires":5,"fleet":"f","keyId":"0001020304050607","release":1,"rollback":false,"sequence":1,"sha256":"SHA","signature":"SIG","size":1,"target":"device","v":2,"version":"v"}"#
            .replacingOccurrences(of: "SHA", with: Self.sha)
            .replacingOccurrences(of: "SIG", with: String(repeating: "5a", count: 64))
        let decoded = try ModelAssignment(decoding: Array(text.utf8))
        #expect(decoded.terms?.target == .device("d") && decoded.signature != nil)
    }

    @Test("a revocation list round-trips with its keys sorted; unsorted, repeated or malformed ids are refused")
    func revocationList() throws {
        var list = try KeyRevocationList(
            fleet: "plant", sequence: 3, revokedKeyIDs: ["ffffffffffffffff", "0123456789abcdef", "0123456789abcdef"])
        #expect(list.revokedKeyIDs == ["0123456789abcdef", "ffffffffffffffff"])
        list.signature = Self.signature
        #expect(try KeyRevocationList(decoding: list.encoded()) == list)
        let expected =
            Array("tandem-key-revocations-v1".utf8) + [0, 1, 5, 0] + Array("plant".utf8) + [3, 0, 0, 0, 0, 0, 0, 0]
            + [2, 0, 0, 0] + [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF] + [UInt8](repeating: 0xFF, count: 8)
        #expect(list.signedBytes == expected)

        let unsorted = String(decoding: list.encoded(), as: UTF8.self).replacingOccurrences(
            of: #"["0123456789abcdef","ffffffffffffffff"]"#, with: #"["ffffffffffffffff","0123456789abcdef"]"#)
        #expect(throws: PayloadError.self) { try KeyRevocationList(decoding: Array(unsorted.utf8)) }
        #expect(throws: PayloadError.self) {
            try KeyRevocationList(fleet: "plant", sequence: 1, revokedKeyIDs: ["0123456789ABCDEF"])
        }
        #expect(throws: PayloadError.self) { try KeyRevocationList(fleet: "a/b", sequence: 1, revokedKeyIDs: []) }
        #expect(throws: PayloadError.self) { try KeyRevocationList(fleet: "plant", sequence: 0, revokedKeyIDs: []) }
        var unsigned = list
        unsigned.signature = nil
        #expect(throws: PayloadError.self) { try KeyRevocationList(decoding: unsigned.encoded()) }
    }
}
