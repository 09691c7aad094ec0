import ArgumentParser
import CollectionsAPI
import CollectionSync
import Foundation
import Logging
import SyncctlContract

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
        return APISettings.apiBase(environment: environment)
    }

    /// The credentials file, if one is given, and where it was named.
    func credentialsFileSetting(environment: [String: String] = ProcessInfo.processInfo.environment) -> (path: String, source: String)? {
        if let credentials, !credentials.isEmpty { return (credentials, "--credentials") }
        return APISettings.credentialsFile(environment: environment)
    }

    /// Credentials from the credentials file when one is given, else from the environment.
    /// Empty values count as absent; the four OAuth 1.0a values go together.
    func resolvedCredentials(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> APICredentials {
        try APISettings.credentials(from: try credentialValues(environment: environment))
    }

    /// The values credentials come from: the credentials file's when one is given, else the environment's.
    func credentialValues(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String: String] {
        if let file = credentialsFileSetting(environment: environment) { return try CredentialsFile.read(file.path) }
        return environment
    }

    /// Runs `body` with an engine over a fresh transport, which is shut down afterwards whether
    /// `body` throws or not. Configuration problems throw before any connection exists.
    func withEngine<T>(store: SyncStore, configure: (inout SyncEngine.Configuration) -> Void = { _ in },
                       logger: Logger = Logger(label: "syncctl"),
                       _ body: (SyncEngine) async throws -> T) async throws -> T {
        let base = try resolvedAPIBase()
        let values = try credentialValues()
        let credentials = try APISettings.credentials(from: values)
        var configuration = SyncEngine.Configuration()
        configuration.userID = try APISettings.userID(from: values)
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
