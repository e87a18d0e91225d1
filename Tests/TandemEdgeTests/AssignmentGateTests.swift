import Foundation
import TandemCore
import TandemProtocol
import TandemTestSupport
import Testing

@testable import TandemEdge

/// The checks a device makes on a model assignment and a key revocation list, without a broker: each test makes
/// one attack and asserts the refusal and its reason, next to the honest message that passes.
struct AssignmentGateTests {
    /// Three key pairs: `old` and `new` are trusted (a rotation in progress), `rogue` is not.
    struct Keys {
        let scratch: ScratchDirectory
        let old: URL
        let new: URL
        let rogue: URL
        let oldID: String
        let newID: String
        /// The trusted keys as the agent reads them, with `revoked` revoked.
        func trusted(revoked: [String] = []) throws -> TrustedKeys {
            try TrustedKeys.read(
                paths: [old.path + ".pub", new.path + ".pub"], revokedKeyIDs: Set(revoked))
        }

        init() throws {
            scratch = try ScratchDirectory()
            old = scratch.url.appendingPathComponent("old.key")
            new = scratch.url.appendingPathComponent("new.key")
            rogue = scratch.url.appendingPathComponent("rogue.key")
            oldID = try SigningKeyFile.createKeyPair(at: old).keyID
            newID = try SigningKeyFile.createKeyPair(at: new).keyID
            try SigningKeyFile.createKeyPair(at: rogue)
        }
    }

    let artifact = [UInt8](repeating: 7, count: 1000)
    let now: UInt64 = 1_800_000_000

    func gate(_ record: AssignmentRecord = AssignmentRecord(), requireSignature: Bool = true) -> AssignmentGate {
        AssignmentGate(record: record, fleet: "test", device: "box1", requireSignature: requireSignature)
    }

    func assignment(
        _ version: String = "v2", sequence: UInt64, release: UInt64? = nil, rollback: Bool = false,
        expiresAt: UInt64? = nil, fleet: String = "test", device: String = "box1", key: URL
    ) throws -> ModelAssignment {
        try signedAssignment(
            of: artifact, version: version, keyURL: key, sequence: sequence, release: release, rollback: rollback,
            expiresAt: expiresAt ?? now + 3600, fleet: fleet, device: device)
    }

    /// The record after `gate` accepts `assignment` and its version serves.
    func accepted(_ assignment: ModelAssignment, by gate: AssignmentGate, keys: TrustedKeys) throws
        -> AssignmentRecord
    {
        guard case .accept(let record) = try gate.check(assignment, keys: keys, now: now) else {
            Issue.record("not a new assignment")
            return gate.record
        }
        var next = gate
        next.record = record
        return next.serving(assignment)
    }

    func refusal(
        _ assignment: ModelAssignment, by gate: AssignmentGate, keys: TrustedKeys, now: UInt64? = nil
    ) -> AssignmentRefusal? {
        do {
            _ = try gate.check(assignment, keys: keys, now: now ?? self.now)
            return nil
        } catch {
            return error
        }
    }

    @Test("a signed assignment for this device with a higher sequence is taken; its sequence and release are recorded")
    func takesSigned() throws {
        let keys = try Keys()
        defer { keys.scratch.remove() }
        let record = try accepted(
            try assignment(sequence: 4, release: 3, key: keys.old), by: gate(), keys: try keys.trusted())
        #expect(record.sequence == 4 && record.servingVersion == "v2" && record.servingRelease == 3)
    }

    @Test(
        "a forged assignment is refused: changed after signing, signed by an untrusted key, or a signature moved over")
    func refusesForged() throws {
        let keys = try Keys()
        defer { keys.scratch.remove() }
        let trusted = try keys.trusted()
        var changed = try assignment(sequence: 2, key: keys.old)
        changed.terms?.sequence = 9
        #expect(refusal(changed, by: gate(), keys: trusted)?.code == .untrusted)
        var otherVersion = try assignment(sequence: 2, key: keys.old)
        otherVersion.version = "evil"
        #expect(refusal(otherVersion, by: gate(), keys: trusted)?.code == .untrusted)
        let rogue = try assignment(sequence: 2, key: keys.rogue)
        let refused = try #require(refusal(rogue, by: gate(), keys: trusted))
        #expect(refused.code == .untrusted && refused.message.contains("not among the trusted keys"))
        // Another device's genuine signature over this device's terms.
        var moved = try assignment(sequence: 2, key: keys.old)
        moved.signature = try assignment(sequence: 2, device: "box2", key: keys.old).signature
        #expect(refusal(moved, by: gate(), keys: trusted)?.code == .untrusted)
        var unsigned = try assignment(sequence: 2, key: keys.old)
        unsigned.signature = nil
        #expect(refusal(unsigned, by: gate(), keys: trusted)?.code == .unsigned)
    }

    @Test(
        "an unsigned (format 1) assignment is refused by an agent that requires signatures, taken by one that does not")
    func unsignedFormatOne() throws {
        let keys = try Keys()
        defer { keys.scratch.remove() }
        let legacy = ModelAssignment(version: "v2", sha256: ModelArtifact.fileDigestHex(artifact), size: artifact.count)
        let refused = try #require(refusal(legacy, by: gate(), keys: try keys.trusted()))
        #expect(refused.code == .unsigned && refused.description.hasPrefix("unsigned: an unsigned (format 1)"))
        #expect(try gate(requireSignature: false).check(legacy, keys: TrustedKeys([]), now: now) == .unordered)
    }

    @Test("a replayed or older assignment is refused after a newer one; the newest one delivered again is recognised")
    func refusesReplay() throws {
        let keys = try Keys()
        defer { keys.scratch.remove() }
        let trusted = try keys.trusted()
        let first = try assignment("v2", sequence: 5, key: keys.old)
        let older = try assignment("v3", sequence: 4, release: 4, key: keys.old)
        let record = try accepted(first, by: gate(), keys: trusted)
        // Before the newer one, the older one would pass.
        #expect(refusal(older, by: gate(), keys: trusted) == nil)
        let replayed = try #require(refusal(older, by: gate(record), keys: trusted))
        #expect(replayed.code == .replayed && replayed.message.contains("4 is not above 5"))
        // The same sequence with other contents is no redelivery.
        let sameNumber = try assignment("v3", sequence: 5, key: keys.old)
        #expect(refusal(sameNumber, by: gate(record), keys: trusted)?.code == .replayed)
        #expect(try gate(record).check(first, keys: trusted, now: now) == .current)
    }

    @Test("an expired assignment is refused")
    func refusesExpired() throws {
        let keys = try Keys()
        defer { keys.scratch.remove() }
        let expiring = try assignment(sequence: 2, expiresAt: now + 10, key: keys.old)
        #expect(refusal(expiring, by: gate(), keys: try keys.trusted(), now: now + 9) == nil)
        let refused = try #require(refusal(expiring, by: gate(), keys: try keys.trusted(), now: now + 10))
        #expect(refused.code == .expired)
    }

    @Test("an older version is refused with a newer sequence unless the assignment is a signed rollback")
    func rollbackOnlyWhenSigned() throws {
        let keys = try Keys()
        defer { keys.scratch.remove() }
        let trusted = try keys.trusted()
        let record = try accepted(
            try assignment("v2", sequence: 7, release: 7, key: keys.old), by: gate(), keys: trusted)
        let back = try assignment("v1", sequence: 8, release: 3, key: keys.old)
        let refused = try #require(refusal(back, by: gate(record), keys: trusted))
        #expect(refused.code == .downgrade && refused.message.contains("v1 (release 3) is older than v2 (release 7)"))
        // The flag is signed: setting it on the refused assignment breaks the signature.
        var flagged = back
        flagged.terms?.rollback = true
        #expect(refusal(flagged, by: gate(record), keys: trusted)?.code == .untrusted)
        let rollback = try assignment("v1", sequence: 8, release: 3, rollback: true, key: keys.old)
        let after = try accepted(rollback, by: gate(record), keys: trusted)
        #expect(after.servingVersion == "v1" && after.servingRelease == 3 && after.sequence == 8)
        // A newer version after the rollback is an upgrade again.
        #expect(refusal(try assignment("v3", sequence: 9, key: keys.old), by: gate(after), keys: trusted) == nil)
    }

    @Test("an assignment for another fleet or another device is refused")
    func refusesOtherTargets() throws {
        let keys = try Keys()
        defer { keys.scratch.remove() }
        let trusted = try keys.trusted()
        #expect(
            refusal(try assignment(sequence: 2, fleet: "other", key: keys.old), by: gate(), keys: trusted)?.code
                == .wrongFleet)
        #expect(
            refusal(try assignment(sequence: 2, device: "box2", key: keys.old), by: gate(), keys: trusted)?.code
                == .wrongDevice)
        var fleetWide = try assignment(sequence: 2, key: keys.old)
        fleetWide.terms?.target = .fleet
        try sign(&fleetWide, keyURL: keys.old)
        #expect(refusal(fleetWide, by: gate(), keys: trusted) == nil)
    }

    @Test("a revoked key's assignment is refused while a rotated-in key's is taken")
    func revokedKey() throws {
        let keys = try Keys()
        defer { keys.scratch.remove() }
        let list = try signedRevocations([keys.oldID], sequence: 1, keyURL: keys.new)
        let record = try #require(try gate().check(list, keys: try keys.trusted()))
        #expect(record.revokedKeyIDs == [keys.oldID] && record.revocationSequence == 1)
        let trusted = try keys.trusted(revoked: record.revokedKeyIDs)
        let byOld = try #require(refusal(try assignment(sequence: 2, key: keys.old), by: gate(record), keys: trusted))
        #expect(byOld.code == .revoked && byOld.message.contains(keys.oldID))
        #expect(refusal(try assignment(sequence: 2, key: keys.new), by: gate(record), keys: trusted) == nil)
    }

    @Test("a revocation list is taken only if signed by a trusted key it does not revoke, with a higher sequence")
    func revocationListRules() throws {
        let keys = try Keys()
        defer { keys.scratch.remove() }
        let trusted = try keys.trusted()
        func refusal(_ list: KeyRevocationList, _ gate: AssignmentGate) -> AssignmentRefusal.Code? {
            do {
                _ = try gate.check(list, keys: trusted)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(refusal(try signedRevocations([keys.newID], sequence: 1, keyURL: keys.rogue), gate()) == .untrusted)
        #expect(refusal(try signedRevocations([keys.oldID], sequence: 1, keyURL: keys.old), gate()) == .revoked)
        var unsigned = try KeyRevocationList(fleet: "test", sequence: 1, revokedKeyIDs: [keys.oldID])
        #expect(refusal(unsigned, gate()) == .unsigned)
        unsigned.signature = try signedRevocations([], sequence: 1, keyURL: keys.new).signature
        #expect(refusal(unsigned, gate()) == .untrusted)
        let otherFleet = try signedRevocations([keys.oldID], sequence: 1, keyURL: keys.new, fleet: "other")
        #expect(refusal(otherFleet, gate()) == .wrongFleet)

        let first = try signedRevocations([keys.oldID], sequence: 2, keyURL: keys.new)
        let record = try #require(try gate().check(first, keys: trusted))
        // Delivered again: nothing to do. An older list, or one signed by the revoked key, is refused.
        #expect(try gate(record).check(first, keys: trusted) == nil)
        #expect(refusal(try signedRevocations([], sequence: 1, keyURL: keys.new), gate(record)) == .replayed)
        #expect(refusal(try signedRevocations([keys.newID], sequence: 3, keyURL: keys.old), gate(record)) == .revoked)
        // A later list that leaves the key out does not bring it back.
        let later = try signedRevocations([], sequence: 3, keyURL: keys.new)
        #expect(try gate(record).check(later, keys: trusted)?.revokedKeyIDs == [keys.oldID])
    }

    @Test("the record survives a restart: written atomically next to the model, read back equal")
    func recordFile() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = AssignmentRecord.path(forModelAt: scratch.url.appendingPathComponent("model.tandem").path)
        #expect(try AssignmentRecord.read(from: path) == AssignmentRecord())
        var record = AssignmentRecord()
        record.sequence = 12
        record.assignmentDigest = "ab"
        record.servingVersion = "v3"
        record.servingRelease = 9
        record.revocationSequence = 2
        record.revokedKeyIDs = ["0123456789abcdef"]
        try record.write(to: path)
        #expect(try AssignmentRecord.read(from: path) == record)
        try "{not json".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ModelLoadError.self) { try AssignmentRecord.read(from: path) }
    }
}
