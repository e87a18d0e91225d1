import Foundation
import Synchronization
import TandemCore
import TandemFleet
import TandemFleetTestSupport
import TandemProtocol
import TandemTestSupport
import Testing

/// The cloud's side of signed assignments: the fleet's sequence on disk, the signer and the revocation list.
struct AssignmentSigningTests {
    @Test("the fleet's sequence survives a restart, and a version keeps the release its first assignment gave it")
    func sequenceSurvivesRestart() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        func next(_ state: FleetSigningState, _ version: String) throws -> [UInt64] {
            let (sequence, release) = try state.nextAssignment(naming: version)
            return [sequence, release]
        }
        let first = FleetSigningState(directory: scratch.url, fleet: "plant")
        #expect(try next(first, "v1") == [1, 1])
        #expect(try next(first, "v2") == [2, 2])
        // A new process on the same data directory.
        let restarted = FleetSigningState(directory: scratch.url, fleet: "plant")
        #expect(try next(restarted, "v1") == [3, 1])
        #expect(try restarted.assignments().releases == ["v1": 1, "v2": 2])
        // Another fleet counts apart.
        #expect(try next(FleetSigningState(directory: scratch.url, fleet: "other"), "v1") == [1, 1])
    }

    @Test("signers working at once never hand out the same sequence")
    func concurrentSigners() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let directory = scratch.url
        let taken = Mutex<[UInt64]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 6) { worker in
            // Each with its own state (its own lock descriptor), as separate processes have.
            let state = FleetSigningState(directory: directory, fleet: "plant")
            for _ in 0..<15 {
                do {
                    let sequence = try state.nextAssignment(naming: "v\(worker)").sequence
                    taken.withLock { $0.append(sequence) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        let sequences = taken.withLock { $0 }
        #expect(Set(sequences).count == sequences.count, "a sequence was handed out twice")
        #expect(sequences.max() == 90)
    }

    @Test("the signer signs one sequence per call, each device's assignment for that device; a revoked key is refused")
    func signerAndRevocation() throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        let signer = try fixture.signer()
        let artifact = ModelAssignment(version: "v1", sha256: String(repeating: "0", count: 64), size: 10)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let signed = try signer.sign(artifact, for: ["a", "b"], rollback: true, now: now)
        #expect(signed.map(\.device) == ["a", "b"])
        let keys = try TrustedKeys.read(paths: [fixture.publicKeyPath])
        for (device, assignment) in signed {
            let terms = try #require(assignment.terms)
            #expect(terms.fleet == "plant" && terms.target == .device(device) && terms.sequence == 1)
            #expect(terms.rollback && terms.expiresAt == 1_800_000_000 + AssignmentSigner.defaultValiditySeconds)
            let carried = try #require(assignment.signature)
            try keys.verify(
                try #require(ArtifactSignature(keyID: carried.keyID, signature: carried.signature)),
                over: assignment.signedBytes)
        }
        #expect(try signer.sign(artifact, for: ["a"]).first?.assignment.terms?.sequence == 2)

        // Revoking the fixture's key, signed with a second key.
        let secondURL = fixture.scratch.url.appendingPathComponent("second.key")
        let secondID = try SigningKeyFile.createKeyPair(at: secondURL).keyID
        let second = try SigningKeyFile.readPrivateKey(from: secondURL)
        let state = FleetSigningState(directory: fixture.registry.directory, fleet: "plant")
        #expect(throws: RegistryError.self) { try state.revoke([secondID], signingWith: second) }
        let list = try state.revoke([signer.keyID], signingWith: second)
        #expect(list.sequence == 1 && list.revokedKeyIDs == [signer.keyID])
        #expect(try state.revocationList() == list)
        #expect(try state.revoke([signer.keyID], signingWith: second) == list, "nothing new: the same list")
        do {
            _ = try fixture.signer()
            Issue.record("a revoked key signed")
        } catch let error as RegistryError {
            #expect(error.code == .signing && error.message.contains("revoked"))
        }
        #expect(try AssignmentSigner(key: second, state: state).keyID == secondID)
    }
}
