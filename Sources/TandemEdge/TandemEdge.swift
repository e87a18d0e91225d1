import TandemCore

/// The edge agent's library: sources, windowing, policy, sinks and model updates.
public enum TandemEdge {}
