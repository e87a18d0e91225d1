import TandemCore

/// The edge agent's library: sources, windowing, policy, sinks and model updates.
///
/// Data flows `LineSource` → `SampleLineParser` → `StreamWindower` → `WindowClassifier` →
/// `EscalationPolicy` → `PredictionSink`; ``EdgeAgent`` wires these together from an
/// ``AgentConfiguration``.
public enum TandemEdge {}
