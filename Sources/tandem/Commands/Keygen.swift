import ArgumentParser
import Foundation
import TandemCore

/// `tandem keygen --out KEY`: creates the Ed25519 key pair that signs model artifacts.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create an Ed25519 key pair for signing model artifacts and assignments.",
        discussion: """
            Writes the private key to PATH (mode 0600) and the public key to PATH.pub, each as one line: \
            a label and the raw 32-byte key in base64. Keep the private key on the machine that signs \
            models; give PATH.pub to the edge devices, which load only artifacts, and take only model \
            assignments and key revocation lists, signed by a key they trust. Prints the key id (16 hex digits) \
            that signed messages carry and `tandem revoke-key` takes.

            Existing key files are never overwritten unless --force is given.
            """
    )

    @Option(
        name: .long,
        help: ArgumentHelp("Private key file to create; the public key goes to <path>.pub.", valueName: "path"))
    var out: String

    @Flag(name: .long, help: "Overwrite existing key files.")
    var force = false

    @Flag(name: .long, help: "Print the result as JSON on stdout.")
    var json = false

    func run() throws {
        let url = URL(fileURLWithPath: out)
        let (publicURL, keyID) = try SigningKeyFile.createKeyPair(at: url, replacing: force)
        if json {
            printJSON(["privateKey": url.path, "publicKey": publicURL.path, "keyID": keyID])
        } else {
            print("private key: \(url.path) (keep secret)")
            print("public key:  \(publicURL.path)")
            print("key id:      \(keyID)")
        }
    }
}

/// Prints a flat string dictionary as one line of JSON with sorted keys.
func printJSON(_ fields: [String: String]) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // Encoding [String: String] cannot fail.
    if let data = try? encoder.encode(fields) {
        print(String(decoding: data, as: UTF8.self))
    }
}
