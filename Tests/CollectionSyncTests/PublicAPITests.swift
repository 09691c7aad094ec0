import Foundation
import Testing

/// The public API of the libraries, written down in `PublicAPI/<module>.txt`, one declaration a
/// line (from the compiler's symbol graph, SPI left out). A change to the API shows in review as a
/// change to that file; this test fails until the file is rewritten with
///
///     UPDATE_API_LISTING=1 swift test --filter PublicAPITests
@Suite("Public API listing")
struct PublicAPITests {
    static let modules = ["CollectionSync", "CollectionsAPI", "CollectionsMock"]

    @Test("the public API is the one written down", arguments: modules)
    func listing(module: String) throws {
        let listed = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("PublicAPI/\(module).txt")
        let current = try SymbolGraph.publicListing(of: module)
        if ProcessInfo.processInfo.environment["UPDATE_API_LISTING"] == "1" {
            try current.write(to: listed, atomically: true, encoding: .utf8)
            return
        }
        let written = (try? String(contentsOf: listed, encoding: .utf8)) ?? ""
        let added = Set(lines(current)).subtracting(lines(written)).sorted()
        let removed = Set(lines(written)).subtracting(lines(current)).sorted()
        #expect(added.isEmpty && removed.isEmpty, """
            The public API of \(module) differs from Tests/CollectionSyncTests/PublicAPI/\(module).txt.
            If that is intended, rewrite the file (UPDATE_API_LISTING=1 swift test --filter PublicAPITests) \
            and let review see it.
            added:
            \(added.joined(separator: "\n"))
            removed:
            \(removed.joined(separator: "\n"))
            """)
    }

    @Test("worker internals stay out of the public API")
    func workerInternalsAreSPI() throws {
        let listing = try SymbolGraph.publicListing(of: "CollectionSync")
        for name in ["claimDueOps", "complete(_:lease:)", "FlusherLease", "acquireFlusherLease", "recordRateLimit",
                     "recordAPISuccess", "recordClockOffset", "beginPull", "mergePull", "HybridLogicalClock"] {
            #expect(!listing.contains(name), "\(name) is public")
        }
        // The client's clock offset is set by the engine only.
        let api = try SymbolGraph.publicListing(of: "CollectionsAPI")
        #expect(api.contains("var clockOffset: Duration { get }"))
    }

    private func lines(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init)
    }
}

/// The compiler's symbol graph of a module of this package, read from the build folder the tests
/// run from.
enum SymbolGraph {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// One line per public symbol (`kind path: declaration`) and per conformance, sorted.
    static func publicListing(of module: String) throws -> String {
        let graph = try extract(module)
        let object = try JSONSerialization.jsonObject(with: graph) as? [String: Any] ?? [:]
        let symbols = object["symbols"] as? [[String: Any]] ?? []
        var names: [String: String] = [:]
        var lines: [String] = []
        for symbol in symbols {
            let precise = (symbol["identifier"] as? [String: Any])?["precise"] as? String ?? ""
            let path = (symbol["pathComponents"] as? [String] ?? []).joined(separator: ".")
            names[precise] = path
            // Members a protocol gives every conforming type (`!=`, `...`) are not ours.
            if precise.contains("::SYNTHESIZED::") { continue }
            let kind = ((symbol["kind"] as? [String: Any])?["identifier"] as? String ?? "")
                .replacingOccurrences(of: "swift.", with: "")
            let fragments = symbol["declarationFragments"] as? [[String: Any]] ?? []
            let declaration = fragments.map { $0["spelling"] as? String ?? "" }.joined()
                .split(whereSeparator: \.isWhitespace).joined(separator: " ")
            lines.append("\(kind) \(path): \(declaration)")
        }
        for relation in object["relationships"] as? [[String: Any]] ?? [] where relation["kind"] as? String == "conformsTo" {
            guard let source = relation["source"] as? String, let type = names[source],
                  !source.contains("::SYNTHESIZED::") else { continue }
            let target = relation["targetFallback"] as? String
                ?? names[relation["target"] as? String ?? ""] ?? relation["target"] as? String ?? "?"
            lines.append("conformance \(type): \(target)")
        }
        return Set(lines).sorted().joined(separator: "\n") + "\n"
    }

    /// Runs `swift-symbolgraph-extract` on the module the build left in `<build>/Modules`.
    private static func extract(_ module: String) throws -> Data {
        // The test bundle sits in <scratch>/<triple>/<configuration>/.
        let bundle = URL(fileURLWithPath: CommandLine.arguments.first { $0.contains(".xctest") }
            ?? Bundle.main.bundlePath)
        var build = bundle.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: build.appendingPathComponent("Modules/\(module).swiftmodule").path) {
            guard build.path != "/" else {
                throw Failure(description: "no \(module).swiftmodule above \(bundle.path)")
            }
            build = build.deletingLastPathComponent()
        }
        let triple = build.deletingLastPathComponent().lastPathComponent
        let scratch = build.deletingLastPathComponent().deletingLastPathComponent()
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        // The C modules the Swift modules import (NIO's shims, our CSQLite) must be found too.
        var arguments = ["-module-name", module, "-I", build.appendingPathComponent("Modules").path,
                         "-target", triple, "-minimum-access-level", "public"]
        let maps = files(named: "module.modulemap", under: build, depth: 2)
            + files(named: "module.modulemap", under: scratch.appendingPathComponent("checkouts"), depth: 12)
            + [package.appendingPathComponent("Sources/CSQLite/module.modulemap")]
        for map in maps { arguments += ["-Xcc", "-fmodule-map-file=\(map.path)"] }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("symbols-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: output) }
        arguments += ["-output-dir", output.path]

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift-symbolgraph-extract"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "swift-symbolgraph-extract failed: \(String(decoding: message, as: UTF8.self))")
        }
        return try Data(contentsOf: output.appendingPathComponent("\(module).symbols.json"))
    }

    private static func files(named name: String, under root: URL, depth: Int) -> [URL] {
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var found: [URL] = []
        for case let url as URL in walker {
            if walker.level > depth { walker.skipDescendants(); continue }
            if url.lastPathComponent == name { found.append(url) }
        }
        return found
    }
}
