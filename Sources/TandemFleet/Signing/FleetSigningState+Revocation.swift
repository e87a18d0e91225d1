import Crypto
import TandemCore
import TandemProtocol

extension FleetSigningState {
    /// Adds `keyIDs` to the fleet's revocation list and signs the new list, under the next list sequence, with
    /// `key`; when every id is revoked already, the current list is returned unchanged (to publish again).
    ///
    /// - Parameters:
    ///   - keyIDs: Key ids, 16 lower-case hex digits each.
    ///   - key: A key the devices trust that the list does not revoke: devices refuse a list signed by a key it
    ///     revokes, or by one revoked before.
    /// - Returns: The list to publish, as stored in ``revocationsURL``.
    /// - Throws: ``RegistryError``: `signing` if `key` is among the revoked keys or an id is not a key id, `io`.
    public func revoke(_ keyIDs: [String], signingWith key: Curve25519.Signing.PrivateKey) throws(RegistryError)
        -> KeyRevocationList
    {
        let signer = ArtifactSignature.keyIDHex(for: key.publicKey)
        return try updateRevocations { (current) throws(RegistryError) in
            let known = Set(current?.revokedKeyIDs ?? [])
            if let current, known.isSuperset(of: keyIDs) { return current }
            let all = known.union(keyIDs)
            guard !all.contains(signer) else {
                throw RegistryError(
                    .signing,
                    "key \(signer) cannot sign a list that revokes it (devices would refuse it); sign with another "
                        + "trusted key")
            }
            var list: KeyRevocationList
            do {
                list = try KeyRevocationList(
                    fleet: fleet, sequence: (current?.sequence ?? 0) + 1, revokedKeyIDs: Array(all))
            } catch {
                throw RegistryError(.signing, "\(error)")
            }
            do {
                let signature = try ArtifactSignature(signing: list.signedBytes, with: key)
                list.signature = MessageSignature(keyID: signature.keyID, signature: signature.signature)
            } catch {
                throw RegistryError(.signing, "cannot sign the revocation list: \(error)")
            }
            return list
        }
    }
}
