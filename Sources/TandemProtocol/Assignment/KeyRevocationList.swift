#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The fleet's signed list of revoked signing keys, retained on `tandem/v1/{fleet}/keys/revocations`.
///
/// `{"fleet":"plant","keyId":"…","revoked":["0123456789abcdef"],"sequence":2,"signature":"…","v":1}`. Signed
/// (over ``signedBytes``) by a key the devices trust that it does not revoke. A device takes a list only if its
/// `sequence` is above the last list it took, and revocations only accumulate: a key once revoked stays revoked
/// on that device, so an older list replayed (or a newer one that leaves a key out) brings nothing back. From
/// then on the device refuses everything a revoked key signed: artifacts, assignments and later lists
/// (docs/PROTOCOL.md, "Key revocation list").
public struct KeyRevocationList: Sendable, Equatable {
    /// The fleet it is for.
    public var fleet: String
    /// Its place in the fleet's order of revocation lists (its own numbering, apart from assignments').
    public var sequence: UInt64
    /// Ids of the revoked keys (16 lower-case hex digits each), sorted, without repeats.
    public private(set) var revokedKeyIDs: [String]
    /// The signature over ``signedBytes``; nil before signing.
    public var signature: MessageSignature?

    /// The most keys a list names.
    public static let maximumKeys = 4096
    /// The largest list message read.
    public static let maximumMessageBytes = 128 * 1024
    /// The context string the signed bytes start with (followed by a zero byte).
    public static let signatureContext = "tandem-key-revocations-v1"

    /// An unsigned list.
    ///
    /// - Parameters:
    ///   - fleet: The fleet.
    ///   - sequence: Above the fleet's previous list's.
    ///   - revokedKeyIDs: Key ids, 16 lower-case hex digits each; sorted and deduplicated here.
    /// - Throws: ``PayloadError`` (`malformed`) if an id is not 16 lower-case hex digits, there are more than
    ///   ``maximumKeys``, the fleet is not topic-safe or the sequence is out of range.
    public init(fleet: String, sequence: UInt64, revokedKeyIDs: [String]) throws(PayloadError) {
        guard ModelAssignment.isName(fleet) else {
            throw PayloadError(.malformed, "revocation list needs a topic-safe fleet")
        }
        guard (1...ModelAssignment.maximumNumber).contains(sequence) else {
            throw PayloadError(
                .malformed, "revocation list sequence \(sequence) is outside 1…\(ModelAssignment.maximumNumber)")
        }
        let ids = Array(Set(revokedKeyIDs)).sorted()
        guard ids.count <= Self.maximumKeys else {
            throw PayloadError(.malformed, "revocation list names \(ids.count) keys, more than \(Self.maximumKeys)")
        }
        if let bad = ids.first(where: { !Hex.isKeyID($0) }) {
            throw PayloadError(.malformed, "revocation list key id '\(bad.prefix(32))' is not 16 lower-case hex digits")
        }
        self.fleet = fleet
        self.sequence = sequence
        self.revokedKeyIDs = ids
        signature = nil
    }

    /// The bytes the signature covers (docs/PROTOCOL.md, "Signed bytes"): the context string and a zero byte,
    /// the format version, the fleet (u16 length + UTF-8), the sequence (u64), the number of keys (u32) and
    /// each key id's 8 bytes in ascending order.
    public var signedBytes: [UInt8] {
        var writer = CanonicalBytes(context: Self.signatureContext)
        writer.append(UInt8(1))
        writer.append(fleet)
        writer.append(sequence)
        writer.append(UInt32(revokedKeyIDs.count))
        for id in revokedKeyIDs { writer.append(raw: Hex.decode(id, byteCount: 8) ?? []) }
        return writer.bytes
    }

    /// Reads a list message. The signature is not checked here; a list without one is refused.
    ///
    /// - Throws: ``PayloadError`` (`malformed`, `unsupportedVersion`) saying what is wrong.
    public init(decoding bytes: [UInt8]) throws(PayloadError) {
        guard bytes.count <= Self.maximumMessageBytes else {
            throw PayloadError(
                .malformed, "revocation list of \(bytes.count) bytes, more than \(Self.maximumMessageBytes)")
        }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch {
            throw PayloadError(
                .malformed, "revocation list is not {v, fleet, sequence, revoked, keyId, signature} JSON")
        }
        guard wire.v == 1 else {
            throw PayloadError(.unsupportedVersion, "revocation list version \(wire.v), this agent reads 1")
        }
        try self.init(fleet: wire.fleet, sequence: wire.sequence, revokedKeyIDs: wire.revoked)
        guard wire.revoked == revokedKeyIDs else {
            throw PayloadError(.malformed, "revocation list keys must be sorted and without repeats")
        }
        guard let signature = MessageSignature(keyIDHex: wire.keyId, signatureHex: wire.signature) else {
            throw PayloadError(.malformed, "revocation list needs keyId (16 hex digits) and signature (128 hex digits)")
        }
        self.signature = signature
    }

    /// The JSON bytes, keys sorted.
    public func encoded() -> [UInt8] {
        let wire = Wire(
            v: 1, fleet: fleet, sequence: sequence, revoked: revokedKeyIDs, keyId: signature?.keyIDHex ?? "",
            signature: signature?.signatureHex ?? "")
        return signedMessageJSON(wire)
    }

    private struct Wire: Codable {
        var v: Int
        var fleet: String
        var sequence: UInt64
        var revoked: [String]
        var keyId: String
        var signature: String
    }
}
