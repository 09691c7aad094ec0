// swift-tools-version: 6.1
import PackageDescription

// The core library (CollectionSync) depends only on libsqlite3, swift-log and the embedded
// schema. Server-side dependencies (the mock API) must never enter its graph.
let package = Package(
    name: "collection-sync",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CollectionSync", targets: ["CollectionSync"]),
        .executable(name: "syncctl", targets: ["syncctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CSQLite",
            path: "Sources/CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // Numbered, append-only SQL migrations, embedded into the binary at build time.
        // Every file here must be listed (a test checks that none is forgotten).
        .target(
            name: "CollectionSyncSchema",
            path: "Schema",
            exclude: ["README.md"],
            resources: [
                .embedInCode("0001_init.sql"),
            ]
        ),
        .target(
            name: "CollectionSync",
            dependencies: [
                "CSQLite",
                "CollectionSyncSchema",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "syncctl",
            dependencies: [
                "CollectionSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Helpers shared by the test targets: temporary folders, raw reads of a database file.
        .target(
            name: "TestSupport",
            dependencies: ["CSQLite"],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "CollectionSyncTests",
            dependencies: ["CollectionSync", "CSQLite", "TestSupport"]
        ),
        .testTarget(
            name: "SyncctlTests",
            // Depending on the executable makes `swift test` build the binary the tests run.
            dependencies: ["syncctl", "CollectionSync", "TestSupport"]
        ),
    ]
)
