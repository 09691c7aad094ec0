import ArgumentParser
import CollectionSync
import CollectionSyncJSON
import CollectionsAPI
import Foundation
import Logging

/// Options of the commands that talk to the API.
struct NetworkOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The API base URL (default: $SYNCCTL_API_BASE, else https://api.twitter.com/1.1). Plain http only for loopback hosts.",
        valueName: "url"))
    var apiBase: String?

    @Option(name: .long, help: ArgumentHelp(
        "A KEY=value credentials file (default: $SYNCCTL_CREDENTIALS), readable by its owner only; replaces the environment's credentials.",
        valueName: "path"))
    var credentials: String?

    static let defaultAPIBase = "https://api.twitter.com/1.1"
    static let oauthNames = ["TWITTER_CONSUMER_KEY", "TWITTER_CONSUMER_SECRET", "TWITTER_ACCESS_TOKEN", "TWITTER_ACCESS_TOKEN_SECRET"]
    static let bearerName = "TWITTER_BEARER_TOKEN"
    static let userIDName = "TWITTER_USER_ID"

    /// The base URL: flag, then environment, then default; checked (https, or http to loopback).
    func resolvedAPIBase(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        do {
            return try CollectionsClient.validate(baseURL: apiBaseSetting(environment: environment).url)
        } catch let error as CollectionsAPIError {
            throw Failure(exitCode: Exit.config, message: error.message)
        }
    }

    /// The base URL as given (not checked) and where it came from.
    func apiBaseSetting(environment: [String: String] = ProcessInfo.processInfo.environment) -> (url: String, source: String) {
        if let apiBase, !apiBase.isEmpty { return (apiBase, "--api-base") }
        if let url = environment["SYNCCTL_API_BASE"], !url.isEmpty { return (url, "SYNCCTL_API_BASE") }
        return (Self.defaultAPIBase, "the default")
    }

    /// The credentials file, if one is given, and where it was named.
    func credentialsFileSetting(environment: [String: String] = ProcessInfo.processInfo.environment) -> (path: String, source: String)? {
        if let credentials, !credentials.isEmpty { return (credentials, "--credentials") }
        if let path = environment["SYNCCTL_CREDENTIALS"], !path.isEmpty { return (path, "SYNCCTL_CREDENTIALS") }
        return nil
    }

    /// Credentials from the credentials file when one is given, else from the environment.
    /// Empty values count as absent; the four OAuth 1.0a values go together.
    func resolvedCredentials(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> APICredentials {
        var values = environment
        if let file = credentialsFileSetting(environment: environment) {
            values = try CredentialsFile.read(file.path)
        }
        return try Self.credentials(from: values)
    }

    /// The credentials `values` (the environment's, or a credentials file's) hold.
    static func credentials(from values: [String: String]) throws -> APICredentials {
        let oauth = oauthNames.map { values[$0].flatMap { $0.isEmpty ? nil : $0 } }
        let present = oauth.compactMap { $0 }
        if present.count == 4 {
            return .oauth1(consumerKey: present[0], consumerSecret: present[1], accessToken: present[2], accessTokenSecret: present[3])
        }
        if !present.isEmpty {
            let missing = zip(oauthNames, oauth).filter { $0.1 == nil }.map(\.0)
            throw Failure(exitCode: Exit.config, message: "incomplete OAuth 1.0a credentials: \(missing.joined(separator: ", ")) missing (the four values go together)")
        }
        if let bearer = values[bearerName], !bearer.isEmpty { return .bearer(bearer) }
        throw Failure(exitCode: Exit.config, message: "no credentials: set \(oauthNames.joined(separator: ", ")) or \(bearerName), or give --credentials FILE")
    }

    /// Runs `body` with an engine over a fresh transport, which is shut down afterwards whether
    /// `body` throws or not. Configuration problems throw before any connection exists.
    func withEngine<T>(store: SyncStore, configure: (inout SyncEngine.Configuration) -> Void = { _ in },
                       logger: Logger = Logger(label: "syncctl"),
                       _ body: (SyncEngine) async throws -> T) async throws -> T {
        let base = try resolvedAPIBase()
        let credentials = try resolvedCredentials()
        var configuration = SyncEngine.Configuration()
        configure(&configuration)
        let transport = AsyncHTTPClientTransport()
        do {
            let client = try CollectionsClient(baseURL: base, credentials: credentials, transport: transport, logger: logger)
            let result = try await body(try SyncEngine(store: store, client: client, configuration: configuration, logger: logger))
            try? await transport.shutdown()
            return result
        } catch {
            try? await transport.shutdown()
            throw error
        }
    }
}

/// `--deadline SECONDS`, shared by the commands that talk to the API.
struct DeadlineOption: ParsableArguments {
    @Option(name: .long, help: "Stop after this many seconds; no request outlives it.")
    var deadline: Double?

    /// The longest deadline: about 31 years, far inside what the engine's clock holds.
    static let maximum: Double = 1_000_000_000

    func validate() throws {
        if let deadline {
            guard deadline.isFinite, deadline >= 0, deadline <= Self.maximum else {
                throw ValidationError("--deadline must be a number of seconds from 0 to \(Int(Self.maximum)), not \(deadline)")
            }
        }
    }

    /// The deadline as a time limit, counted from when the command started.
    var timeLimit: Duration? {
        // Clamped again: a value that skipped validation must not trap in the conversion.
        deadline.map { .milliseconds(Int64(min(max($0, 0), Self.maximum) * 1000)) - CommandClock.started.duration(to: .now) }
    }
}

/// `--batch-size N` and `--concurrency N`, shared by `flush` and `watch`.
struct BatchOptions: ParsableArguments {
    @Option(name: .long, help: "Changes per request, 1 to 100 (1 uses entries/add and entries/remove).")
    var batchSize = 100

    @Option(name: .long, help: "Requests in flight at once (1 to 64).")
    var concurrency = 4

    func validate() throws {
        guard (1...100).contains(batchSize) else { throw ValidationError("--batch-size must be 1 to 100, not \(batchSize)") }
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 64, not \(concurrency)") }
    }

    func apply(to configuration: inout SyncEngine.Configuration) {
        configuration.batchSize = batchSize
        configuration.concurrency = concurrency
    }
}

/// The `KEY=value` credentials file.
enum CredentialsFile {
    /// The credentials, and the user id that `collections/list` names (not a secret, but it
    /// travels with them: semantics.md, "Which user").
    static let names = Set(NetworkOptions.oauthNames + [NetworkOptions.bearerName, NetworkOptions.userIDName])

    /// Reads the file after checking that only its owner can read it. Never echoes a value.
    static func read(_ path: String) throws -> [String: String] {
        try checkPrivate(path)
        return try readValues(path)
    }

    /// Refuses a file that is missing, not a regular file, or readable by group or others;
    /// returns its permission bits.
    @discardableResult
    static func checkPrivate(_ path: String) throws -> mode_t {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw Failure(exitCode: Exit.config, message: "cannot read the credentials file \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw Failure(exitCode: Exit.config, message: "the credentials file \(path) is not a regular file")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw Failure(exitCode: Exit.config, message: String(format: "the credentials file %@ is readable by group or others (mode %04o): run chmod 600 on it", path, Int(info.st_mode & 0o7777)))
        }
        return info.st_mode & 0o7777
    }

    /// The file's values, with no check of its mode (``read(_:)`` checks it first).
    static func readValues(_ path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(exitCode: Exit.config, message: "cannot read the credentials file \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    /// `KEY=value` lines; blank lines and `#` comments are skipped; values may be quoted.
    static func parse(_ text: String, path: String) throws -> [String: String] {
        var values: [String: String] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw Failure(exitCode: Exit.config, message: "the credentials file \(path), line \(number + 1): expected KEY=value")
            }
            var key = String(line[..<equals]).trimmingCharacters(in: .whitespaces)
            if key.hasPrefix("export ") { key = String(key.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard names.contains(key) else {
                throw Failure(exitCode: Exit.config, message: "the credentials file \(path), line \(number + 1): unknown key \(quotedKey(key))")
            }
            var value = String(line[line.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return values
    }

    /// The key, quoted, when it reads like a variable name (upper-case letters, digits and `_`);
    /// anything else may be a value typed on the wrong line, and is never echoed.
    private static func quotedKey(_ key: String) -> String {
        let isName = (1...40).contains(key.utf8.count) && key.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_")
        }
        return isName ? "\"" + key + "\"" : "(not shown: it is not a variable name, and may be a value on the wrong line)"
    }
}
