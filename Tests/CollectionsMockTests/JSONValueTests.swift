@testable import CollectionsMock
import Testing

/// The mock's own JSON reader and writer (exact 64-bit numbers, strict syntax).
@Suite struct JSONValueTests {
    @Test func parsesAndWritesBack() throws {
        let text = #"{"id":"custom-1","n":18446744073709551615,"f":-1.5e3,"ok":true,"none":null,"list":[1,"two",{"a":[]}],"s":"q\"\\\/\n\u00e9\ud83d\ude00"}"#
        let value = try JSONValue.parse(Array(text.utf8))
        #expect(value["n"] == .number("18446744073709551615"))
        #expect(value["f"]?.doubleValue == -1500)
        #expect(value["ok"]?.boolValue == true && value["none"]?.isNull == true)
        #expect(value["list"]?.arrayValue?.count == 3)
        #expect(value["s"]?.stringValue == "q\"\\/\né😀")
        let written = value.text
        #expect(try JSONValue.parse(Array(written.utf8)) == value)
        #expect(JSONValue.string("a\u{1}b").text == #""a\u0001b""#)
    }

    @Test func rejectsWhatIsNotJSON() {
        for text in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"\\x\"", "\"\u{1}\"", "{} {}", "\"\\ud800\"", "[1 2]", "{'a':1}"] {
            #expect(throws: JSONValue.ParseError.self, "\(text)") { try JSONValue.parse(Array(text.utf8)) }
        }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Array(deep.utf8)) }
    }
}
