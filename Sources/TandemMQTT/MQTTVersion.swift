import CMosquitto

/// The version of the linked libmosquitto, as `(major, minor, revision)`.
public func libmosquittoVersion() -> (major: Int, minor: Int, revision: Int) {
    var major: Int32 = 0
    var minor: Int32 = 0
    var revision: Int32 = 0
    mosquitto_lib_version(&major, &minor, &revision)
    return (Int(major), Int(minor), Int(revision))
}
