// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Vigil",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vigil", targets: ["vigil"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        .systemLibrary(name: "CSQLiteConfig", path: "Sources/CSQLiteConfig"),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .target(
            name: "VigilCore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilQuery",
            dependencies: ["VigilCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilStorage",
            dependencies: ["VigilCore", "VigilQuery"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilStorageSQLite",
            dependencies: [
                "VigilCore", "VigilQuery", "VigilStorage", "CZstd", "CSQLiteConfig",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilIntake",
            dependencies: [
                "VigilCore", "VigilStorage", "VigilParsing", "VigilThreatIntel", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilServer",
            dependencies: [
                "VigilCore", "VigilQuery", "VigilStorage", "VigilIntake", "VigilAlerts", "CZlib", "CZstd",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilSyslog",
            dependencies: [
                "VigilCore", "VigilQuery", "VigilIntake", "VigilParsing", "VigilStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilParsing",
            dependencies: ["VigilCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilThreatIntel",
            dependencies: ["VigilCore", "VigilQuery"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilSigma",
            dependencies: ["VigilCore", "VigilQuery", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VigilAlerts",
            dependencies: [
                "VigilCore", "VigilQuery", "VigilStorage", "VigilSigma",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "vigil",
            dependencies: [
                "VigilCore", "VigilQuery", "VigilStorage", "VigilStorageSQLite", "VigilIntake", "VigilServer", "VigilSyslog", "VigilAlerts", "VigilSigma", "VigilParsing", "VigilThreatIntel", "CMalloc",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "VigilCoreTests", dependencies: ["VigilCore"]),
        .testTarget(name: "VigilQueryTests", dependencies: ["VigilQuery", "VigilCore"]),
        .testTarget(name: "VigilStorageSQLiteTests", dependencies: ["VigilStorageSQLite", "VigilStorage", "VigilCore", "VigilQuery", "VigilIntake"]),
        .testTarget(name: "VigilIntakeTests", dependencies: ["VigilIntake", "VigilStorage", "VigilCore", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "VigilParsingTests", dependencies: ["VigilParsing", "VigilCore"]),
        .testTarget(name: "VigilThreatIntelTests", dependencies: ["VigilThreatIntel", "VigilCore"]),
        .testTarget(name: "VigilSigmaTests", dependencies: ["VigilSigma", "VigilParsing", "VigilCore"]),
        .testTarget(name: "VigilAlertsTests", dependencies: ["VigilAlerts", "VigilStorage", "VigilStorageSQLite", "VigilQuery", "VigilCore"]),
        .testTarget(name: "VigilSyslogTests", dependencies: ["VigilSyslog", "VigilIntake", "VigilStorage", "VigilStorageSQLite", "VigilCore", "VigilSigma", "VigilThreatIntel", "VigilQuery"]),
        .testTarget(name: "VigilServerTests", dependencies: [
            "VigilServer", "VigilIntake", "VigilStorage", "VigilStorageSQLite", "VigilCore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ]
)
