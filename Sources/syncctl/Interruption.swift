import Foundation
import Logging
import ServiceLifecycle
import SyncctlContract
import Synchronization
import UnixSignals

/// SIGINT and SIGTERM for `flush`, `pull` and `watch` (syncctl.md, "Logs, events and signals").
///
/// The work runs as the one service of a swift-service-lifecycle `ServiceGroup`. The first
/// signal starts the group's graceful shutdown: the engine starts no new request and commits
/// the answers already on the wire; after ``grace`` the group cancels the work, and the ops whose
/// answer did not come go back to pending. A second signal exits at once.
enum Interruption {
    /// How long the answers on the wire may take to arrive after the first signal.
    static let grace: Duration = .seconds(5)

    struct Outcome<Value: Sendable>: Sendable {
        var value: Value
        /// The name of the signal that stopped the work (`SIGINT`, `SIGTERM`), if one did.
        var signal: String?
    }

    /// Runs `work` until it returns or a signal stops it (it then returns what `work` returned
    /// after stopping). On a second signal `onSecondSignal` runs and the process exits with 75.
    static func run<Value: Sendable>(logger: Logger, onSecondSignal: @escaping @Sendable (String) -> Void = Interruption.tellExit,
                                     _ work: @escaping @Sendable () async throws -> Value) async throws -> Outcome<Value> {
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let caught = Mutex<[String]>([])
        let watcher = Task {
            for await signal in signals {
                let name = signal.description
                let count = caught.withLock { $0.append(name); return $0.count }
                if count == 1 {
                    tell("\(name): finishing the requests on the wire (at most \(grace.components.seconds) s); a second signal exits at once",
                         level: .notice)
                } else {
                    onSecondSignal(name)
                    Foundation.exit(Exit.tryLater)
                }
            }
        }
        defer { watcher.cancel() }

        let service = OneShot(work)
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                             failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = grace
        try await ServiceGroup(configuration: configuration).run()
        guard let result = service.result.withLock({ $0 }) else { throw CancellationError() }
        return Outcome(value: try result.get(), signal: caught.withLock { $0.first })
    }

    /// What a second signal says by default.
    @Sendable static func tellExit(_ signal: String) {
        tell("\(signal) again: stopped at once; ops left in flight are recovered by the next flush", level: .error)
    }

    /// A piece of work as a service that ends by itself (the group then shuts down).
    private final class OneShot<Value: Sendable>: Service {
        let work: @Sendable () async throws -> Value
        let result = Mutex<Result<Value, any Error>?>(nil)

        init(_ work: @escaping @Sendable () async throws -> Value) {
            self.work = work
        }

        func run() async {
            let outcome: Result<Value, any Error>
            do { outcome = .success(try await work()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
        }
    }
}
