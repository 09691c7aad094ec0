import CollectionsAPI
import Foundation

/// Where syncctl and the C library find the API and its credentials (syncctl.md,
/// "Configuration"): the environment, a credentials file, the defaults.
package enum APISettings {
    package static let defaultAPIBase = "https://api.twitter.com/1.1"
    package static let oauthNames = ["TWITTER_CONSUMER_KEY", "TWITTER_CONSUMER_SECRET", "TWITTER_ACCESS_TOKEN", "TWITTER_ACCESS_TOKEN_SECRET"]
    package static let bearerName = "TWITTER_BEARER_TOKEN"
    package static let userIDName = "TWITTER_USER_ID"

    /// The base URL of the environment (`SYNCCTL_API_BASE`), else the default; not checked.
    package static func apiBase(environment: [String: String]) -> (url: String, source: String) {
        if let url = environment["SYNCCTL_API_BASE"], !url.isEmpty { return (url, "SYNCCTL_API_BASE") }
        return (defaultAPIBase, "the default")
    }

    /// The credentials file the environment names (`SYNCCTL_CREDENTIALS`), if any.
    package static func credentialsFile(environment: [String: String]) -> (path: String, source: String)? {
        if let path = environment["SYNCCTL_CREDENTIALS"], !path.isEmpty { return (path, "SYNCCTL_CREDENTIALS") }
        return nil
    }

    /// Credentials from the credentials file the environment names, else from the environment.
    package static func credentials(environment: [String: String]) throws -> APICredentials {
        var values = environment
        if let file = credentialsFile(environment: environment) {
            values = try CredentialsFile.read(file.path)
        }
        return try credentials(from: values)
    }

    /// The user id `values` (the environment's, or a credentials file's) give, `TWITTER_USER_ID`;
    /// nil when absent (the engine then takes the access token's numeric prefix).
    package static func userID(from values: [String: String]) throws -> String? {
        guard let id = values[userIDName], !id.isEmpty else { return nil }
        guard id.utf8.count <= 20, id.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw Failure(exitCode: Exit.config, message: "\(userIDName) must be a numeric user id")
        }
        return id
    }

    /// The user id of the credentials file the environment names, else of the environment.
    package static func userID(environment: [String: String]) throws -> String? {
        if let file = credentialsFile(environment: environment) { return try userID(from: try CredentialsFile.read(file.path)) }
        return try userID(from: environment)
    }

    /// The credentials `values` (the environment's, or a credentials file's) hold.
    package static func credentials(from values: [String: String]) throws -> APICredentials {
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
}

/// The `KEY=value` credentials file.
package enum CredentialsFile {
    /// The credentials, and the user id that `collections/list` names (not a secret, but it
    /// travels with them: semantics.md, "Which user").
    package static let names = Set(APISettings.oauthNames + [APISettings.bearerName, APISettings.userIDName])

    /// Reads the file after checking that only its owner can read it. Never echoes a value.
    package static func read(_ path: String) throws -> [String: String] {
        try checkPrivate(path)
        return try readValues(path)
    }

    /// Refuses a file that is missing, not a regular file, or readable by group or others;
    /// returns its permission bits.
    @discardableResult
    package static func checkPrivate(_ path: String) throws -> mode_t {
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
    package static func readValues(_ path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(exitCode: Exit.config, message: "cannot read the credentials file \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    /// `KEY=value` lines; blank lines and `#` comments are skipped; values may be quoted.
    package static func parse(_ text: String, path: String) throws -> [String: String] {
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
