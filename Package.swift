// swift-tools-version: 6.1
import PackageDescription

let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let yams = Target.Dependency.product(name: "Yams", package: "Yams")
let grdb = Target.Dependency.product(name: "GRDB", package: "GRDB.swift")
/// The fleet's CA and the broker's TLS certificate (`tandem provision`).
let x509: [Target.Dependency] = [
    .product(name: "X509", package: "swift-certificates"), .product(name: "SwiftASN1", package: "swift-asn1"),
]
/// The cloud's HTTP API, metrics, service lifecycle and PostgreSQL store; only `TandemCloud` takes them, so
/// `tandem-edge` and the `tandem` CLI stay free of an HTTP server and database drivers.
let cloudServer: [Target.Dependency] = [
    .product(name: "Hummingbird", package: "hummingbird"),
    .product(name: "HummingbirdCore", package: "hummingbird"),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    .product(name: "Metrics", package: "swift-metrics"),
    .product(name: "Prometheus", package: "swift-prometheus"),
    .product(name: "Logging", package: "swift-log"),
    .product(name: "PostgresNIO", package: "postgres-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOSSL", package: "swift-nio-ssl"),
]

/// Release-grade code generation for the numeric kernels even in debug builds would hide bugs;
/// instead hot loops are written so the optimizer can vectorize them and benchmarks run `-c release`.
let package = Package(
    name: "Tandem",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TandemCore", targets: ["TandemCore"]),
        .library(name: "TandemTraining", targets: ["TandemTraining"]),
        .library(name: "TandemMQTT", targets: ["TandemMQTT"]),
        .library(name: "TandemProtocol", targets: ["TandemProtocol"]),
        .library(name: "TandemEdge", targets: ["TandemEdge"]),
        .library(name: "TandemFleet", targets: ["TandemFleet"]),
        .library(name: "TandemONNX", targets: ["TandemONNX"]),
        .executable(name: "tandem", targets: ["tandem"]),
        .executable(name: "tandem-edge", targets: ["tandem-edge"]),
        .library(name: "TandemCloud", targets: ["TandemCloud"]),
        .executable(name: "tandem-cloud", targets: ["tandem-cloud"]),
        // The fuzz targets' entry functions, for the libFuzzer executables in Fuzz/ and the corpus replay test.
        .library(name: "TandemFuzzTargets", targets: ["TandemFuzzTargets"]),
        .library(name: "TandemCloudFuzzTargets", targets: ["TandemCloudFuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", exact: "1.7.4"),
    ],
    targets: [
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        // The int8 engine's integer kernels: portable C plus AVX2 and AVX-512 VNNI versions compiled with
        // per-function target attributes and chosen at run time, so no -march flag is needed anywhere.
        .target(name: "CInt8Kernels"),
        // CPUID and XGETBV, which Swift cannot execute: what the CPU and the OS support, for choosing OpenBLAS's core.
        .target(name: "CCPUFeatures"),
        // prctl(2), which is variadic: the parent-death signal of `tandem-cloud serve --exit-with-parent`.
        .target(name: "CProcessControl"),
        // No target links OpenBLAS: TandemCore loads it at run time (Kernels/OpenBLAS.swift), after choosing its core
        // type (read only when the library initializes), and `tandem-edge` loads it only for a float32 model.
        .target(name: "TandemCore", dependencies: ["CInt8Kernels", "CCPUFeatures", crypto]),
        .target(name: "TandemTraining", dependencies: ["TandemCore", yams]),
        // ONNX import and export over a protobuf reader and writer of its own: no generated code, no Foundation.
        .target(name: "TandemONNX", dependencies: ["TandemCore"]),
        .target(name: "TandemMQTT", dependencies: ["CMosquitto"]),
        // The MQTT contract both sides speak (topics, payloads, status, labels, assignments); FoundationEssentials
        // only, so the edge binary does not grow.
        // TandemMQTT gives it CRC-32 (one implementation, shared with the outbox journal).
        .target(name: "TandemProtocol", dependencies: ["TandemMQTT"]),
        .target(name: "TandemEdge", dependencies: ["TandemCore", "TandemProtocol", "TandemMQTT"]),
        .executableTarget(
            name: "tandem-edge", dependencies: ["TandemEdge", "TandemMQTT", argumentParser],
            exclude: ["link-order.txt"],
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-Xclang-linker", "-pie", "-use-ld=lld",
                        "-Xlinker",
                        "--symbol-ordering-file=\(Context.packageDirectory)/Sources/tandem-edge/link-order.txt",
                        "-Xlinker", "--no-warn-symbol-ordering", "-Xlinker", "--no-export-dynamic",
                    ], .when(platforms: [.linux], configuration: .release))
            ]),
        // Registry, rollout, device statuses and provisioning: what both `tandem` and `tandem-cloud` drive, without a
        // server, a database or NIO, so the CLI links none of them.
        .target(name: "TandemFleet", dependencies: ["TandemCore", "TandemProtocol", "TandemMQTT", crypto] + x509),
        .target(
            name: "TandemCloud",
            dependencies: [
                "TandemCore", "TandemTraining", "TandemMQTT", "TandemProtocol", "TandemFleet", grdb, crypto,
            ] + cloudServer),
        // Command-line pieces the executables share (the broker flags).
        .target(name: "TandemCommandLine", dependencies: ["TandemMQTT", argumentParser]),
        .executableTarget(
            name: "tandem-cloud",
            dependencies: [
                "TandemCloud", "TandemFleet", "TandemCore", "TandemCommandLine", "CProcessControl", argumentParser,
                yams,
            ]),
        .executableTarget(
            name: "tandem",
            dependencies: [
                "TandemCore", "TandemTraining", "TandemMQTT", "TandemProtocol", "TandemEdge", "TandemFleet",
                "TandemONNX", "TandemCommandLine", argumentParser,
            ]),
        // One entry function per fuzz target (decode + what the receiver does next), shared by the libFuzzer
        // executables (Fuzz/, scripts/fuzz) and the corpus replay in `swift test`. The targets of the edge, the
        // protocol and the files need no server, so their sanitized build skips NIO, Hummingbird and the databases;
        // those of the cloud worker and the fleet view are a second module.
        .target(
            name: "TandemFuzzTargets",
            dependencies: ["TandemCore", "TandemMQTT", "TandemProtocol", "TandemEdge", crypto]),
        .target(
            name: "TandemCloudFuzzTargets",
            dependencies: [
                "TandemFuzzTargets", "TandemCore", "TandemMQTT", "TandemProtocol", "TandemFleet", "TandemCloud",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "TandemTestSupport", dependencies: ["TandemCore"], path: "Tests/TandemTestSupport"),
        .executableTarget(name: "tandem-mqtt-probe", dependencies: ["TandemMQTT"], path: "Tests/TandemMQTTProbe"),
        .testTarget(name: "TandemCoreTests", dependencies: ["TandemCore", "CInt8Kernels", "TandemTestSupport"]),
        // ONNX Runtime (python3, pip) is the independent peer these tests compare with.
        .testTarget(
            name: "TandemONNXTests",
            dependencies: ["TandemONNX", "TandemCore", "TandemTraining", "TandemTestSupport", "tandem"],
            exclude: ["Fixtures"]),
        .testTarget(name: "TandemTrainingTests", dependencies: ["TandemCore", "TandemTraining", "TandemTestSupport"]),
        .testTarget(name: "TandemMQTTTests", dependencies: ["TandemMQTT", "TandemTestSupport", "tandem-mqtt-probe"]),
        // The linkage test reads both executables' symbol tables, so both must be built.
        .testTarget(
            name: "TandemCLITests", dependencies: ["TandemCore", "TandemTestSupport", "tandem", "tandem-cloud"]),
        .testTarget(name: "TandemProtocolTests", dependencies: ["TandemProtocol", "TandemCore", "TandemMQTT"]),
        .testTarget(
            name: "TandemEdgeTests",
            dependencies: ["TandemEdge", "TandemProtocol", "TandemTraining", "TandemTestSupport"]),
        .target(
            name: "TandemFleetTestSupport", dependencies: ["TandemCore", "TandemFleet", "TandemTestSupport"],
            path: "Tests/TandemFleetTestSupport"),
        // TandemEdge and `tandem` are here for what the fleet code meets: agents that load what provisioning writes
        // and take what a rollout assigns, and the CLI that drives both.
        .testTarget(
            name: "TandemFleetTests",
            dependencies: [
                "TandemFleet", "TandemProtocol", "TandemMQTT", "TandemEdge", "TandemFleetTestSupport",
                "TandemTestSupport",
                "tandem",
            ]),
        .testTarget(
            name: "TandemFuzzTargetsTests",
            dependencies: ["TandemFuzzTargets", "TandemCloudFuzzTargets", "TandemTraining", "TandemMQTT", crypto]),
        .testTarget(
            name: "TandemCloudTests",
            dependencies: [
                "TandemCloud", "TandemFleet", "TandemProtocol", "TandemEdge", "TandemTraining", "TandemTestSupport",
                "TandemFleetTestSupport", "tandem-cloud", "tandem", "tandem-mqtt-probe", grdb,
                .product(name: "Logging", package: "swift-log"),
                // The fleet page's test serves the HTTP API in the test process.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
    ]
)
