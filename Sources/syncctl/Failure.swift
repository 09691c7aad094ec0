import ArgumentParser
import CollectionSync
import CollectionSyncJSON
import CollectionsAPI

/// A failure to report: the contract's exit code and a message for people.
struct Failure: Error, CustomStringConvertible {
    let exitCode: Int32
    let message: String
    /// The command already printed its message (and JSON document): only exit with the code.
    var reported = false

    var description: String { message }

    init(exitCode: Int32, message: String, reported: Bool = false) {
        self.exitCode = exitCode
        self.message = message
        self.reported = reported
    }

    static func usage(_ message: String) -> Failure { Failure(exitCode: Exit.usage, message: message) }

    /// The contract's error object, `{"exit_code":N,"message":"..."}`: alone under `"error"` on an
    /// error exit, or added to a command's usual document (flush, pull, doctor).
    var json: JSON {
        .object([("exit_code", .int(Int64(exitCode))), ("message", .string(message))])
    }

    /// The contract's reading of any error a command can meet.
    init(_ error: any Error) {
        if let failure = error as? Failure {
            self = failure
        } else {
            (exitCode, message) = Exit.reading(error)
        }
    }
}

/// Parses every value or throws one usage failure naming the first bad one; nothing is touched
/// before all input is valid.
func parseAll<T>(_ values: [String], _ parse: (String) throws -> T) throws -> [T] {
    do {
        return try values.map(parse)
    } catch let error as SyncError {
        throw Failure.usage(error.message)
    } catch let error as CollectionsAPIError {
        throw Failure.usage(error.message)
    }
}
