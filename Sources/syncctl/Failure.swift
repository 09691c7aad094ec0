import ArgumentParser
import CollectionSync
import CollectionSyncJSON
import CollectionsAPI

/// The exit codes of the contract (sysexits), `syncctl.md`.
enum Exit {
    static let ok: Int32 = 0
    static let usage: Int32 = 64
    static let deadLetters: Int32 = 65
    static let unavailable: Int32 = 69
    static let database: Int32 = 74
    static let tryLater: Int32 = 75
    static let auth: Int32 = 77
    static let config: Int32 = 78
}

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
        switch error {
        case let failure as Failure:
            self = failure
        case is CancellationError:
            exitCode = Exit.tryLater
            message = "interrupted"
        case let error as CollectionsAPIError:
            switch error.code {
            case .configuration: exitCode = Exit.config
            case .authentication, .forbidden, .clockSkew: exitCode = Exit.auth
            case .rateLimited, .cancelled: exitCode = Exit.tryLater
            case .notFound, .invalidRequest, .permanent, .tooManyChanges, .invalidArgument: exitCode = Exit.usage
            default: exitCode = Exit.unavailable
            }
            message = error.description
        case let error as SyncError:
            switch error.code {
            case .invalidInput, .opNotFound: exitCode = Exit.usage
            case .opInFlight, .leaseNotHeld: exitCode = Exit.tryLater
            default: exitCode = Exit.database
            }
            message = error.description
        default:
            exitCode = Exit.database
            message = String(describing: error)
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
