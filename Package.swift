// swift-tools-version: 6.1
import PackageDescription

// The core library (CollectionSync) depends on libsqlite3, swift-log, the embedded schema and the
// API client (CollectionsAPI: swift-crypto, AsyncHTTPClient). The mock API server
// (CollectionsMock, a SwiftNIO server) must never enter its graph.
let package = Package(
    name: "collection-sync",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CollectionSync", targets: ["CollectionSync"]),
        .library(name: "CollectionsAPI", targets: ["CollectionsAPI"]),
        // A faithful, fault-injecting mock of the Collections API for users' own tests.
        .library(name: "CollectionsMock", targets: ["CollectionsMock"]),
        .executable(name: "syncctl", targets: ["syncctl"]),
        // libcollectionsync.so: the C interface (Sources/CCollectionSync/include/collectionsync.h).
        .library(name: "collectionsync", type: .dynamic, targets: ["CollectionSyncC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.25.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.8.0"),
        // The library emits metrics; the application chooses (and bootstraps) the backend.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        // `swift package generate-documentation` builds the DocC catalogs (CI checks them).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
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
                .embedInCode("0002_counters.sql"),
                .embedInCode("0003_counter_changes.sql"),
                .embedInCode("0004_counters_of_their_own.sql"),
                .embedInCode("0005_collections_offline.sql"),
                .embedInCode("0006_ops_checks_without_in_lists.sql"),
            ]
        ),
        .target(
            name: "CollectionSync",
            dependencies: [
                "CSQLite",
                "CollectionSyncSchema",
                "CollectionsAPI",
                .product(name: "Logging", package: "swift-log"),
                // A flush and the watch loop stop gracefully on a service group's shutdown.
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The remote API: requests, OAuth signer, response models, error classes, transport.
        .target(
            name: "CollectionsAPI",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The mock API server, directly on SwiftNIO (the faults need channel-level control:
        // drop a connection after applying, never answer, refuse and rebind the same port).
        // Nothing in the core library's graph depends on it.
        .target(
            name: "CollectionsMock",
            dependencies: [
                "CollectionsAPI",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"]
        ),
        // The JSON documents of syncctl.md, for syncctl's --json and the C library's results.
        .target(
            name: "SyncctlContract",
            dependencies: ["CollectionSync"]
        ),
        // The C interface: its header (include/collectionsync.h, what C programs include) ...
        .target(name: "CCollectionSync", exclude: ["install", "check", "valgrind.supp", "exports.map", "collectionsync.pc.in"]),
        // ... and @_cdecl functions over the Swift API that implement it.
        .target(
            name: "CollectionSyncC",
            dependencies: ["CCollectionSync", "CollectionSync", "SyncctlContract",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .executableTarget(
            name: "syncctl",
            dependencies: [
                "CollectionSync",
                "SyncctlContract",
                "CollectionsMock",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The example app (not a product): a terminal reading list that shows a collection live
        // while syncctl, in another process, edits, flushes and pulls. README "Using the library".
        .executableTarget(
            name: "reading-list",
            dependencies: ["CollectionSync"]
        ),
        // The measuring half of Benchmarks/compare (one case per run, JSON out); the
        // package-benchmark suite lives in its own package, Benchmarks/Suite.
        .executableTarget(
            name: "syncbench",
            dependencies: [
                "CSQLite",
                "CollectionSync",
                "CollectionSyncSchema",
                "CollectionsAPI",
                "CollectionsMock",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/Runner",
            exclude: ["C"]  // B10's C side, built by Benchmarks/compare with cc against the library
        ),
        // Helpers shared by the test targets: temporary folders, raw reads of a database file.
        .target(
            name: "TestSupport",
            dependencies: ["CSQLite",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "PropertyBased", package: "swift-property-based")],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "CollectionSyncTests",
            dependencies: ["CollectionSync", "CollectionsAPI", "CSQLite", "TestSupport",
                           .product(name: "PropertyBased", package: "swift-property-based")],
            // A database written by an earlier schema's code, for the migration tests.
            exclude: ["Fixtures", "PublicAPI"]
        ),
        .testTarget(
            name: "CollectionsAPITests",
            dependencies: ["CollectionsAPI", "TestSupport",
                           .product(name: "PropertyBased", package: "swift-property-based"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio")],
            exclude: ["Corpus"]
        ),
        .testTarget(
            name: "CollectionsMockTests",
            dependencies: ["CollectionsMock", "CollectionsAPI", "TestSupport",
                           .product(name: "PropertyBased", package: "swift-property-based"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        // The worker against the real mock over loopback, and crash tests of the real binary.
        .testTarget(
            name: "SyncIntegrationTests",
            dependencies: ["CollectionSync", "CollectionsAPI", "CollectionsMock", "TestSupport",
                           .product(name: "PropertyBased", package: "swift-property-based"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "MetricsTestKit", package: "swift-metrics"),
                           // The DocC snippets run the engine in a ServiceGroup (SnippetTests.swift).
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        // The C interface from C programs built with the system compiler against the header.
        .testTarget(
            name: "CInterfaceTests",
            dependencies: ["CollectionSyncC", "CollectionsMock", "TestSupport"],
            exclude: ["store.c", "sync.c", "threads.c", "collections.c", "header.cpp", "example.c", "example.py"]
        ),
        .testTarget(
            name: "SyncctlTests",
            // Depending on the executable makes `swift test` build the binary the tests run.
            dependencies: ["syncctl", "reading-list", "CollectionSync", "SyncctlContract", "CollectionsMock", "TestSupport",
                           .product(name: "PropertyBased", package: "swift-property-based")]
        ),
    ]
)
