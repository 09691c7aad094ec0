import CSQLite
import CollectionSyncSchema
import CollectionsAPI
import Dispatch
import Foundation
import Synchronization

/// Owns one SQLite connection and serializes every access to it.
///
/// Every ``write(_:)`` runs in a `BEGIN IMMEDIATE` transaction: its changes commit when the body
/// returns and roll back when it throws (alone, in its savepoint, when it shares a transaction:
/// see below). Every ``read(_:)`` sees one consistent snapshot.
///
/// A transaction runs on the calling thread when the connection is free and SQLite grants its
/// lock at once: no thread hop, which is most of the cost of a small write. Otherwise (another
/// task is using the connection, or another process holds the write lock) it runs on the
/// queue's own thread, where waiting up to `busy_timeout` for the lock blocks no thread of the
/// Swift concurrency pool. A long write asks for the queue's thread anyway (`onQueue`): see
/// ``write(onQueue:_:)``.
///
/// Writes that wait for the connection are committed together (group commit): the queue runs
/// every write waiting when it gets the connection in one transaction, each in its own
/// savepoint, so that one that throws is rolled back alone. A commit costs the same for one
/// write as for several, and the busier the store, the fewer commits it pays.
final class DatabaseQueue: @unchecked Sendable {
    // @unchecked: `connection` is only touched while holding `lock`.
    private let queue: DispatchQueue
    private let lock = NSLock()
    private let connection: Connection
    /// Writes waiting for the queue, in arrival order.
    private let waitingWrites = Mutex<[WaitingWrite]>([])
    private let busyTimeoutMillis: Int32
    /// Called after each write transaction commits (``SyncStore``'s change detector).
    // In a class: a closure kept directly in the Mutex came back through `withLock`'s inout
    // wrapped in two more reabstraction thunks at every read, and stayed so, so that the n-th
    // commit called through 2n thunks (B1 fell from 21k to 4.4k edits/s at 20,000 edits).
    private let committed = Mutex<CommitAction?>(nil)
    let path: String

    /// Sets what to call after each write transaction commits.
    func onCommit(_ action: @escaping @Sendable () -> Void) {
        committed.withLock { $0 = CommitAction(run: action) }
    }

    /// Opens the database, sets WAL, `busy_timeout` and foreign keys, and migrates it.
    /// A database from a newer schema is refused before anything is written to it.
    init(path: String, busyTimeoutMillis: Int32, migrations: [SchemaMigration] = schemaMigrations, wallClock: WallClock = .system) throws {
        self.path = path
        self.busyTimeoutMillis = busyTimeoutMillis
        queue = DispatchQueue(label: "collection-sync.database")
        connection = try Connection(path: path, busyTimeoutMillis: busyTimeoutMillis)
        try Migrator(migrations: migrations, wallClock: wallClock).prepare(connection, path: path)
    }

    /// Runs `body` in one write transaction. `body` may run twice: when its first run, on the
    /// calling thread, meets a lock held by another process, it is rolled back and run again
    /// on the queue, where it waits for the lock.
    ///
    /// `onQueue`: run on the queue's thread even when the connection is free. For writes of
    /// hundreds of rows (a flush's claims and answers, about a millisecond each; a pull's merge;
    /// a call that queues many edits): on the calling thread such a write holds one of the
    /// concurrency pool's few threads (one per core), and the tasks that send requests and read
    /// answers wait behind it. A flush of 100,000 ops ran 17% faster on 2 cores with its claims
    /// and answers on the queue.
    func write<T: Sendable>(onQueue: Bool = false, _ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let result = try await transaction(onQueue: onQueue, body)
        committed.withLock { $0 }?.run()
        return result
    }

    private func transaction<T: Sendable>(onQueue: Bool, _ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        if !onQueue, let result = try withoutWaiting("BEGIN IMMEDIATE", body) { return result }
        return try await withCheckedThrowingContinuation { continuation in
            let result = ResultBox<T>()
            let write = WaitingWrite(
                run: { connection in result.value = try body(connection) },
                finish: { outcome in continuation.resume(with: outcome.map { result.value! }) })
            waitingWrites.withLock { $0.append(write) }
            queue.async { [self] in commitWaitingWrites() }
        }
    }

    /// Runs `body` in one read transaction (a consistent snapshot).
    func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await access("BEGIN DEFERRED", body)
    }

    private func access<T: Sendable>(_ begin: String, _ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        if let result = try withoutWaiting(begin, body) { return result }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                lock.lock()
                defer { lock.unlock() }
                continuation.resume(with: Result { try DatabaseQueue.transaction(connection, begin, body) })
            }
        }
    }

    /// The fast path: the transaction on this thread, or nil when it would have to wait.
    private func withoutWaiting<T>(_ begin: String, _ body: (Connection) throws -> T) throws -> T? {
        guard lock.try() else { return nil }
        defer { lock.unlock() }
        sqlite3_busy_timeout(connection.handle, 0)
        defer { sqlite3_busy_timeout(connection.handle, busyTimeoutMillis) }
        do {
            return try DatabaseQueue.transaction(connection, begin, body)
        } catch let error as SyncError where error.code == .databaseBusy {
            return nil
        }
    }

    /// Runs every waiting write in one transaction (one call per write is queued: the calls
    /// that find none waiting return at once).
    private func commitWaitingWrites() {
        lock.lock()
        defer { lock.unlock() }
        var writes = waitingWrites.withLock { writes in
            defer { writes.removeAll() }
            return writes[...]
        }
        while !writes.isEmpty {
            guard writes.count > 1 else {
                let write = writes.removeFirst()
                write.finish(Result { try DatabaseQueue.transaction(connection, "BEGIN IMMEDIATE", write.run) })
                continue
            }
            writes = commitTogether(writes)
        }
    }

    /// Commits as many of `writes` as one transaction can hold, in order, and finishes them;
    /// returns the rest: the writes after one whose error made SQLite roll the transaction back
    /// (disk full, I/O), which fails every write before it with that error too.
    /// Called with `lock` held (or, in tests, with the queue otherwise unused).
    func commitTogether(_ writes: ArraySlice<WaitingWrite>) -> ArraySlice<WaitingWrite> {
        do {
            try connection.run("BEGIN IMMEDIATE")
        } catch {
            for write in writes { write.finish(.failure(error)) }
            return []
        }
        var outcomes: [Result<Void, any Error>] = []
        for write in writes {
            do {
                try connection.run("SAVEPOINT write")
                do {
                    try write.run(connection)
                    try connection.run("RELEASE write")
                    outcomes.append(.success(()))
                } catch {
                    // SQLite ended the whole transaction: handled below, like a failed savepoint.
                    guard sqlite3_get_autocommit(connection.handle) == 0 else { throw error }
                    try connection.run("ROLLBACK TO write")
                    try connection.run("RELEASE write")
                    outcomes.append(.failure(error))
                }
            } catch {
                // The transaction is lost (or a savepoint statement failed: end it): nothing in it
                // is kept, so this write and every one before it fail; the rest go on.
                if sqlite3_get_autocommit(connection.handle) == 0 { try? connection.execute("ROLLBACK") }
                for done in writes[writes.startIndex...writes.startIndex + outcomes.count] { done.finish(.failure(error)) }
                return writes[(writes.startIndex + outcomes.count + 1)...]
            }
        }
        do {
            try connection.run("COMMIT")
        } catch {
            if sqlite3_get_autocommit(connection.handle) == 0 { try? connection.execute("ROLLBACK") }
            for write in writes { write.finish(.failure(error)) }
            return []
        }
        for (write, outcome) in zip(writes, outcomes) { write.finish(outcome) }
        return []
    }

    private static func transaction<T>(_ connection: Connection, _ begin: String, _ body: (Connection) throws -> T) throws -> T {
        try connection.run(begin)  // cached statements: no parsing per transaction
        do {
            let result = try body(connection)
            try connection.run("COMMIT")
            return result
        } catch {
            // After some errors (disk full, I/O) SQLite has already rolled back; that is fine.
            if sqlite3_get_autocommit(connection.handle) == 0 {
                try? connection.execute("ROLLBACK")
            }
            throw error
        }
    }
}

/// A write waiting for the queue: `run` does its work inside a transaction, `finish` hands its
/// caller the result once the transaction has committed (or the error).
struct WaitingWrite: Sendable {
    let run: @Sendable (Connection) throws -> Void
    let finish: @Sendable (Result<Void, any Error>) -> Void
}

/// Where a waiting write keeps its body's result until its transaction commits. Written by
/// `run` and read by `finish`, one after the other on the queue's thread, under its lock.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

/// What to call after each write transaction commits (``DatabaseQueue/onCommit(_:)``).
final class CommitAction: Sendable {
    let run: @Sendable () -> Void
    init(run: @escaping @Sendable () -> Void) { self.run = run }
}
