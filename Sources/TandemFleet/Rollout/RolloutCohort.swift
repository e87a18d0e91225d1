import Crypto

/// Which devices take part in a canary: those whose stable bucket falls below the canary percentage.
///
/// A device's bucket is the first 8 bytes of SHA-256 over its id (UTF-8), read big-endian, modulo 10,000.
/// It depends on nothing but the id — not on Swift's per-process randomized `Hasher`, the fleet's size
/// or the order devices are seen — so every process, and every later rollout with the same percentage,
/// picks the same devices, and raising the percentage only adds devices.
public enum RolloutCohort {
    /// Buckets per fleet: a percentage has two decimals of resolution.
    public static let bucketCount: UInt64 = 10_000

    /// The device's bucket, 0..<10,000.
    public static func bucket(of device: String) -> Int {
        let digest = Array(SHA256.hash(data: Array(device.utf8)))
        let prefix = digest.prefix(8).reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
        return Int(prefix % bucketCount)
    }

    /// Whether `device` is in the canary cohort of `percent` (0…100).
    public static func contains(_ device: String, percent: Double) -> Bool {
        Double(bucket(of: device)) < percent * 100
    }

    /// The devices of `devices` in the cohort of `percent`, sorted.
    public static func select(_ devices: some Sequence<String>, percent: Double) -> [String] {
        Set(devices).filter { contains($0, percent: percent) }.sorted()
    }
}
