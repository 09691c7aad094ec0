import CollectionSync
import CollectionsAPI

/// A failure to report: the contract's exit code and a message for people.
package struct Failure: Error, CustomStringConvertible {
    package let exitCode: Int32
    package let message: String
    /// The command already printed its message (and JSON document): only exit with the code.
    package var reported = false

    package var description: String { message }

    package init(exitCode: Int32, message: String, reported: Bool = false) {
        self.exitCode = exitCode
        self.message = message
        self.reported = reported
    }

    package static func usage(_ message: String) -> Failure { Failure(exitCode: Exit.usage, message: message) }

    /// The contract's error object, `{"exit_code":N,"message":"..."}`: alone under `"error"` on an
    /// error exit, or added to a command's usual document (flush, pull, doctor).
    package var json: JSON {
        .object([("exit_code", .int(Int64(exitCode))), ("message", .string(message))])
    }

    /// The contract's reading of any error a command can meet.
    package init(_ error: any Error) {
        if let failure = error as? Failure {
            self = failure
        } else {
            (exitCode, message) = Exit.reading(error)
        }
    }
}
