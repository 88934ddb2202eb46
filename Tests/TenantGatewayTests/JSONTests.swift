import Testing

import TenantGateway

@Suite("JSON parser and serializer")
struct JSONTests {
    @Test("a compact document survives a round trip byte for byte, keys in their original order")
    func roundTripKeepsBytes() throws {
        let text = #"{"zeta":1,"alpha":[true,false,null],"mid":{"b":"x","a":-0.50},"n":1e-7,"s":"caf\u00e9 ☕"}"#
        let parsed = try JSON.parse(text)
        // The \u00e9 escape is decoded, so compare with the decoded spelling.
        #expect(parsed.text == #"{"zeta":1,"alpha":[true,false,null],"mid":{"b":"x","a":-0.50},"n":1e-7,"s":"café ☕"}"#)
        #expect(parsed.objectValue?.keys == ["zeta", "alpha", "mid", "n", "s"])
        #expect(try JSON.parse(parsed.bytes) == parsed)
    }

    @Test("whitespace between tokens is accepted and dropped on output")
    func whitespace() throws {
        let parsed = try JSON.parse(" \n\t{ \"a\" : [ 1 , 2 ] ,\r\n \"b\" : { } } \n")
        #expect(parsed.text == #"{"a":[1,2],"b":{}}"#)
    }

    @Test("numbers keep their exact spelling", arguments: [
        "0", "-0", "1.0", "1.50", "1e-7", "1E+10", "-12.5e3", "12345678901234567890123456789", "0.1000000000000000055511151231257827",
    ])
    func numbersVerbatim(spelling: String) throws {
        let parsed = try JSON.parse("[\(spelling)]")
        #expect(parsed[0] == .number(spelling))
        #expect(parsed.text == "[\(spelling)]")
    }

    @Test("number accessors convert integral values and refuse fractional ones")
    func numberAccessors() {
        #expect(JSON.number("1e3").intValue == 1000)
        #expect(JSON.number("42").intValue == 42)
        #expect(JSON.number("1.5").intValue == nil)
        #expect(JSON.number("1.5").doubleValue == 1.5)
        #expect(JSON.string("1").intValue == nil)
        #expect(JSON(2.0) == .number("2"))
        #expect(JSON(0.25) == .number("0.25"))
        #expect(JSON(Double.infinity) == .null)
    }

    @Test("a later duplicate key replaces the earlier value in the earlier position")
    func duplicateKeys() throws {
        let parsed = try JSON.parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(parsed.text == #"{"a":3,"b":2}"#)
    }

    @Test("editing an object replaces values in place and appends new keys")
    func objectEditing() {
        var object: JSONObject = ["model": "a", "messages": [], "stream": true]
        object["model"] = "b"
        object["max_tokens"] = 10
        object["stream"] = nil
        #expect(JSON.object(object).text == #"{"model":"b","messages":[],"max_tokens":10}"#)
        #expect(object.removeValue(forKey: "messages") == .array([]))
        #expect(object.keys == ["model", "max_tokens"])
    }

    @Test("string escapes decode to the characters they name")
    func escapesDecode() throws {
        let parsed = try JSON.parse(#"["\"\\\/\b\f\n\r\t", "\u0041\u00e9\u4e2d", "tab\there"]"#)
        #expect(parsed[0] == .string("\"\\/\u{08}\u{0C}\n\r\t"))
        #expect(parsed[1] == .string("Aé中"))
        #expect(parsed[2] == .string("tab\there"))
    }

    @Test("the serializer escapes quotes, backslashes and control characters, and nothing else")
    func escapesEncode() {
        let value = JSON.string("q\" b\\ n\n r\r t\t c\u{01} d\u{7F} / é 😀")
        #expect(value.text == #""q\" b\\ n\n r\r t\t c\u0001 d\#u{7F} / é 😀""#)
    }

    @Test("surrogate pairs combine; lone surrogates become U+FFFD")
    func surrogates() throws {
        #expect(try JSON.parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try JSON.parse(#""\uD83D\uDE00x""#) == .string("😀x"))
        #expect(try JSON.parse(#""\ud83d""#) == .string("\u{FFFD}"))
        #expect(try JSON.parse(#""\ud83dabc""#) == .string("\u{FFFD}abc"))
        #expect(try JSON.parse(#""\ud800\u0041""#) == .string("\u{FFFD}A"))
        #expect(try JSON.parse(#""\ude00""#) == .string("\u{FFFD}"))
    }

    @Test("raw UTF-8 passes through both ways")
    func rawUTF8() throws {
        let text = #"{"k":"日本語 ünïcödé 🎉"}"#
        #expect(try JSON.parse(text).text == text)
    }

    @Test("nesting up to the limit parses; one level deeper is refused")
    func depthLimit() throws {
        let limit = JSON.maximumDepth
        let deepest = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        _ = try JSON.parse(deepest)
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(throws: JSONParseError.self) { try JSON.parse(tooDeep) }
        let objects = String(repeating: #"{"a":"#, count: limit + 1) + "1" + String(repeating: "}", count: limit + 1)
        do {
            _ = try JSON.parse(objects)
            Issue.record("expected a depth error")
        } catch {
            #expect(error.reason.contains("nesting"))
        }
    }

    @Test("malformed documents are refused with a reason and an offset", arguments: [
        ("", 0), ("   ", 3), ("{", 1), ("[1,]", 3), (#"{"a" 1}"#, 5), (#"{"a":1,}"#, 7), ("01", 1), ("1.", 2), ("-", 1), ("1e", 2),
        ("tru", 0), ("nul", 0), (#""abc"#, 4), (#""\x""#, 3), ("{} x", 3), ("NaN", 0), ("{'a':1}", 1), ("[1 2]", 3), ("+1", 0),
        ("[\"a\"", 4), (#"{"a":}"#, 5), (#""\u12g4""#, 5),
    ])
    func malformed(text: String, offset: Int) {
        do {
            _ = try JSON.parse(text)
            Issue.record("\(text) parsed but should not have")
        } catch {
            #expect(!error.reason.isEmpty)
            #expect(error.offset == offset, "\(text): \(error)")
            #expect(error.description.contains("at byte \(error.offset)"))
        }
    }

    @Test("control characters and invalid UTF-8 inside strings are refused")
    func badStringBytes() {
        #expect(throws: JSONParseError.self) { try JSON.parse([0x22, 0x61, 0x01, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSON.parse([0x22, 0xFF, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSON.parse([0x22, 0xE2, 0x82, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSON.parse([0x22, 0x5C, 0x6E, 0xC3, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSON.parse("\"line\nbreak\"") }
    }

    @Test("accessors answer nil for the wrong type and out-of-range indices")
    func accessors() throws {
        let value = try JSON.parse(#"{"a":[1,"x",null,true],"o":{}}"#)
        #expect(value["a"]?[1]?.stringValue == "x")
        #expect(value["a"]?[2]?.isNull == true)
        #expect(value["a"]?[3]?.boolValue == true)
        #expect(value["a"]?[9] == nil)
        #expect(value["missing"] == nil)
        #expect(value["a"]?["key"] == nil)
        #expect(value["o"]?.objectValue?.isEmpty == true)
        #expect(value.typeName == "object")
        #expect(value["a"]?.typeName == "array")
    }
}
