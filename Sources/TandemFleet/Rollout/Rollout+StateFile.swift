import Foundation

extension Rollout {
    /// Reads a rollout state file (`rollout-{fleet}.json`, dates in seconds since 1970).
    ///
    /// A saved reference (a device's counters, its own word) outside 0…``DeviceStatus/maximumCount`` is dropped and
    /// taken afresh at the next observation, so a number a device once reported cannot stop a restart.
    ///
    /// - Throws: ``RegistryError`` (`io`) if it cannot be read or is not a rollout.
    public static func read(from url: URL) throws(RegistryError) -> Rollout {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: url))
        } catch {
            throw RegistryError(.io, "not a rollout state file: \(error)", path: url.path)
        }
        do {
            return try Rollout(stateFile: bytes)
        } catch {
            throw RegistryError(.io, error.message, path: url.path)
        }
    }

    /// Reads the contents of a rollout state file.
    ///
    /// - Throws: ``RegistryError`` (`io`) if the bytes are not a rollout.
    public init(stateFile bytes: [UInt8]) throws(RegistryError) {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do {
            self = try decoder.decode(Rollout.self, from: Data(bytes)).droppingImplausibleReferences()
        } catch {
            throw RegistryError(.io, "not a rollout state file: \(error)")
        }
    }

    /// The contents of its state file: JSON with sorted keys, dates in seconds since 1970, and a final newline.
    ///
    /// - Throws: ``RegistryError`` (`io`) if it cannot be encoded.
    public func stateFileContents() throws(RegistryError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        do {
            return Array(try encoder.encode(self)) + [0x0A]
        } catch {
            throw RegistryError(.io, "cannot encode the rollout: \(error)")
        }
    }

    /// The state files of every fleet's current or last rollout in a registry's directory, by file name.
    public static func stateFiles(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix("rollout-") && $0.hasSuffix(".json") }.sorted()
            .map { directory.appendingPathComponent($0) }
    }
}
