import TandemCore
import TandemMQTT
import TandemProtocol

extension ModelUpdater {
    /// Takes an agent policy if it passes ``PolicyGate`` with the trusted keys and the revocations taken so far,
    /// records it, then puts it in force; a refusal leaves the policy in force as it was and is the status's
    /// `policyUpdate: rejected P: reason`. An agent that trusts no key takes no policy: a policy changes what
    /// leaves the box, so it must be signed.
    func takePolicy(_ message: MQTTMessage) {
        if message.payload.isEmpty { return }  // a cleared retained policy
        let policy: AgentPolicy
        do {
            policy = try AgentPolicy(decoding: message.payload)
        } catch {
            setPolicy(.rejected("?", reason: "\(message.topic): \(error)"), inForce: nil)
            return
        }
        do {
            guard !configuration.trustedKeys.isEmpty else {
                throw AssignmentRefusal(
                    .untrusted, "this agent trusts no signing key (model.trustedKeys), so it takes no remote policy")
            }
            let gate = try policyGate.withLock { $0 }.get()
            let keys = try trustedKeys(revoked: Set(try currentGate().record.revokedKeyIDs))
            let decision = try gate.check(policy, keys: keys, now: now())
            var digest = gate.record.digest
            if case .accept(let record) = decision {
                try record.write(to: files.policyRecordPath)
                policyGate.withLock { current in
                    if case .success(var gate) = current {
                        gate.record = record
                        current = .success(gate)
                    }
                }
                digest = record.digest
            }
            // The retained policy comes again after every reconnect: one in force already is left alone, so a
            // flaky link does not restart the threshold adaptation or refill the rate cap's bucket.
            if case .current = decision, appliedPolicyDigest.withLock({ $0 }) == digest { return }
            try applyPolicy(policy)
            appliedPolicyDigest.withLock { $0 = digest }
        } catch {
            setPolicy(.rejected(policy.version, reason: "\(error)"), inForce: nil)
            return
        }
        log("policy: \(policy.version) in force (\(policy.settings.summary))")
        setPolicy(.active(policy.version), inForce: policy.version)
    }

    private func setPolicy(_ state: ModelUpdateState, inForce: String?) {
        if case .rejected = state { log("policy update: \(state)") }
        onPolicyChange(state.truncated, inForce)
    }
}
