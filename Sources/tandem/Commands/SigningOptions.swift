import ArgumentParser
import Foundation
import TandemCore
import TandemFleet

/// The signing flags of the commands that sign for a fleet (`tandem publish`, `tandem rollout`): the key and how
/// long the assignments it signs stay valid.
struct SigningOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Private key file written by `tandem keygen`; it signs the artifact and every assignment.",
            valueName: "path"))
    var key: String

    @Option(
        help: ArgumentHelp("Days a signed assignment stays valid; a device refuses it afterwards.", valueName: "days"))
    var assignmentValidityDays = Double(AssignmentSigner.defaultValiditySeconds) / 86_400

    func validate() throws {
        guard assignmentValidityDays.isFinite, assignmentValidityDays >= 1.0 / 1440, assignmentValidityDays <= 3650
        else {
            throw ValidationError("--assignment-validity-days must be within one minute and 3,650 days")
        }
    }

    /// The fleet's assignment signer, its sequence kept in the data directory.
    ///
    /// - Throws: `RegistryError` (`signing`) if the fleet's revocation list names the key; the key file's error.
    func signer(_ cloud: CloudOptions) throws -> AssignmentSigner {
        try AssignmentSigner(
            key: SigningKeyFile.readPrivateKey(from: URL(fileURLWithPath: key)),
            state: FleetSigningState(directory: URL(fileURLWithPath: cloud.dataDir), fleet: cloud.fleet),
            validitySeconds: UInt64(assignmentValidityDays * 86_400))
    }
}
