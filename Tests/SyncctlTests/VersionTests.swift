import CollectionSync
import Foundation
import Testing
import TestSupport

@Suite("syncctl --version and the shell completions, run as a real binary")
struct VersionTests {
    let folder = TemporaryFolder()

    @Test("--version prints the version, the SQLite library's version and the newest schema; --json as one document")
    func version() async throws {
        let text = try await Syncctl.run(["--version"], folder: folder)
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout == "syncctl \(BuildInfo.version)\nSQLite \(BuildInfo.sqliteVersion)\nschema \(BuildInfo.newestSchemaVersion)\n")
        for arguments in [["--version", "--json"], ["--json", "--version"]] {
            let json = try await Syncctl.run(arguments, folder: folder)
            #expect(json.status == 0, "\(json)")
            let document = try #require(json.json)
            #expect(document["version"] as? String == BuildInfo.version)
            #expect((document["sqlite"] as? String)?.wholeMatch(of: /\d+\.\d+\.\d+(\.\d+)?/) != nil)
            #expect(document["sqlite"] as? String == BuildInfo.sqliteVersion)
            #expect(document["schema"] as? Int == BuildInfo.newestSchemaVersion && BuildInfo.newestSchemaVersion >= 4)
        }
        // Not at the root, or with other arguments, it is not the version request.
        let help = try await Syncctl.run(["remove", "--help"], folder: folder)
        #expect(help.status == 0 && help.stdout.contains("Examples:") && help.stdout.contains("--ids-from"), "\(help)")
        let sub = try await Syncctl.run(["status", "--version"], folder: folder)
        #expect(sub.status == 64, "\(sub)")
    }

    @Test("completion scripts for bash, zsh and fish name the commands and their options", arguments: ["bash", "zsh", "fish"])
    func completion(_ shell: String) async throws {
        let run = try await Syncctl.run(["--generate-completion-script", shell], folder: folder)
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("syncctl") && run.stdout.contains("remove") && run.stdout.contains("json") && run.stdout.contains("ids-from"))
    }
}
