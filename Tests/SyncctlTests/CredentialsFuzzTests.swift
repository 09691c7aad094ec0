import Foundation
import PropertyBased
@testable import syncctl
import SyncctlContract
import Testing
import TestSupport

/// The credentials-file parser against random text: it returns only known keys or refuses with
/// exit 78, and its messages never repeat a value from the file.
@Suite("Fuzzing: the credentials-file parser")
struct CredentialsFuzzTests {
    static let pieces = ["TWITTER_CONSUMER_KEY", "TWITTER_ACCESS_TOKEN_SECRET", "TWITTER_BEARER_TOKEN", "export ", "=",
                         "\"", "'", "#", " ", "\n", "\r\n", "\t", "s3cr3t-VALUE", "é", "\u{0}", "KEY", "=="]

    @Test("known keys or exit 78; no message repeats a value")
    func parse() async {
        let text = pick(Self.pieces).array(of: 0...40).map { $0.joined() }
        await propertyCheck(count: fuzzExecutions, input: text) { text in
            do {
                let values = try CredentialsFile.parse(text, path: "/tmp/credentials")
                #expect(values.keys.allSatisfy(CredentialsFile.names.contains), "\(text.debugDescription)")
            } catch let failure as Failure {
                #expect(failure.exitCode == Exit.config)
                #expect(!failure.message.contains("s3cr3t"), "a value leaked into: \(failure.message)")
            } catch {
                Issue.record("untyped error \(error) for \(text.debugDescription)")
            }
        }
    }

    @Test("regression (found by the property above): a value typed on a key's line is not echoed")
    func valueOnTheWrongLine() {
        for text in ["TWITTER_CONSUMER_SECRET: s3cr3t-VALUE=x", "s3cr3t-VALUE=x", "export s3cr3t=1"] {
            let error = #expect(throws: Failure.self) { try CredentialsFile.parse(text, path: "/tmp/credentials") }
            #expect(error?.message.contains("s3cr3t") == false, "\(error?.message ?? "")")
        }
        let typo = #expect(throws: Failure.self) { try CredentialsFile.parse("TWITTER_CONSUMER_KY=x", path: "/tmp/c") }
        #expect(typo?.message.contains("\"TWITTER_CONSUMER_KY\"") == true, "a variable-like key is still named")
    }
}
