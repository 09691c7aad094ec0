import CollectionsAPI
import Foundation
import SyncctlContract

/// Where `remove` and `add` take their tweet ids from: the arguments, standard input (`-`), or a
/// file (`--ids-from PATH`). Exactly one source per call.
enum TweetSource: Equatable {
    case arguments([String])
    case standardInput
    case file(String)

    /// The one source the command line names. Refused (64): no source at all, and more than one
    /// (ids as arguments with `-` or `--ids-from`, `-` twice, `--ids-from` twice).
    /// `idsFromCount`: how many times `--ids-from` was given (the parser keeps the last).
    static func resolve(arguments: [String], idsFrom: String?, idsFromCount: Int) throws -> TweetSource {
        let dashes = arguments.filter { $0 == "-" }.count
        let sources = (arguments.count > dashes ? 1 : 0) + dashes + max(idsFromCount, idsFrom == nil ? 0 : 1)
        guard sources <= 1 else {
            throw Failure.usage("""
                give the tweet ids one way: as arguments, as - (standard input) or with one --ids-from PATH, \
                not several (see --help)
                """)
        }
        if dashes == 1 { return .standardInput }
        if let path = idsFrom { return path == "-" ? .standardInput : .file(path) }
        guard !arguments.isEmpty else {
            throw Failure.usage("no tweet ids: give them as arguments, as - (standard input) or with --ids-from PATH")
        }
        return .arguments(arguments)
    }

    /// Every id of the source, validated; the first bad one refuses the call (64), with where it is.
    func read() throws -> [TweetID] {
        switch self {
        case .arguments(let values):
            var ids: [TweetID] = []
            ids.reserveCapacity(values.count)
            for (index, value) in values.enumerated() {
                do {
                    ids.append(try TweetID(validating: value))
                } catch let error as CollectionsAPIError {
                    throw Failure.usage(values.count == 1 ? error.message : "tweet id \(index + 1) of \(values.count): \(error.message)")
                }
            }
            return ids
        case .standardInput:
            return try Self.read(descriptor: STDIN_FILENO, named: "standard input")
        case .file(let path):
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw Failure.usage("cannot read --ids-from \(path): \(String(cString: strerror(errno)))")
            }
            defer { close(descriptor) }
            return try Self.read(descriptor: descriptor, named: path)
        }
    }

    /// Reads `descriptor` to its end in chunks and parses the ids as they arrive: memory is the
    /// ids themselves plus one chunk, whatever the input's size.
    private static func read(descriptor: Int32, named name: String) throws -> [TweetID] {
        var parser = TweetIDParser(source: name)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 1)
        defer { chunk.deallocate() }
        while true {
            let count = Foundation.read(descriptor, chunk.baseAddress, chunk.count)
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure.usage("cannot read \(name == "standard input" ? name : "--ids-from \(name)"): \(String(cString: strerror(errno)))")
            }
            try parser.consume(UnsafeRawBufferPointer(rebasing: chunk[..<count]))
        }
        return try parser.finish()
    }
}

/// Splits bytes into whitespace-separated tweet ids (space, tab, newline, carriage return,
/// vertical tab, form feed: so CRLF files too) and validates each with ``TweetID/init(validating:)``.
/// Fed in chunks; an id may straddle two.
struct TweetIDParser {
    /// For messages: "standard input" or the file's path.
    let source: String
    private(set) var ids: [TweetID] = []
    /// The bytes of the id being read. Only the first ``shownBytes`` are kept: no valid id is that
    /// long, and a file with no whitespace at all must not grow one huge token.
    private var token: [UInt8] = []
    private var tokenLength = 0
    private var line = 1
    private var tokenLine = 1
    private static let shownBytes = 65

    init(source: String) {
        self.source = source
        token.reserveCapacity(Self.shownBytes)
    }

    mutating func consume(_ bytes: UnsafeRawBufferPointer) throws {
        for byte in bytes {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), 0x0B, 0x0C:
                try endToken()
            case UInt8(ascii: "\n"):
                try endToken()
                line += 1
            default:
                if tokenLength == 0 { tokenLine = line }
                if tokenLength < Self.shownBytes { token.append(byte) }
                tokenLength += 1
            }
        }
    }

    /// The ids, once the input has ended; refuses an input with none.
    mutating func finish() throws -> [TweetID] {
        try endToken()
        guard !ids.isEmpty else {
            throw Failure.usage(source == "standard input" ? "no tweet ids on standard input" : "no tweet ids in \(source)")
        }
        return ids
    }

    private mutating func endToken() throws {
        guard tokenLength > 0 else { return }
        defer {
            token.removeAll(keepingCapacity: true)
            tokenLength = 0
        }
        let text = String(decoding: token, as: UTF8.self)
        do {
            ids.append(try TweetID(validating: text))
        } catch let error as CollectionsAPIError {
            throw Failure.usage("\(source), line \(tokenLine), id \(ids.count + 1): \(error.message)")
        }
    }
}
