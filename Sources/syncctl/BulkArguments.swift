/// Tweet ids beyond the first of `remove` and `add`, kept out of swift-argument-parser.
///
/// The parser's cost grows with the square of an array argument's length (it copies a set of
/// input origins per value): 10,000 ids took 17 s and 50,000 took 7 minutes. Commands of many
/// ids are what batch edits are for, so `main` lifts all but the first id out of the arguments
/// before parsing and the edit commands append them after validation as usual.
///
/// It also counts `--ids-from`: the parser keeps only the last of a repeated option, and a
/// second file of ids must be refused, not silently ignored.
enum BulkArguments {
    /// What ``split(_:)`` took out of the parser's view.
    struct Lifted: Sendable {
        /// The tweet ids beyond the first, in order.
        var tweets: [String] = []
        /// How many times `--ids-from` was given.
        var idsFromCount = 0
    }

    @TaskLocal static var lifted = Lifted()

    /// The subcommands whose trailing positional arguments are tweet ids.
    static let editCommands: Set<String> = ["remove", "add"]
    /// Options of those subcommands that take a value (the next argument, unless given as `--x=v`).
    static let optionsWithValue: Set<String> = ["--db", "--ids-from", "--log-level", "--log-format"]

    /// Splits `arguments` into what the parser sees and what is lifted.
    static func split(_ arguments: [String]) -> (parsed: [String], lifted: Lifted) {
        guard let command = arguments.first, editCommands.contains(command) else { return (arguments, Lifted()) }
        var parsed = [command]
        var lifted = Lifted()
        var positionals = 0
        var index = 1
        var afterTerminator = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if !afterTerminator, argument == "--" {
                afterTerminator = true
                parsed.append(argument)
            } else if !afterTerminator, argument.hasPrefix("-"), argument != "-" {
                parsed.append(argument)
                if argument == "--ids-from" || argument.hasPrefix("--ids-from=") { lifted.idsFromCount += 1 }
                if optionsWithValue.contains(argument), index < arguments.count {
                    parsed.append(arguments[index])
                    index += 1
                }
            } else {
                positionals += 1
                // The collection and the first tweet id stay, so the parser still checks them.
                if positionals <= 2 { parsed.append(argument) } else { lifted.tweets.append(argument) }
            }
        }
        return (parsed, lifted)
    }
}
