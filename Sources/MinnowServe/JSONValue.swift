import Foundation

/// A parsed JSON document, shaped for tensor payloads: a rectangular array of numbers (any
/// nesting depth) is kept as one flat `[Double]` with its shape, never as one value per element.
/// Doubles hold integers exactly up to 2^53, enough for int64 ids in practice.
///
/// Why our own parser rather than JSONSerialization: request bodies are mostly large numeric
/// arrays; parsing them straight into flat storage is the one copy the serving path allows, and
/// a typed result gives errors that name where the bad value is. The grammar is RFC 8259.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    /// A non-empty rectangular array whose leaves are all numbers: shape and row-major values.
    case tensor(shape: [Int], values: [Double])
    /// Any other array (mixed, ragged, containing objects or strings, or empty).
    case array([JSONValue])
    /// Members in document order (duplicate keys: the last one wins on lookup, as most parsers do).
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.tensor(s1, v1), .tensor(s2, v2)): s1 == s2 && v1 == v2
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    /// A short name of the kind of value, for error messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .tensor(let shape, _): "a numeric array of shape \(shape)"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Parses a whole document. Nesting deeper than `maxDepth` is refused (no stack exhaustion).
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) throws(ServeError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, maxDepth: maxDepth)
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected data after the JSON value") }
        return value
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(ServeError) -> JSONValue {
        let result: Result<JSONValue, ServeError> = bytes.withUnsafeBytes { b in
            do throws(ServeError) { return .success(try parse(b, maxDepth: maxDepth)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// Recursive-descent parser over raw bytes (RFC 8259).
struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var index = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func error(_ what: String) -> ServeError { .badRequest("invalid JSON at byte \(index): \(what)") }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
    }

    mutating func parseValue(depth: Int) throws(ServeError) -> JSONValue {
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth) levels") }
        skipWhitespace()
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(ServeError) {
        let n = literal.utf8CodeUnitCount
        guard index + n <= bytes.count else { throw error("unexpected end of input") }
        for i in 0..<n where bytes[index + i] != literal.utf8Start[i] { throw error("invalid literal") }
        index += n
    }

    mutating func parseObject(depth: Int) throws(ServeError) -> JSONValue {
        index += 1  // {
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a member name") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            members.append((key, try parseValue(depth: depth + 1)))
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in an object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw error("expected ',' or '}'")
        }
    }

    mutating func parseArray(depth: Int) throws(ServeError) -> JSONValue {
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array([]) }
        while true {
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in an array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; break }
            throw error("expected ',' or ']'")
        }
        return JSONParser.packed(elements)
    }

    /// Rectangular numeric arrays become one `.tensor`; anything else stays an `.array`.
    static func packed(_ elements: [JSONValue]) -> JSONValue {
        switch elements[0] {
        case .number:
            var values: [Double] = []
            values.reserveCapacity(elements.count)
            for e in elements {
                guard case .number(let x) = e else { return .array(elements) }
                values.append(x)
            }
            return .tensor(shape: [elements.count], values: values)
        case .tensor(let inner, let first):
            var values: [Double] = []
            values.reserveCapacity(first.count * elements.count)
            for e in elements {
                guard case .tensor(let s, let v) = e, s == inner else { return .array(elements) }
                values.append(contentsOf: v)
            }
            return .tensor(shape: [elements.count] + inner, values: values)
        default:
            return .array(elements)
        }
    }

    mutating func parseString() throws(ServeError) -> String {
        index += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw error("unterminated string") }
            let c = bytes[index]
            index += 1
            switch c {
            case UInt8(ascii: "\""):
                // Validates UTF-8: malformed sequences are refused, not repaired.
                guard let s = String(validating: out, as: UTF8.self) else { throw error("string is not valid UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw error("unterminated escape") }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate in \\u escape")
                        }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default:
                    throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
                }
            case 0..<0x20:
                throw error("control character in a string")
            default:
                out.append(c)
            }
        }
    }

    mutating func parseHex4() throws(ServeError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            index += 1
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
        }
        return v
    }

    /// Checks the RFC 8259 number grammar, then converts the token with strtod.
    mutating func parseNumber() throws(ServeError) -> Double {
        let start = index
        func digit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9") }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard digit(index) else { throw error("invalid number") }
        if bytes[index] == UInt8(ascii: "0") { index += 1 } else { while digit(index) { index += 1 } }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digit(index) else { throw error("invalid number: digits expected after '.'") }
            while digit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digit(index) else { throw error("invalid number: digits expected in the exponent") }
            while digit(index) { index += 1 }
        }
        let length = index - start
        guard length <= 400 else { throw error("number token longer than 400 characters") }
        // strtod needs a NUL-terminated copy; the token is short and lives on the stack.
        let value = withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buf in
            for i in 0..<length { buf[i] = CChar(bitPattern: bytes[start + i]) }
            buf[length] = 0
            return strtod(buf.baseAddress!, nil)
        }
        guard value.isFinite else { throw error("number out of range") }
        return value
    }
}
