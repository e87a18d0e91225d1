import Foundation
import TandemCore

/// Devices held on a chosen version, kept in `pins-{fleet}.json` beside the fleet's rollout state.
///
/// A pinned device is assigned its pinned version and keeps it: the desired state (``DesiredState``) honours the
/// pin over the rollout and production, and rollouts leave the device out of their assignments. The file is
/// `{"fleet": …, "pins": {device: version}}` with sorted keys, replaced atomically (``AtomicFile``); it is re-read
/// at every use, so a pin set by `tandem rollout pin` is seen by a running controller at its next step.
public struct DevicePins: Sendable {
    /// The data directory (the registry's).
    public let directory: URL
    /// The fleet.
    public let fleet: String

    /// The pins of `fleet` in `directory`.
    public init(directory: URL, fleet: String) {
        self.directory = directory
        self.fleet = fleet
    }

    /// `pins-{fleet}.json`.
    public var url: URL { directory.appendingPathComponent("pins-\(fleet).json") }

    private struct File: Codable {
        var fleet: String
        var pins: [String: String]
    }

    /// The pinned devices and their versions; empty if nothing was ever pinned.
    ///
    /// - Throws: ``RegistryError`` (`io`) if the file exists but is not a pin file of this fleet.
    public func read() throws(RegistryError) -> [String: String] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [:] }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        } catch {
            throw RegistryError(
                .io, "not a pin file ({\"fleet\": …, \"pins\": {device: version}}): \(error)", path: url.path)
        }
        guard file.fleet == fleet else {
            throw RegistryError(.io, "the pin file is for fleet \(file.fleet), not \(fleet)", path: url.path)
        }
        return file.pins
    }

    /// Pins `device` to `version` (replacing an earlier pin of the device).
    ///
    /// - Throws: ``RegistryError`` (`io`) if the file cannot be read or written.
    public func pin(_ device: String, to version: String) throws(RegistryError) {
        var pins = try read()
        pins[device] = version
        try write(pins)
    }

    /// Removes the pin of `device`.
    ///
    /// - Returns: The version it was pinned to, or nil if it was not pinned (the file is then left as it is).
    /// - Throws: ``RegistryError`` (`io`) if the file cannot be read or written.
    @discardableResult
    public func unpin(_ device: String) throws(RegistryError) -> String? {
        var pins = try read()
        guard let version = pins.removeValue(forKey: device) else { return nil }
        try write(pins)
        return version
    }

    private func write(_ pins: [String: String]) throws(RegistryError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            let data = try encoder.encode(File(fleet: fleet, pins: pins))
            try AtomicFile.write(Array(data) + [0x0A], to: url)
        } catch {
            throw RegistryError(.io, "cannot write the pins: \(error)", path: url.path)
        }
    }
}
