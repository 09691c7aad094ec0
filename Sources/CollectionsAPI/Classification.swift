import Foundation

/// What `x-rate-limit-*` headers said about an endpoint.
public struct RateLimit: Sendable, Hashable {
    /// Requests allowed in the window.
    public let limit: Int
    /// Requests left in the window.
    public let remaining: Int
    /// When the window resets (`x-rate-limit-reset`, absolute UTC epoch seconds) on the
    /// **server's** clock: compare it with ``serverDate``, not with the local clock.
    public let reset: Date
    /// The `Date` header of the answer that carried these headers, when it had one.
    public let serverDate: Date?

    public init(limit: Int, remaining: Int, reset: Date, serverDate: Date? = nil) {
        self.limit = limit
        self.remaining = remaining
        self.reset = reset
        self.serverDate = serverDate
    }

    /// The three headers, or nil when any is missing or not a non-negative integer.
    public init?(headers response: HTTPResponseData) {
        guard let limit = response.header("x-rate-limit-limit").flatMap(Self.count),
              let remaining = response.header("x-rate-limit-remaining").flatMap(Self.count),
              let reset = response.header("x-rate-limit-reset").flatMap(Self.count) else { return nil }
        self.init(limit: limit, remaining: remaining, reset: Date(timeIntervalSince1970: TimeInterval(reset)),
                  serverDate: AnswerClassifier.date(of: response))
    }

    private static func count(_ text: String) -> Int? {
        // Optional white space around the value is HTTP's (RFC 9110 5.5): spaces and tabs.
        var trimmed = Substring(text)
        while trimmed.first == " " || trimmed.first == "\t" { trimmed.removeFirst() }
        while trimmed.last == " " || trimmed.last == "\t" { trimmed.removeLast() }
        guard let value = Int(trimmed), value >= 0 else { return nil }
        return value
    }
}

/// Reads answers: the engine's class of a failure, the API's error envelope, the `Date` header.
/// Pure functions of the answer.
public enum AnswerClassifier {
    /// Largest body read from the API; bigger answers are malformed (a collection page of 200
    /// entries is a few hundred kilobytes).
    public static let maxBodyBytes = 16 * 1024 * 1024
    /// Deepest JSON nesting accepted; documented shapes nest less than 10 levels.
    public static let maxJSONDepth = 64

    /// nil for a 2xx answer; otherwise the classified failure.
    public static func failure(of response: HTTPResponseData, path: String) -> CollectionsAPIError? {
        let status = response.status
        if (200..<300).contains(status) { return nil }
        let code = apiErrorCode(response)
        let serverDate = date(of: response)
        let rateLimit = RateLimit(headers: response)
        func error(_ kind: CollectionsAPIError.Code, _ what: String) -> CollectionsAPIError {
            CollectionsAPIError(code: kind, message: "\(path): \(what)", httpStatus: status, apiErrorCode: code,
                                rateLimit: rateLimit, serverDate: serverDate)
        }
        switch (status, code) {
        case (429, _), (_, 88?):
            return error(.rateLimited, "rate limit exceeded")
        case (401, 135?):
            return error(.clockSkew, "timestamp out of bounds: the local clock is off")
        case (400, 215?), (401, _), (_, 89?):
            return error(.authentication, "authentication rejected")
        case (403, _):
            return error(.forbidden, "not permitted")
        case (400, 86?):
            return error(.permanent, "wrong HTTP method")
        case (400, _), (422, _):
            return error(.invalidRequest, "the request was refused as invalid")
        case (404, _):
            return error(.notFound, code == 34 ? "no such collection or resource" : "not found (no API error envelope)")
        case (500..<600, _), (_, 130?), (_, 131?):
            return error(.transient, "the service is unavailable")
        default:
            return error(.unexpectedStatus, "unexpected answer")
        }
    }

    /// The first `code` of a `{"errors":[{"code":N,...}]}` body, if the body is that envelope.
    public static func apiErrorCode(_ response: HTTPResponseData) -> Int? {
        struct Envelope: Decodable {
            struct Item: Decodable { let code: Int }
            let errors: [Item]
        }
        guard isJSON(response), depthIsAcceptable(response.body),
              let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(response.body)) else { return nil }
        return envelope.errors.first?.code
    }

    /// The `Date` header (IMF-fixdate), if present and well formed.
    public static func date(of response: HTTPResponseData) -> Date? {
        guard let text = response.header("date") else { return nil }
        return parseHTTPDate(text)
    }

    /// Decodes a 2xx JSON body as `T`; anything else is ``CollectionsAPIError/Code/malformedResponse``.
    public static func decode<T: Decodable>(_ type: T.Type, from response: HTTPResponseData, path: String) throws -> T {
        func malformed(_ why: String) -> CollectionsAPIError {
            CollectionsAPIError(code: .malformedResponse, message: "\(path): \(why)", httpStatus: response.status,
                                serverDate: date(of: response))
        }
        guard isJSON(response) else {
            throw malformed("expected a JSON answer, got content type \(response.header("content-type") ?? "none")")
        }
        guard response.body.count <= maxBodyBytes else { throw malformed("the answer is larger than \(maxBodyBytes) bytes") }
        guard depthIsAcceptable(response.body) else { throw malformed("the answer nests deeper than \(maxJSONDepth) levels") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body))
        } catch {
            throw malformed("the answer is not the documented JSON (\(describe(error)))")
        }
    }

    static func isJSON(_ response: HTTPResponseData) -> Bool {
        guard let type = response.header("content-type")?.lowercased() else { return false }
        return type.hasPrefix("application/json")
    }

    /// Whether the JSON text nests at most ``maxJSONDepth`` levels (strings skipped), so that no
    /// decoder recurses on hostile input.
    static func depthIsAcceptable(_ body: [UInt8]) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in body {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maxJSONDepth { return false }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return true
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing \(path(context.codingPath + [key]))"
        case DecodingError.typeMismatch(let type, let context):
            return "\(path(context.codingPath)) is not \(type)"
        case DecodingError.valueNotFound(let type, let context):
            return "\(path(context.codingPath)) is null, expected \(type)"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(path(context.codingPath)) is corrupt"
        default:
            return "undecodable"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "the body" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's IMF-fixdate) by arithmetic:
/// every answer carries one, and a calendar per answer cost more than the rest of its reading.
func parseHTTPDate(_ text: String) -> Date? {
    let parts = text.split(separator: " ")
    guard parts.count == 6, parts[5] == "GMT",
          let day = Int(parts[1]), let year = Int(parts[3]), (1970...9999).contains(year),
          let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].firstIndex(of: String(parts[2])) else { return nil }
    let time = parts[4].split(separator: ":").compactMap { Int($0) }
    guard time.count == 3, (0..<24).contains(time[0]), (0..<60).contains(time[1]), (0...60).contains(time[2]) else { return nil }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    guard (1...monthDays[month]).contains(day) else { return nil }
    // Days since 1970-01-01 of the civil date (Howard Hinnant's days_from_civil).
    let y = month < 2 ? year - 1 : year
    let era = y / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month < 2 ? month + 10 : month - 2) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    let days = era * 146_097 + dayOfEra - 719_468
    return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + time[0] * 3_600 + time[1] * 60 + time[2]))
}
