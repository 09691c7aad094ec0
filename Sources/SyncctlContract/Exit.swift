import CollectionSync
import CollectionsAPI

/// The exit codes of the contract (sysexits), `syncctl.md`.
package enum Exit {
    package static let ok: Int32 = 0
    package static let usage: Int32 = 64
    package static let deadLetters: Int32 = 65
    package static let unavailable: Int32 = 69
    package static let database: Int32 = 74
    package static let tryLater: Int32 = 75
    package static let auth: Int32 = 77
    package static let config: Int32 = 78

    /// The contract's reading of an error of the engine: its exit code, and a message for people.
    package static func reading(_ error: any Error) -> (code: Int32, message: String) {
        switch error {
        case let failure as Failure:
            return (failure.exitCode, failure.message)
        case is CancellationError:
            return (tryLater, "interrupted")
        case let error as CollectionsAPIError:
            let code: Int32
            switch error.code {
            case .configuration: code = config
            case .authentication, .forbidden, .clockSkew: code = auth
            case .rateLimited, .cancelled: code = tryLater
            case .notFound, .invalidRequest, .permanent, .tooManyChanges, .invalidArgument: code = usage
            default: code = unavailable
            }
            return (code, error.description)
        case let error as SyncError:
            let code: Int32
            switch error.code {
            case .invalidInput, .opNotFound: code = usage
            case .opInFlight, .leaseNotHeld: code = tryLater
            default: code = database
            }
            return (code, error.description)
        default:
            return (database, String(describing: error))
        }
    }
}
