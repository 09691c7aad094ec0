// swift-tools-version: 6.1
import Foundation
import PackageDescription

// A path dependency is named after its folder: the clone's folder, whatever it is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent

// package-benchmark suite for the engine's hot paths, in its own package so that its
// dependencies never slow the main build. Run from this folder:
//   swift package benchmark                                  # run and print
//   swift package benchmark thresholds check                 # compare with Thresholds/ (fails on a regression)
//   swift package --allow-writing-to-package-directory benchmark thresholds update   # after an intended change
let package = Package(
    name: "collection-sync-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "StoreBenchmarks",
            dependencies: [
                .product(name: "CollectionSync", package: root),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/StoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
