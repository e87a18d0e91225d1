import ArgumentParser
import Foundation
import TandemCore
import TandemFleet
import TandemProtocol

/// `tandem revoke-key KEY… --key SIGNING_KEY --fleet F`: revokes signing keys for a fleet.
struct RevokeKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke-key",
        abstract: "Revoke signing keys for a fleet: sign and publish the fleet's key revocation list.",
        discussion: """
            Adds the keys (16-hex-digit key ids, as `tandem keygen` prints them, or public key files) to the \
            fleet's revocation list, {data-dir}/revocations-{fleet}.json, signs it under its next sequence with \
            --key and publishes it retained (QoS 1) on tandem/v1/{fleet}/keys/revocations. Devices take it if \
            a key they trust signed it and it does not revoke that key; from then on they refuse every artifact, \
            assignment and revocation list a revoked key signed, also after a restart. Revocation cannot be \
            undone. Run with keys already revoked, the command publishes the current list again.

            To rotate keys: `tandem keygen` a new key, add its .pub to every device's model.trustedKeys, publish \
            with the new key (re-publish the production version under a new version name so it is signed with \
            it), then revoke the old key, signing the list with the new one. Publishing or rolling out with a \
            revoked key is refused.
            """)

    @OptionGroup var cloud: CloudOptions

    @Option(
        help: ArgumentHelp(
            "Private key file that signs the list: one the devices trust and the list does not revoke.",
            valueName: "path"))
    var key: String

    @Argument(help: ArgumentHelp("Key ids (16 hex digits) or public key files to revoke.", valueName: "key"))
    var keys: [String]

    func validate() throws {
        if keys.isEmpty { throw ValidationError("name at least one key to revoke") }
    }

    func run() async throws {
        let clientConfiguration = try cloud.clientConfiguration()
        var ids: [String] = []
        for key in keys {
            if key.count == 16, key.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) {
                ids.append(key)
            } else {
                ids.append(
                    ArtifactSignature.keyIDHex(for: try SigningKeyFile.readPublicKey(from: URL(fileURLWithPath: key))))
            }
        }
        let signingKey = try SigningKeyFile.readPrivateKey(from: URL(fileURLWithPath: key))
        _ = try cloud.registry()  // creates the data directory
        let state = FleetSigningState(directory: URL(fileURLWithPath: cloud.dataDir), fleet: cloud.fleet)
        let list = try state.revoke(ids, signingWith: signingKey)
        try cloud.auditLog().append(
            AuditRecord(
                actor: cloud.actorName, action: "revoke-key", version: "-",
                reason: "revocation list \(list.sequence) revokes \(list.revokedKeyIDs.joined(separator: ", "))"))
        let client = try await cloud.connect(clientConfiguration)
        do {
            try await ModelDistributor(client: client, fleet: cloud.fleet, signer: nil).publishRevocations(list)
        } catch {
            await client.disconnect()
            throw error
        }
        await client.disconnect()
        Console.log(
            "published revocation list \(list.sequence) for fleet \(cloud.fleet) on "
                + "\(ProtocolTopics.revocations(fleet: cloud.fleet)): \(list.revokedKeyIDs.joined(separator: ", "))")
    }
}
