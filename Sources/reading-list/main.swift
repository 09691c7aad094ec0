// reading-list: a live screen on a collection-sync database, in one file.
//
//     swift run reading-list ~/.local/share/syncctl/sync.sqlite custom-123
//
// It opens the database, observes one collection and its queue, and shows them again after every
// change, whoever made it: this process, or `syncctl` in another terminal adding, removing,
// flushing and pulling. On a terminal it redraws the screen; on a pipe it prints one line per
// change. The whole of what an app needs is `SyncStore.open` and `observe`.
import CollectionSync
import Foundation

/// What the screen shows; a new value is drawn only when it differs from the last.
struct Screen: Equatable, Sendable {
    var entries: [Entry]
    /// Edits of this collection not yet on the server, and those it refused.
    var waiting: Int
    var failed: Int
    var lastFlush: Date?
}

func fail(_ message: String, _ code: Int32) -> Never {
    FileHandle.standardError.write(Data("reading-list: \(message)\n".utf8))
    exit(code)
}

let arguments = CommandLine.arguments.dropFirst()
guard arguments.count == 2, let path = arguments.first, let id = arguments.last else {
    fail("usage: reading-list DATABASE COLLECTION_ID", 64)
}
let collection: CollectionID
do {
    collection = try CollectionID(validating: id)
} catch {
    fail("\(error)", 64)
}

let terminal = isatty(STDOUT_FILENO) == 1
let time = Date.FormatStyle(date: .omitted, time: .standard)

func draw(_ screen: Screen) {
    let tweets = screen.entries.map { $0.tweet.rawValue + ($0.pending == .add ? "+" : "") }
    let queue = "\(screen.waiting) waiting · \(screen.failed) failed"
    guard terminal else {
        // One line per change, for pipes and scripts: `custom-1 · 20 21+ · 1 waiting · 0 failed`.
        FileHandle.standardOutput.write(Data("\(collection) · \(tweets.joined(separator: " ")) · \(queue)\n".utf8))
        return
    }
    var lines = ["\u{1B}[H\u{1B}[2JReading list \(collection) (\(screen.entries.count) tweets)", ""]
    lines += screen.entries.enumerated().map { index, entry in
        "  \(index + 1). \(entry.tweet)" + (entry.pending == .add ? "   (added here, not synced yet)" : "")
    }
    lines += ["", queue + (screen.lastFlush.map { " · last flush \($0.formatted(time))" } ?? ""), "Ctrl-C quits."]
    FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
}

do {
    let store = try await SyncStore.open(at: path)
    let screens = store.observe { store in
        let status = try await store.status()
        let ops = status.collections.first { $0.id == collection }?.ops ?? OpCounts()
        // Only what is drawn, so that a change that leaves the screen as it was draws nothing
        // (a pipe's line has no time of the last flush).
        return Screen(entries: try await store.entries(of: collection), waiting: ops.pending + ops.inFlight,
                      failed: ops.failed, lastFlush: terminal ? status.lastFlushAt : nil)
    }
    for try await screen in screens {
        draw(screen)
    }
} catch let error as SyncError {
    fail(error.description, 74)
} catch {
    fail("\(error)", 1)
}
