import Foundation
import Logging
import SyncctlContract
import Synchronization

/// The one writer of syncctl's stdout and stderr.
///
/// Everything goes through it so that the terminal progress line (stderr) is erased before any
/// other output and never shares a line with it, whichever thread writes: a log line from the
/// engine, the summary on stdout, an NDJSON event, the final error.
final class Console: Sendable {
    static let shared = Console()

    private struct State {
        /// The progress line on screen, if one is.
        var shown: String?
        /// A progress line may be drawn (between ``Console/beginProgress()`` and ``Console/endProgress()``).
        var progressing = false
    }

    private let state = Mutex(State())

    /// Whether stderr is a terminal (the progress line is drawn only there).
    let stderrIsTerminal = isatty(STDERR_FILENO) == 1

    /// Writes `text` and a newline on stdout, and flushes it (a pipe gets every line when it is
    /// written: `watch --json` readers follow events as they happen).
    func out(_ text: String) {
        state.withLock { state in
            erase(&state)
            write(text + "\n", to: STDOUT_FILENO)
        }
    }

    /// Writes `line` and a newline on stderr.
    func err(_ line: String) {
        state.withLock { state in
            erase(&state)
            write(line + "\n", to: STDERR_FILENO)
        }
    }

    /// Allows a progress line from now on.
    func beginProgress() {
        state.withLock { $0.progressing = true }
    }

    /// Shows `line` as the progress line (replacing the one shown) unless it is shown already.
    /// The caller paces the calls (``ProgressLine`` draws at most 10 times a second).
    func progress(_ line: String) {
        state.withLock { state in
            guard state.progressing, stderrIsTerminal, state.shown != line else { return }
            write("\r\u{1B}[K" + line, to: STDERR_FILENO)
            state.shown = line
        }
    }

    /// Erases the progress line; none is drawn after this returns.
    func endProgress() {
        state.withLock { state in
            erase(&state)
            state.progressing = false
        }
    }

    private func erase(_ state: inout State) {
        guard state.shown != nil else { return }
        write("\r\u{1B}[K", to: STDERR_FILENO)
        state.shown = nil
    }

    /// Writes all of `text` to `descriptor` (unbuffered: what is written is out).
    private func write(_ text: String, to descriptor: Int32) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return  // the stream is gone (a closed pipe): nothing more to tell anyone
            }
            offset += written
        }
    }
}

// MARK: - Logs

/// How log lines look on stderr: `--log-format`, `SYNCCTL_LOG_FORMAT`.
enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}

/// The level and format of syncctl's log: flag, then environment, then default (`notice`, `text`).
struct LogSettings: Sendable {
    var level: Logger.Level = .notice
    var format: LogFormat = .text

    /// The process's settings, read by `main` before anything is logged.
    nonisolated(unsafe) static var current = LogSettings()

    static let levels = Logger.Level.allCases.map(\.rawValue)

    /// Reads the settings from the command line (before the parser: its own errors are logged in
    /// the chosen format) and the environment. Values the parser will refuse are skipped here.
    static func resolve(_ arguments: [String], environment: [String: String]) throws -> LogSettings {
        var settings = LogSettings()
        if let value = environment["SYNCCTL_LOG_FORMAT"], !value.isEmpty {
            guard let format = LogFormat(rawValue: value) else {
                throw Failure(exitCode: Exit.config, message: "SYNCCTL_LOG_FORMAT must be text or json, not \(quoted(value))")
            }
            settings.format = format
        }
        if let value = environment["SYNCCTL_LOG_LEVEL"], !value.isEmpty {
            guard let level = Logger.Level(rawValue: value) else {
                throw Failure(exitCode: Exit.config, message: "SYNCCTL_LOG_LEVEL must be one of \(levels.joined(separator: ", ")), not \(quoted(value))")
            }
            settings.level = level
        }
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" { break }
            func value(of option: String) -> String? {
                if argument == option, index < arguments.count { defer { index += 1 }; return arguments[index] }
                if argument.hasPrefix(option + "=") { return String(argument.dropFirst(option.count + 1)) }
                return nil
            }
            if let text = value(of: "--log-level") {
                if let level = Logger.Level(rawValue: text) { settings.level = level }
            } else if let text = value(of: "--log-format") {
                if let format = LogFormat(rawValue: text) { settings.format = format }
            } else if argument == "--quiet" {
                settings.level = .error
            } else if argument == "--verbose" {
                settings.level = settings.level == .info ? .debug : .info
            } else if argument.count > 1, argument.hasPrefix("-"), !argument.hasPrefix("--"),
                      argument.dropFirst().allSatisfy({ $0 == "v" || $0 == "q" }) {
                // -v, -vv, -q (combined short flags included)
                let verbose = argument.filter { $0 == "v" }.count
                if argument.contains("q") { settings.level = .error } else { settings.level = verbose >= 2 ? .debug : .info }
            }
        }
        return settings
    }
}

/// syncctl's log handler: one line per record on stderr through ``Console``, as text or as a JSON
/// object (`ts`, `level`, `message`, then the metadata). swift-log's `StreamLogHandler` writes
/// to the stream itself and would draw over the progress line; this one takes turns with it.
struct ConsoleLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let format: LogFormat
    let console: Console

    init(settings: LogSettings, console: Console = .shared) {
        logLevel = settings.level
        format = settings.format
        self.console = console
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        console.err(Self.line(level: event.level, message: event.message.description, metadata: all, format: format))
    }

    /// One record as a line of the given format.
    static func line(level: Logger.Level, message: String, metadata: Logger.Metadata, format: LogFormat, at date: Date = Date()) -> String {
        let keys = metadata.keys.sorted()
        switch format {
        case .text:
            var text = "\(rfc3339(date)) \(level.rawValue) \(message)"
            for key in keys { text += " \(key)=\(metadata[key]!)" }
            return text
        case .json:
            var members: [(String, JSON)] = [("ts", .string(rfc3339(date))), ("level", .string(level.rawValue)), ("message", .string(message))]
            for key in keys where !["ts", "level", "message"].contains(key) { members.append((key, json(metadata[key]!))) }
            return JSON.object(members).text
        }
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let value): return .string(value.description)
        case .array(let values): return .array(values.map(json))
        case .dictionary(let values): return .object(values.keys.sorted().map { ($0, json(values[$0]!)) })
        }
    }
}

/// A message of syncctl itself (not the engine's log) on stderr: `syncctl: message` as text, a
/// log object as JSON; shown when `level` passes the log level (`-q` keeps only errors).
func tell(_ message: String, level: Logger.Level = .notice) {
    let settings = LogSettings.current
    guard level >= settings.level else { return }
    switch settings.format {
    case .text: Console.shared.err("syncctl: " + message)
    case .json: Console.shared.err(ConsoleLogHandler.line(level: level, message: message, metadata: [:], format: .json))
    }
}

/// A value from the user, quoted for a message (at most 40 characters of it).
func quoted(_ value: String) -> String {
    let shown = value.count > 40 ? String(value.prefix(40)) + "..." : value
    return "\"" + shown + "\""
}
