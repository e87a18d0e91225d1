// swift-tools-version: 6.1
import Foundation
import PackageDescription

// The libFuzzer executables, kept out of the main package: they are built only with `-sanitize=fuzzer,address`
// (scripts/fuzz), which links libFuzzer, whose driver their `main` calls. A path dependency's identity is its
// directory's name, which is whatever the checkout is called.
let root = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent()
let rootIdentity = root.lastPathComponent.lowercased()

// gold fails on these sanitized links (an internal error in its DWARF reader); lld links them.
let lld: [LinkerSetting] = [.unsafeFlags(["-use-ld=lld"])]

let package = Package(
    name: "TandemFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "..")],
    targets: [
        // libFuzzer's driver, declared for Swift.
        .target(name: "CLibFuzzer"),
        // The targets that need no server: the edge, the protocol, artifacts, the outbox, the data readers.
        .executableTarget(
            name: "tandem-fuzz",
            dependencies: ["CLibFuzzer", .product(name: "TandemFuzzTargets", package: rootIdentity)],
            linkerSettings: lld),
        // The cloud's targets, whose build takes in NIO, Hummingbird and the database drivers.
        .executableTarget(
            name: "tandem-fuzz-cloud",
            dependencies: [
                "CLibFuzzer", .product(name: "TandemFuzzTargets", package: rootIdentity),
                .product(name: "TandemCloudFuzzTargets", package: rootIdentity),
            ],
            linkerSettings: lld),
    ]
)
