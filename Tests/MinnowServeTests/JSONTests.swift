@testable import MinnowServe
import XCTest

final class JSONTests: XCTestCase {
    func parse(_ s: String) throws -> JSONValue { try JSONValue.parse(Array(s.utf8)) }

    func testRectangularNumericArraysBecomeOneFlatTensor() throws {
        XCTAssertEqual(try parse("[[1, 2.5, -3e2], [4, 5, 6]]"), .tensor(shape: [2, 3], values: [1, 2.5, -300, 4, 5, 6]))
        XCTAssertEqual(try parse("[[[1],[2]],[[3],[4]]]"), .tensor(shape: [2, 2, 1], values: [1, 2, 3, 4]))
        XCTAssertEqual(try parse(" 7 "), .number(7))
        // Ragged or mixed arrays stay arrays, so decoding can say where they go wrong.
        XCTAssertEqual(try parse("[[1, 2], [3]]"), .array([.tensor(shape: [2], values: [1, 2]), .tensor(shape: [1], values: [3])]))
        XCTAssertEqual(try parse("[1, \"a\"]"), .array([.number(1), .string("a")]))
        XCTAssertEqual(try parse("[]"), .array([]))
    }

    func testObjectsStringsAndLiterals() throws {
        let v = try parse(#"{"a": true, "b": null, "c": "x\"\\\/\n\u00e9\ud83d\ude00", "a": false}"#)
        XCTAssertEqual(v["a"], .bool(false), "the last duplicate key wins")
        XCTAssertEqual(v["b"], .null)
        XCTAssertEqual(v["c"], .string("x\"\\/\né😀"))
        XCTAssertNil(v["missing"])
    }

    func testInvalidDocumentsAreRefusedWithWhere() {
        let bad: [(String, String)] = [
            ("", "unexpected end"), ("[1, 2", "end of input"), ("[1 2]", "expected ','"), ("{\"a\" 1}", "expected ':'"),
            ("[01]", "expected ','"), ("[1.]", "digits expected after '.'"), ("[1e]", "exponent"), ("[-]", "invalid number"),
            ("[1e999]", "out of range"), ("\"a\u{01}\"", "control character"), ("\"\\x\"", "invalid escape"),
            ("\"\\ud800\"", "unpaired surrogate"), ("nul", "unexpected end"), ("[1] x", "after the JSON value"),
            ("[NaN]", "unexpected character"), ("{1: 2}", "member name"),
        ]
        for (text, fragment) in bad {
            XCTAssertThrowsError(try parse(text), text) { e in
                let e = e as! ServeError
                XCTAssertEqual(e.kind, .badRequest, text)
                XCTAssertTrue(e.message.contains(fragment), "\(text): \(e.message)")
            }
        }
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xFF, 0x22])) { e in
            XCTAssertTrue((e as! ServeError).message.contains("UTF-8"))
        }
    }

    func testDeepNestingIsRefusedNotAStackOverflow() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try parse(deep)) { e in XCTAssertTrue((e as! ServeError).message.contains("nesting deeper")) }
        XCTAssertNoThrow(try parse(String(repeating: "[", count: 60) + "1" + String(repeating: "]", count: 60)))
    }

    func testWriterOutputParsesBackToTheSameValues() throws {
        var w = JSONWriter()
        w.beginObject()
        w.key("s"); w.string("quote\" slash\\ nl\n tab\t bell\u{07} é")
        w.key("t"); w.tensor(.float32([1.5, -0.1, 3e-8, .infinity, 7, 8]), shape: [2, 3])
        w.key("i"); w.tensor(.integers([1, -2, 9_007_199_254_740_992]), shape: [3])
        w.key("e"); w.beginArray(); w.endArray()
        w.key("b"); w.bool(true)
        w.endObject()
        let v = try JSONValue.parse(w.bytes)
        XCTAssertEqual(v["s"], .string("quote\" slash\\ nl\n tab\t bell\u{07} é"))
        XCTAssertEqual(v["t"], .array([.tensor(shape: [3], values: [1.5, -0.1, 3e-8]),
                                       .array([.null, .number(7), .number(8)])]), "non-finite floats are written as null")
        XCTAssertEqual(v["i"], .tensor(shape: [3], values: [1, -2, 9_007_199_254_740_992]))
        XCTAssertEqual(v["e"], .array([]))
        XCTAssertEqual(v["b"], .bool(true))
        // Floats are written in their shortest form that reads back exactly.
        if case .tensor(_, let vals)? = try JSONValue.parse(Array("[0.1, 0.33333334]".utf8)).asTensor {
            XCTAssertEqual(vals.map { Float($0) }, [0.1, 0.33333334])
        }
    }
}

extension JSONValue {
    var asTensor: JSONValue? { if case .tensor = self { return self } else { return nil } }
}
