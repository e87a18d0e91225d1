import Foundation

extension Rollout {
    /// Reads a rollout state file (`rollout-{fleet}.json`, dates in seconds since 1970).
    ///
    /// A saved reference (a device's counters, its own word) outside 0…``DeviceStatus/maximumCount`` is dropped and
    /// taken afresh at the next observation, so a number a device once reported cannot stop a restart.
    ///
    /// - Throws: ``RegistryError`` (`io`) if it cannot be read or is not a rollout.
    public static func read(from url: URL) throws(RegistryError) -> Rollout {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do {
            return try decoder.decode(Rollout.self, from: Data(contentsOf: url)).droppingImplausibleReferences()
        } catch {
            throw RegistryError(.io, "not a rollout state file: \(error)", path: url.path)
        }
    }

    /// The state files of every fleet's current or last rollout in a registry's directory, by file name.
    public static func stateFiles(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix("rollout-") && $0.hasSuffix(".json") }.sorted()
            .map { directory.appendingPathComponent($0) }
    }
}
