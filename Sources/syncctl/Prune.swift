import ArgumentParser
import CollectionSync
import SyncctlContract

struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete old events from the last-writer-wins log.",
        discussion: """
            Deletes the log's events older than DURATION (default 30d), except the events of ops
            still in the outbox (pending, in flight or failed). Conflict events are kept unless
            --conflicts is given. DURATION is a whole number and a unit: s, m, h or d (0s prunes
            everything logged before now). Prints the number of events deleted.

            Examples:
              syncctl prune
              syncctl prune --older-than 12h --conflicts --json
            """)

    @OptionGroup var options: GlobalOptions

    // .unconditional: "-3d" is a value to refuse with a reason, not an unknown option.
    @Option(name: .long, parsing: .unconditional,
            help: ArgumentHelp("Only events older than this: a whole number and s, m, h or d.", valueName: "duration"))
    var olderThan = Prune.defaultAge

    /// The default age, also what `watch` prunes to once a day.
    static let defaultAge = "30d"

    @Flag(name: .long, help: "Delete old conflict events too.")
    var conflicts = false

    func validate() throws {
        _ = try PruneAge.parse(olderThan)
    }

    func run() async throws {
        let age = try PruneAge.parse(olderThan)
        let pruned = try await options.openStore().prune(olderThan: age, includingConflicts: conflicts)
        options.emit(Documents.pruned(pruned), text: "pruned \(pruned)")
    }
}

/// `--older-than`'s value: digits and one unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `12h`, `30d`).
enum PruneAge {
    static let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]

    static func parse(_ text: String) throws -> Duration {
        let example = "a whole number and a unit, s, m, h or d, such as 90s, 15m, 12h or 30d"
        let shown = quoted(text)  // at most 40 characters of it
        guard let unit = text.last, let seconds = units[unit] else {
            throw ValidationError("--older-than \(shown) has no unit: give \(example)")
        }
        let digits = text.dropLast()
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw ValidationError("--older-than \(shown) is not \(example) (negative and fractional values are refused)")
        }
        // The age in milliseconds must fit the clock's 64 bits.
        guard let count = Int64(digits),
              case let (total, overflow) = count.multipliedReportingOverflow(by: seconds * 1000), !overflow else {
            throw ValidationError("--older-than \(shown) is too large")
        }
        return .milliseconds(total)
    }
}
