import CollectionSync
import Foundation
import SyncctlContract

extension LogEvent {
    /// One line for people.
    var line: String {
        var text = "\(id)  \(rfc3339(at))  \(event.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0)) \(collection)"
        if let tweet { text += " \(tweet)" }
        if let winner { text += "  winner=\(winner.rawValue)" }
        if let localHLC { text += "  local=\(rfc3339(localHLC.date))" }
        if let remoteHLC { text += "  remote=\(rfc3339(remoteHLC.date))" }
        if !detail.isEmpty { text += "  \(detail)" }
        return text
    }
}
