import ArgumentParser
import CollectionsAPI
import CollectionSync
import Foundation
import SyncctlContract

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the configuration, the database and the API, and say what is wrong.",
        discussion: """
            One line per check, "ok: ...", "problem: ... fix: ..." or "skipped: ..." (a check
            that needs what an earlier one found missing). In order: the configuration (where
            the database, the API base and the credentials come from; the credentials complete;
            the credentials file readable by its owner only), the database (integrity, schema
            version, the flusher lease, the queue), whether the API base answers like the
            Collections API (one read-only request), and whether it accepts the credentials.
            Exits with the code of the first problem found (78, 74, 69, 77), else 0.

            Changes nothing: no database is created, migrated or written (a missing one is
            reported as created on first use), no lease is taken, and the only request is a
            read (collections/list, or collections/show when no user id is known). No secret
            is ever printed.

            With --json: {"checks":[{"check":"...","ok":true|false|null,"detail":"...",
            "fix":"..."|null,"exit_code":N|null}],"exit_code":N}, ok null for a skipped check,
            and the contract's "error" object when the exit code is not 0.

            Examples:
              syncctl doctor
              syncctl doctor --json --credentials ~/.config/syncctl/credentials
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var network: NetworkOptions
    @OptionGroup var deadline: DeadlineOption

    /// A request's timeout when `--deadline` does not set a shorter one.
    static let requestTimeout: Duration = .seconds(10)

    func run() async throws {
        var doctor = Diagnosis()
        let environment = ProcessInfo.processInfo.environment
        let databasePath = doctor.checkDatabasePath(options, environment)
        let apiBase = doctor.checkAPIBase(network, environment)
        let credentials = doctor.checkCredentials(network, environment)
        let inspection = await doctor.checkDatabase(at: databasePath)
        if let apiBase {
            await doctor.checkAPI(apiBase, credentials: credentials, knownCollection: inspection?.knownCollection,
                                  timeout: min(Self.requestTimeout, deadline.timeLimit ?? Self.requestTimeout))
        } else {
            doctor.skip("api_reachable", "API reachable", "no usable API base URL (see above)")
            doctor.skip("credentials_accepted", "credentials accepted", "no usable API base URL (see above)")
        }
        try doctor.report(json: options.json)
    }
}

/// The checks' findings, in order, and how to report them.
struct Diagnosis {
    struct Check {
        let id: String
        let title: String
        /// true: ok; false: a problem; nil: not checked.
        let ok: Bool?
        let detail: String
        let fix: String?
        let exitCode: Int32?
    }

    private(set) var checks: [Check] = []

    mutating func ok(_ id: String, _ title: String, _ detail: String) {
        checks.append(Check(id: id, title: title, ok: true, detail: detail, fix: nil, exitCode: nil))
    }

    mutating func problem(_ id: String, _ title: String, _ detail: String, fix: String, code: Int32) {
        checks.append(Check(id: id, title: title, ok: false, detail: detail, fix: fix, exitCode: code))
    }

    mutating func skip(_ id: String, _ title: String, _ why: String) {
        checks.append(Check(id: id, title: title, ok: nil, detail: "not checked: \(why)", fix: nil, exitCode: nil))
    }

    // MARK: - Configuration (78)

    mutating func checkDatabasePath(_ options: GlobalOptions, _ environment: [String: String]) -> String? {
        do {
            let (path, source) = try options.databaseSetting(environment: environment)
            ok("database_path", "database file", "\(path) (from \(source))")
            return path
        } catch {
            let failure = Failure(error)  // 64 for an empty --db, 78 for no path at all
            problem("database_path", "database file", failure.message, fix: "give --db PATH or set SYNCCTL_DB", code: failure.exitCode)
            return nil
        }
    }

    mutating func checkAPIBase(_ network: NetworkOptions, _ environment: [String: String]) -> String? {
        let (url, source) = network.apiBaseSetting(environment: environment)
        do {
            let base = try CollectionsClient.validate(baseURL: url)
            ok("api_base", "API base", "\(base) (from \(source))")
            return base
        } catch {
            problem("api_base", "API base", "\(Failure(error).message) (from \(source))",
                    fix: "give --api-base or set SYNCCTL_API_BASE to https://api.twitter.com/1.1 (plain http only for a loopback host)",
                    code: Exit.config)
            return nil
        }
    }

    /// The credentials file's mode and contents, the credentials' completeness and the user
    /// id; returns usable credentials and the user id, if any.
    mutating func checkCredentials(_ network: NetworkOptions, _ environment: [String: String]) -> (APICredentials, userID: String?)? {
        var values = environment
        var source = "the environment"
        if let (path, named) = network.credentialsFileSetting(environment: environment) {
            source = "the credentials file \(path)"
            do {
                let mode = try CredentialsFile.checkPrivate(path)
                ok("credentials_file", "credentials file", String(format: "%@ (from %@): mode %04o, readable by its owner only", path, named, Int(mode)))
            } catch {
                // Read anyway (values are never shown), so that one run names every problem.
                problem("credentials_file", "credentials file", "\(Failure(error).message) (named by \(named))",
                        fix: "chmod 600 \(path)", code: Exit.config)
            }
            do {
                values = try CredentialsFile.readValues(path)
            } catch {
                problem("credentials", "credentials", Failure(error).message,
                        fix: "write KEY=value lines with the TWITTER_* names into \(path)", code: Exit.config)
                return nil
            }
        }
        let credentials: APICredentials
        do {
            credentials = try APISettings.credentials(from: values)
            let kind = values[APISettings.oauthNames[0]].map { !$0.isEmpty } == true
                ? "OAuth 1.0a user context, all four values" : "an OAuth 2.0 bearer token"
            ok("credentials", "credentials", "\(kind) (from \(source))")
        } catch {
            let fix = APISettings.oauthNames.contains(where: { values[$0].map { !$0.isEmpty } ?? false })
                ? "set the missing values (the four go together), or unset the others to use \(APISettings.bearerName)"
                : "export the four OAuth 1.0a values or the bearer token, or put them in a file only you can read and give it with --credentials"
            problem("credentials", "credentials", "\(Failure(error).message) (looked in \(source))", fix: fix, code: Exit.config)
            return nil
        }
        // The user id `collections/list` names: TWITTER_USER_ID, else the access token's numeric prefix.
        let userID: String?
        if let given = values[APISettings.userIDName], !given.isEmpty {
            guard Self.isUserID(given) else {
                // Never echoed: it may be a secret typed on the wrong line.
                problem("user_id", "user id", "\(APISettings.userIDName) (from \(source)) is not a numeric user id",
                        fix: "set it to the account's numeric id, or unset it to use the access token's numeric prefix", code: Exit.config)
                return (credentials, nil)
            }
            userID = given
            ok("user_id", "user id", "\(given) (\(APISettings.userIDName) from \(source))")
        } else if let token = values[APISettings.oauthNames[2]], let prefix = token.split(separator: "-", maxSplits: 1).first,
                  token.contains("-"), Self.isUserID(String(prefix)) {
            userID = String(prefix)
            ok("user_id", "user id", "\(prefix) (the numeric prefix of \(APISettings.oauthNames[2]))")
        } else {
            userID = nil
            ok("user_id", "user id", "none known (no \(APISettings.userIDName), and the credentials name no user): "
                + "collections/list cannot be read, so a collection made offline cannot be sent")
        }
        return (credentials, userID)
    }

    static func isUserID(_ text: String) -> Bool {
        (try? TweetID(validating: text)) != nil  // the same shape: a positive decimal below 2^64
    }

    // MARK: - Database (74)

    /// The database's integrity, schema, lease and queue; nil when there is none or it could not be read.
    mutating func checkDatabase(at path: String?) async -> StoreInspection? {
        guard let path else {
            skip("database", "database", "no database path (see above)")
            return nil
        }
        let found: StoreInspection?
        do {
            found = try await SyncStore.inspect(at: path)
        } catch {
            let code = (error as? SyncError)?.code
            let fix = code == .databaseCorrupt
                ? "restore the file from a backup, or move it away to start afresh (its queued edits would be lost)"
                : code == .databaseBusy ? "another process holds a lock on it: try again"
                : "check that the file and its folder are readable (SQLite also needs its -wal and -shm files)"
            problem("database", "database", "\(path): \(Failure(error).message)", fix: fix, code: Exit.database)
            return nil
        }
        guard let inspection = found else {
            ok("database", "database", "\(path) does not exist yet: it will be created on first use")
            return nil
        }
        let version = "schema version \(inspection.schemaVersion)"
        if !inspection.integrityProblems.isEmpty {
            problem("database", "database", "\(path) is damaged: quick_check found \(inspection.integrityProblems.count == 20 ? "20 or more" : String(inspection.integrityProblems.count)) problems, the first: \(inspection.integrityProblems[0])",
                    fix: "restore the file from a backup, or move it away to start afresh (its queued edits would be lost)", code: Exit.database)
            return inspection
        }
        if inspection.isSchemaTooNew {
            problem("database", "database", "\(path) has \(version), newer than this build's \(inspection.latestSchemaVersion): it is left untouched",
                    fix: "upgrade syncctl to a version that knows schema \(inspection.schemaVersion)", code: Exit.database)
            return inspection
        }
        switch inspection.schemaVersion {
        case 0: ok("database", "database", "\(path): integrity ok; no schema yet: it will be set up on first use")
        case inspection.latestSchemaVersion: ok("database", "database", "\(path): integrity ok (quick_check), \(version) (current)")
        default: ok("database", "database", "\(path): integrity ok (quick_check), \(version): migrated to \(inspection.latestSchemaVersion) on first use")
        }
        if let holder = inspection.leaseHolder {
            var state = "until \(rfc3339(holder.expiresAt))"
            if holder.expiresAt <= Date() {
                state = "expired \(rfc3339(holder.expiresAt)): the next flush takes it over"
            } else if holder.host == Self.hostName(), kill(holder.pid, 0) != 0, errno == ESRCH {
                state = "that process is gone: the next flush takes it over"
            }
            ok("flusher_lease", "flusher lease", "held by process \(holder.pid) on \(holder.host) since \(rfc3339(holder.acquiredAt)), \(state)")
        } else if inspection.schemaVersion > 0 {
            ok("flusher_lease", "flusher lease", "free (no flush running)")
        }
        if let ops = inspection.ops {
            var queue = "\(ops.pending) pending, \(ops.inFlight) in flight, \(ops.failed) failed"
            if ops.failed > 0 { queue += " (syncctl outbox --failed lists the dead letters; retry or discard them)" }
            ok("queue", "queue", queue)
        }
        return inspection
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - The API (69, then 77)

    /// One read-only request: `collections/list` of the user when a user id is known, else
    /// `collections/show` of a collection the database knows (or of `custom-1`: the API checks
    /// credentials before it looks the collection up, so a 404/34 still says they were
    /// accepted). Without usable credentials the same list request goes unsigned: the API's
    /// authentication error says it is the API.
    mutating func checkAPI(_ base: String, credentials: (APICredentials, userID: String?)?, knownCollection: CollectionID?,
                           timeout: Duration) async {
        let endpoint: Endpoint = credentials != nil && credentials?.userID == nil ? .show : .list
        let outcome: Result<Void, CollectionsAPIError>
        do {
            outcome = try await AsyncHTTPClientTransport.withTransport { transport in
                guard let (credentials, userID) = credentials else {
                    let response = try await transport.send(
                        HTTPRequestData(method: "GET", url: "\(base)/\(Endpoint.list.path)?user_id=1&count=1", headers: [("accept", "application/json")]),
                        timeout: timeout, maxBodyBytes: AnswerClassifier.maxBodyBytes)
                    if let failure = AnswerClassifier.failure(of: response, path: Endpoint.list.rawValue) { return .failure(failure) }
                    return .success(())
                }
                var configuration = CollectionsClient.Configuration()
                configuration.requestTimeout = timeout
                let client = try CollectionsClient(baseURL: base, credentials: credentials, transport: transport, configuration: configuration)
                do {
                    if let userID {
                        _ = try await client.list(owner: .userID(userID), count: 1)
                    } else {
                        _ = try await client.show(try knownCollection ?? CollectionID(validating: "custom-1"))
                    }
                    return .success(())
                } catch let error as CollectionsAPIError {
                    return .failure(error)
                }
            }
        } catch {
            outcome = .failure(error as? CollectionsAPIError
                ?? CollectionsAPIError(code: .network, message: "the request failed: \(type(of: error))"))
        }
        judge(outcome, endpoint: endpoint, signed: credentials != nil, base: base)
    }

    private mutating func judge(_ outcome: Result<Void, CollectionsAPIError>, endpoint: Endpoint, signed: Bool, base: String) {
        let reachable = ("api_reachable", "API reachable")
        let accepted = ("credentials_accepted", "credentials accepted")
        let wrongBase = "check --api-base / SYNCCTL_API_BASE: the Collections API is at https://api.twitter.com/1.1"
        guard case .failure(let error) = outcome else {
            ok(reachable.0, reachable.1, "\(base) answered \(endpoint.rawValue) like the Collections API")
            if signed {
                ok(accepted.0, accepted.1, "the API accepted them")
            } else {
                skip(accepted.0, accepted.1, "no usable credentials (see above)")
            }
            return
        }
        let answer = error.httpStatus.map { "HTTP \($0)" + (error.apiErrorCode.map { ", code \($0)" } ?? "") } ?? "no answer"
        let enveloped = error.apiErrorCode != nil
        switch error.code {
        case .authentication, .forbidden, .clockSkew:
            ok(reachable.0, reachable.1, "\(base) answered \(endpoint.rawValue) like the Collections API (\(answer)"
                + (signed ? ")" : " to a request without credentials)"))
            guard signed else {
                skip(accepted.0, accepted.1, "no usable credentials (see above)")
                return
            }
            let fix = error.code == .clockSkew
                ? "the local clock is off: set it right (NTP); flush corrects for it by itself, once per run"
                : error.code == .forbidden
                ? "the account or the app is not permitted (suspended, locked or read-only): check it on the developer portal"
                : "check the values of the credentials (revoked, regenerated or copied wrong?)"
            problem(accepted.0, accepted.1, "rejected (\(answer))", fix: fix, code: Exit.auth)
        case .rateLimited:
            ok(reachable.0, reachable.1, "\(base) answered \(endpoint.rawValue) like the Collections API (\(answer): rate limited)")
            skip(accepted.0, accepted.1, "rate limited" + (error.rateLimitReset.map { " until \(rfc3339($0)) (server time)" } ?? ""))
        case .notFound where endpoint == .show && enveloped:
            // The API authenticates a request before it looks the collection up.
            ok(reachable.0, reachable.1, "\(base) answered \(endpoint.rawValue) like the Collections API (\(answer))")
            ok(accepted.0, accepted.1, "the API accepted them")
        case .notFound:
            // Something answers, but not the API: the contract's 78 ("an API base URL that does not
            // serve the API"), not 69, which is for an API that cannot be reached.
            problem(reachable.0, reachable.1, "\(base) does not serve \(endpoint.rawValue) (\(answer)): not the Collections API's base URL",
                    fix: wrongBase, code: Exit.config)
            skip(accepted.0, accepted.1, "the API was not reached")
        case .invalidRequest where enveloped:
            ok(reachable.0, reachable.1, "\(base) answered \(endpoint.rawValue) like the Collections API (\(answer))")
            skip(accepted.0, accepted.1, "the request was refused as invalid (\(answer)): is the user id right?")
        case .network, .timeout, .cancelled:
            problem(reachable.0, reachable.1, "\(base) cannot be reached: \(error.message)",
                    fix: "check the network, the host name and the port; if the API is down, try again later", code: Exit.unavailable)
            skip(accepted.0, accepted.1, "the API was not reached")
        case .transient:
            problem(reachable.0, reachable.1, "\(base) answered \(endpoint.rawValue) with a server error (\(answer)): the service is unavailable",
                    fix: "try again later", code: Exit.unavailable)
            skip(accepted.0, accepted.1, "the API did not answer the request")
        default:
            problem(reachable.0, reachable.1, "\(base) answered \(endpoint.rawValue), but not like the Collections API: \(error.description)",
                    fix: wrongBase, code: Exit.unavailable)
            skip(accepted.0, accepted.1, "the API was not reached")
        }
    }

    // MARK: - Report

    /// Prints the checks; throws the first problem's exit code (already reported).
    func report(json: Bool) throws {
        let problems = checks.filter { $0.ok == false }
        let exitCode = problems.first?.exitCode ?? Exit.ok
        let message = problems.first.map { first in
            "doctor found \(problems.count) problem\(problems.count == 1 ? "" : "s"); the first: \(first.title): \(first.detail)"
        }
        if json {
            var members: [(String, JSON)] = [
                ("checks", .array(checks.map { check in
                    .object([
                        ("check", .string(check.id)), ("ok", check.ok.map(JSON.bool) ?? .null), ("detail", .string(check.detail)),
                        ("fix", .optional(check.fix)), ("exit_code", check.exitCode.map { .int(Int64($0)) } ?? .null),
                    ])
                })),
                ("exit_code", .int(Int64(exitCode))),
            ]
            if let message {
                members.append(("error", Failure(exitCode: exitCode, message: message).json))
            }
            Console.shared.out(JSON.object(members).text)
        } else {
            for check in checks {
                switch check.ok {
                case true?: Console.shared.out("ok: \(check.title): \(check.detail)")
                case false?: Console.shared.out("problem: \(check.title): \(check.detail) fix: \(check.fix ?? "")")
                case nil: Console.shared.out("skipped: \(check.title): \(check.detail)")
                }
            }
        }
        guard let message else { return }
        tell(message, level: .error)
        throw Failure(exitCode: exitCode, message: message, reported: true)
    }
}
