import Crypto
import Foundation
import TandemTestSupport
import Testing

@testable import TandemCore

struct ArtifactKeyFileTests {
    func mode(_ url: URL) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        return try #require(attributes[.posixPermissions] as? Int)
    }

    @Test("a key pair written by createKeyPair signs and verifies artifacts after reading back")
    func keyPairRoundTrip() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("signing.key")
        let (publicURL, keyID) = try SigningKeyFile.createKeyPair(at: url)
        #expect(publicURL.lastPathComponent == "signing.key.pub")
        #expect(try mode(url) == 0o600)
        #expect(try mode(publicURL) == 0o644)

        let privateKey = try SigningKeyFile.readPrivateKey(from: url)
        let publicKey = try SigningKeyFile.readPublicKey(from: publicURL)
        #expect(privateKey.publicKey.rawRepresentation == publicKey.rawRepresentation)
        #expect(ArtifactSignature.keyIDHex(for: publicKey) == keyID)

        let signed = try sampleArtifact().signed(with: privateKey)
        let loaded = try ModelArtifact(bytes: signed.serialized(), trustedKeys: [publicKey], requireSignature: true)
        #expect(loaded.signature?.keyIDHex == keyID)
        let names = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).sorted()
        #expect(names == ["signing.key", "signing.key.pub"])
    }

    @Test("createKeyPair refuses to overwrite existing keys unless asked to")
    func noOverwrite() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("k")
        let first = try SigningKeyFile.createKeyPair(at: url)
        let error = #expect(throws: ArtifactError.self) { try SigningKeyFile.createKeyPair(at: url) }
        #expect(error?.code == .io)
        #expect(
            try ArtifactSignature.keyIDHex(for: SigningKeyFile.readPublicKey(from: first.publicKeyURL)) == first.keyID)
        let second = try SigningKeyFile.createKeyPair(at: url, replacing: true)
        #expect(second.keyID != first.keyID)
    }

    @Test("a public key file is not accepted as a private key, and garbage is not a key")
    func wrongKeyFiles() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("k")
        let (publicURL, _) = try SigningKeyFile.createKeyPair(at: url)
        let swapped = #expect(throws: ArtifactError.self) { try SigningKeyFile.readPrivateKey(from: publicURL) }
        #expect(swapped?.message.contains("public key file") == true)
        #expect(throws: ArtifactError.self) { try SigningKeyFile.readPublicKey(from: url) }

        let garbage = scratch.url.appendingPathComponent("garbage")
        for contents in ["", "tandem-ed25519-public-key !!!", "tandem-ed25519-public-key AAAA", "\u{0}\u{1}\u{2}"] {
            try Data(contents.utf8).write(to: garbage)
            let error = #expect(throws: ArtifactError.self) { try SigningKeyFile.readPublicKey(from: garbage) }
            #expect(error?.code == .badKeyFile)
            #expect(error?.path == garbage.path)
        }
    }

    @Test("a private key readable by group or others is refused")
    func tooOpenPrivateKey() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("k")
        try SigningKeyFile.createKeyPair(at: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
        let error = #expect(throws: ArtifactError.self) { try SigningKeyFile.readPrivateKey(from: url) }
        #expect(error?.code == .badKeyFile)
        #expect(error?.message.contains("0644") == true)
    }
}
