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

    /// The contract's exit code for a flush report (78, 77, 69, 75, 65 in that order of precedence).
    package static func flush(_ report: FlushReport, interruptedBy signal: String? = nil) -> (code: Int32, message: String) {
        switch report.stopReason {
        case .configuration(let error): return (config, error.description)
        case .authentication(let error): return (auth, error.description)
        default: break
        }
        if report.pending > 0, let unreachable = report.unreachable { return (unavailable, "the API could not be reached: \(unreachable)") }
        if let signal {
            return (tryLater, "interrupted by \(signal)" + (report.pending > 0 ? ": \(ops(report.pending)) pending, sent again by the next flush" : ""))
        }
        switch report.stopReason {
        case .leaseHeld(let holder):
            return (tryLater, "another flush holds the lease (pid \(holder.pid) on \(holder.host), until \(rfc3339(holder.expiresAt)))")
        case .rateLimited(let until) where report.pending > 0:
            return (tryLater, "rate limited until \(rfc3339(until)); \(ops(report.pending)) pending")
        case .deadline where report.pending > 0:
            return (tryLater, "the deadline passed with \(ops(report.pending)) pending")
        case .cancelled where report.pending > 0:
            return (tryLater, "interrupted with \(ops(report.pending)) pending")
        default:
            break
        }
        if report.pending > 0 {
            return (tryLater, "\(ops(report.pending)) pending, next attempt \(report.nextAttemptAt.map(rfc3339) ?? "when due")")
        }
        if report.deadLetters > 0 {
            return (deadLetters, "\(report.deadLetters == 1 ? "1 dead-lettered op" : "\(report.deadLetters) dead-lettered ops") in the outbox (syncctl outbox --failed)")
        }
        return (ok, "")
    }
}
