import Foundation
import TandemCore
import TandemProtocol
import TandemTestSupport
import Testing

@testable import TandemEdge

/// The agent policy message and the checks a device makes on it, without a broker: each attack is refused with its
/// reason, next to the honest message that passes; the merge with agent.yaml keeps what a policy leaves out.
struct PolicyGateTests {
    let now: UInt64 = 1_800_000_000
    let settings = AgentPolicy.Settings(measure: "margin", threshold: 0.35, maxEscalationsPerSecond: 20)

    func policy(
        _ version: String = "p1", sequence: UInt64, fleet: String = "test", device: String = "box1",
        expiresAt: UInt64? = nil, settings: AgentPolicy.Settings? = nil, key: URL
    ) throws -> AgentPolicy {
        var policy = AgentPolicy(
            version: version, settings: settings ?? self.settings, fleet: fleet, device: device, sequence: sequence,
            expiresAt: expiresAt ?? now + 3600)
        let signature = try ArtifactSignature(
            signing: policy.signedBytes, with: try SigningKeyFile.readPrivateKey(from: key))
        policy.signature = MessageSignature(keyID: signature.keyID, signature: signature.signature)
        return policy
    }

    @Test("a signed policy for this device passes, is recorded, and its redelivery is recognised")
    func honest() throws {
        let keys = try AssignmentGateTests.Keys()
        defer { keys.scratch.remove() }
        let gate = PolicyGate(record: PolicyRecord(), fleet: "test", device: "box1")
        let p1 = try policy(sequence: 5, key: keys.old)
        // The message survives the wire.
        #expect(try AgentPolicy(decoding: p1.encoded()) == p1)
        guard case .accept(let record) = try gate.check(p1, keys: try keys.trusted(), now: now) else {
            Issue.record("not taken")
            return
        }
        #expect(record.sequence == 5 && record.version == "p1" && !record.digest.isEmpty)
        let after = PolicyGate(record: record, fleet: "test", device: "box1")
        #expect(try after.check(p1, keys: try keys.trusted(), now: now) == .current)
        let p2 = try policy("p2", sequence: 6, key: keys.new)
        #expect(throws: Never.self) { try after.check(p2, keys: try keys.trusted(), now: now) }
    }

    @Test("forged, foreign, replayed, expired and revoked policies are refused with their reason")
    func attacks() throws {
        let keys = try AssignmentGateTests.Keys()
        defer { keys.scratch.remove() }
        var record = PolicyRecord()
        record.sequence = 10
        record.digest = "x"
        let gate = PolicyGate(record: record, fleet: "test", device: "box1")
        let trusted = try keys.trusted()
        func refusal(_ policy: AgentPolicy, keys: TrustedKeys? = nil) -> AssignmentRefusal.Code? {
            do {
                _ = try gate.check(policy, keys: keys ?? trusted, now: now)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(refusal(try policy(sequence: 11, key: keys.rogue)) == .untrusted)
        var tampered = try policy(sequence: 11, key: keys.old)
        tampered.settings.threshold = 0.99
        #expect(refusal(tampered) == .untrusted, "a changed setting breaks the signature")
        var unsigned = try policy(sequence: 11, key: keys.old)
        unsigned.signature = nil
        #expect(refusal(unsigned) == .unsigned)
        #expect(refusal(try policy(sequence: 11, fleet: "other", key: keys.old)) == .wrongFleet)
        #expect(refusal(try policy(sequence: 11, device: "box2", key: keys.old)) == .wrongDevice)
        #expect(refusal(try policy(sequence: 10, key: keys.old)) == .replayed)
        #expect(refusal(try policy(sequence: 9, key: keys.old)) == .replayed)
        #expect(refusal(try policy(sequence: 11, expiresAt: now, key: keys.old)) == .expired)
        #expect(
            refusal(try policy(sequence: 11, key: keys.old), keys: try keys.trusted(revoked: [keys.oldID])) == .revoked)
        #expect(refusal(try policy(sequence: 11, key: keys.old)) == nil)
    }

    @Test("the decoder refuses settings out of range, unknown measures, bad names and oversized messages")
    func decoding() throws {
        let keys = try AssignmentGateTests.Keys()
        defer { keys.scratch.remove() }
        let good = try policy(sequence: 3, key: keys.old)
        let json = String(decoding: good.encoded(), as: UTF8.self)
        for (from, to) in [
            ("\"threshold\":0.35", "\"threshold\":1.5"), ("\"threshold\":0.35", "\"threshold\":-0.1"),
            ("\"measure\":\"margin\"", "\"measure\":\"loudness\""),
            ("\"maxEscalationsPerSecond\":20", "\"maxEscalationsPerSecond\":-1"),
            ("\"maxEscalationsPerSecond\":20", "\"maxEscalationsPerSecond\":1e300"),
            ("\"device\":\"box1\"", "\"device\":\"box/1\""), ("\"sequence\":3", "\"sequence\":0"),
            ("\"v\":1", "\"v\":2"),
        ] {
            #expect(json.contains(from))
            #expect(throws: PayloadError.self, "\(to)") {
                try AgentPolicy(decoding: Array(json.replacingOccurrences(of: from, with: to).utf8))
            }
        }
        #expect(throws: PayloadError.self) { try AgentPolicy(decoding: [UInt8](repeating: 0x20, count: 5000)) }
        #expect(throws: PayloadError.self) {
            try AgentPolicy.Settings(budget: 1).check()
        }
    }

    @Test("a policy overrides only what it sets; a threshold turns a local budget off, a budget turns it on")
    func merge() {
        var local = AgentConfiguration.Policy()
        local.threshold = 0.5
        local.budget = 0.1
        local.maxEscalationsPerSecond = 5
        let threshold = EdgeAgent.policyConfiguration(local, with: AgentPolicy.Settings(threshold: 0.3))
        #expect(threshold.threshold == 0.3 && threshold.budget == nil && threshold.maxEscalationsPerSecond == 5)
        let budget = EdgeAgent.policyConfiguration(
            local, with: AgentPolicy.Settings(budget: 0.05, maxEscalationsPerSecond: 2, burst: 4))
        #expect(budget.threshold == 0.5 && budget.budget == 0.05 && budget.maxEscalationsPerSecond == 2)
        #expect(budget.burst == 4)
        let measure = EdgeAgent.policyConfiguration(local, with: AgentPolicy.Settings(measure: "entropy"))
        #expect(measure.measure == .entropy && measure.budget == 0.1)
        #expect(EdgeAgent.policyConfiguration(local, with: AgentPolicy.Settings()) == local)
    }
}
