import Foundation
import Synchronization
import TandemCore
import TandemFleet

/// The input specs of edge model versions, so an escalated window can be brought from the standardization
/// of the edge model that escalated it to the full model's.
///
/// Starts with the versions it is given and, with a registry, learns the others from it: a version seen for
/// the first time (a model the trainer or an operator registered after this worker started) is looked up
/// in the registry and remembered. A version the registry does not know is asked again at most every
/// `retrySeconds`, so an escalation from a model registered by another process a moment later is soon
/// mapped, without reading the registry for every window meanwhile.
public final class EdgeInputCatalog: Sendable {
    private struct State {
        var known: [String: InputSpec]
        var missing: [String: Double] = [:]
    }

    private let state: Mutex<State>
    private let registry: ModelRegistry?
    private let retrySeconds: Double

    /// A catalog of `known` versions that asks `registry` about the rest.
    public init(known: [String: InputSpec] = [:], registry: ModelRegistry? = nil, retrySeconds: Double = 5) {
        state = Mutex(State(known: known))
        self.registry = registry
        self.retrySeconds = retrySeconds
    }

    /// The input spec of `version`, or nil if neither the catalog nor the registry knows it.
    ///
    /// Reads the registry (on the caller's thread) only for a version not seen before, or not found the last
    /// time more than `retrySeconds` ago.
    public func spec(for version: String, now: Double = Date().timeIntervalSince1970) -> InputSpec? {
        let cached: InputSpec?? = state.withLock { state in
            if let spec = state.known[version] { return .some(spec) }
            if let asked = state.missing[version], now - asked < retrySeconds { return .some(nil) }
            return nil
        }
        if let cached { return cached }
        guard let registry, let artifact = try? registry.artifact(version: version) else {
            state.withLock { $0.missing[version] = now }
            return nil
        }
        let spec = artifact.manifest.input
        state.withLock {
            $0.known[version] = spec
            $0.missing[version] = nil
        }
        return spec
    }

    /// Remembers `spec` for `version` (a model this process registered itself).
    public func learn(_ version: String, _ spec: InputSpec) {
        state.withLock {
            $0.known[version] = spec
            $0.missing[version] = nil
        }
    }

    /// The versions known so far and their specs.
    public var known: [String: InputSpec] { state.withLock { $0.known } }
}
