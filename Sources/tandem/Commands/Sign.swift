import ArgumentParser
import Foundation
import TandemCore

/// `tandem sign --key KEY MODEL.tandem [--out OUT]`: signs a model artifact with an Ed25519 private key.
struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a model artifact with an Ed25519 private key.",
        discussion: """
            Verifies the artifact's checksum and structure, signs its SHA-256 digest with the key made by \
            `tandem keygen`, and writes the signed artifact atomically: in place, or to --out. An existing \
            signature is replaced. Prints the key id, which devices match against their trusted public keys.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Private key file written by `tandem keygen`.", valueName: "path"))
    var key: String

    @Argument(help: ArgumentHelp("The .tandem artifact to sign.", valueName: "model"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Write the signed artifact here instead of in place.", valueName: "path"))
    var out: String?

    @Flag(name: .long, help: "Print the result as JSON on stdout.")
    var json = false

    func run() throws {
        let privateKey = try SigningKeyFile.readPrivateKey(from: URL(fileURLWithPath: key))
        let input = URL(fileURLWithPath: model)
        let artifact = try ModelArtifact.read(from: input)
        let signed = try artifact.signed(with: privateKey)
        let output = out.map { URL(fileURLWithPath: $0) } ?? input
        try signed.write(to: output)
        let keyID = signed.signature?.keyIDHex ?? ""
        if json {
            printJSON([
                "model": output.path, "name": signed.manifest.name, "version": signed.manifest.version,
                "keyID": keyID, "replacedKeyID": artifact.signature?.keyIDHex ?? "",
            ])
        } else {
            if let previous = artifact.signature {
                print("replaced the signature by key \(previous.keyIDHex)")
            }
            print("signed \(output.path) (\(signed.manifest.name) \(signed.manifest.version)) with key \(keyID)")
        }
    }
}
