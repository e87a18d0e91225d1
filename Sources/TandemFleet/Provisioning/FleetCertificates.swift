import Crypto
import Foundation
import SwiftASN1
import X509

/// The fleet's own certificate authority: it signs the broker's TLS certificate (and, when wanted, devices'
/// client certificates), and its certificate is the one CA every device and cloud worker trusts for the broker.
///
/// Files in one directory, PEM: `ca.crt` (give it to every client), `ca.key` (mode 0600; keep it on the
/// provisioning machine), and per issued certificate `NAME.crt` + `NAME.key` (0600). Keys are ECDSA P-256.
public struct FleetCertificateAuthority: Sendable {
    /// The directory holding the CA's files.
    public let directory: String
    let key: P256.Signing.PrivateKey
    let certificate: Certificate

    /// How long the CA is valid.
    public static let authorityLifetime: TimeInterval = 10 * 365 * 86_400
    /// How long a certificate it issues is valid (825 days, the longest clients commonly accept for a server).
    public static let leafLifetime: TimeInterval = 825 * 86_400

    /// The CA certificate's path.
    public var certificatePath: String { (directory as NSString).appendingPathComponent("ca.crt") }

    /// Opens the CA in `directory`, creating it (directory, key and self-signed certificate) when it has none.
    ///
    /// - Throws: ``ProvisioningError`` (`io`) when the files cannot be read, parsed or written.
    public static func openOrCreate(in directory: String, name: String = "Tandem fleet CA") throws(ProvisioningError)
        -> FleetCertificateAuthority
    {
        let keyPath = (directory as NSString).appendingPathComponent("ca.key")
        let certificatePath = (directory as NSString).appendingPathComponent("ca.crt")
        let manager = FileManager.default
        if manager.fileExists(atPath: keyPath) || manager.fileExists(atPath: certificatePath) {
            do {
                let key = try P256.Signing.PrivateKey(
                    pemRepresentation: String(contentsOfFile: keyPath, encoding: .utf8))
                let certificate = try Certificate(pemEncoded: String(contentsOfFile: certificatePath, encoding: .utf8))
                guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
                    throw ProvisioningError(.io, "\(certificatePath) does not belong to \(keyPath)")
                }
                return FleetCertificateAuthority(directory: directory, key: key, certificate: certificate)
            } catch let error as ProvisioningError {
                throw error
            } catch {
                throw ProvisioningError(.io, "the CA in \(directory) cannot be read: \(error)")
            }
        }
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let key = P256.Signing.PrivateKey()
            let subject = try DistinguishedName {
                OrganizationName("Tandem")
                CommonName(name)
            }
            let now = Date()
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                notValidBefore: now - 300, notValidAfter: now + authorityLifetime, issuer: subject, subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: .init(key.publicKey))
                },
                issuerPrivateKey: .init(key))
            try writeAtomically(key.pemRepresentation + "\n", to: keyPath, mode: 0o600)
            try writeAtomically(try certificate.serializeAsPEM().pemString + "\n", to: certificatePath, mode: 0o644)
            return FleetCertificateAuthority(directory: directory, key: key, certificate: certificate)
        } catch let error as ProvisioningError {
            throw error
        } catch {
            throw ProvisioningError(.io, "cannot create a CA in \(directory): \(error)")
        }
    }

    /// What a certificate is for.
    public enum Usage: Sendable {
        /// A broker: the names clients connect to (DNS names or IP addresses), checked by every client.
        case server(hosts: [String])
        /// A client (device or worker) that authenticates with its certificate as well as its password.
        case client
    }

    /// Issues a certificate for `commonName` and writes `NAME.crt` and `NAME.key` (0600) into the CA's directory
    /// (replacing earlier ones); returns their paths.
    ///
    /// - Throws: ``ProvisioningError`` (`invalidName` for a server without hosts, `io` when writing fails).
    @discardableResult
    public func issue(_ usage: Usage, commonName: String, fileName: String) throws(ProvisioningError) -> (
        certificate: String, key: String
    ) {
        let key = P256.Signing.PrivateKey()
        let certificatePath = (directory as NSString).appendingPathComponent("\(fileName).crt")
        let keyPath = (directory as NSString).appendingPathComponent("\(fileName).key")
        do {
            let subject = try DistinguishedName {
                OrganizationName("Tandem")
                CommonName(commonName)
            }
            let now = Date()
            let issuerKeyID = SubjectKeyIdentifier(hash: .init(self.key.publicKey)).keyIdentifier
            let extensions: Certificate.Extensions
            switch usage {
            case .server(let hosts):
                guard !hosts.isEmpty else {
                    throw ProvisioningError(
                        .invalidName, "a broker certificate needs at least one host name or address")
                }
                extensions = try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames(hosts.map(Self.generalName))
                    AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
                }
            case .client:
                extensions = try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.clientAuth])
                    AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
                }
            }
            let leaf = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                notValidBefore: now - 300, notValidAfter: now + Self.leafLifetime, issuer: certificate.subject,
                subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
                issuerPrivateKey: .init(self.key))
            try writeAtomically(key.pemRepresentation + "\n", to: keyPath, mode: 0o600)
            try writeAtomically(try leaf.serializeAsPEM().pemString + "\n", to: certificatePath, mode: 0o644)
        } catch let error as ProvisioningError {
            throw error
        } catch {
            throw ProvisioningError(.io, "cannot issue a certificate for \(commonName): \(error)")
        }
        return (certificatePath, keyPath)
    }

    /// An IP address (v4 or v6) as an address name, anything else as a DNS name.
    static func generalName(_ host: String) -> GeneralName {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v4) { ArraySlice($0) }))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v6) { ArraySlice($0) }))
        }
        return .dnsName(host)
    }
}
