import Foundation
import MinnowFormat
import MinnowSigning
import XCTest

final class SigningTests: XCTestCase {
    /// Any bytes will do for the signature itself; the model loader is tested with a real file in
    /// tools/tests/test_serve.py (signed files load and serve).
    let content: [UInt8] = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    func sign(_ bytes: [UInt8], _ key: String) throws -> [UInt8] {
        let result: Result<[UInt8], SignatureError> = bytes.withUnsafeBytes { b in
            do throws(SignatureError) { return .success(try ModelSigning.sign(b, privateKeyText: key)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    func verify(_ bytes: [UInt8], _ pub: String) throws {
        let key = try ModelSigning.publicKey(text: pub)
        let failure: SignatureError? = bytes.withUnsafeBytes { (b) -> SignatureError? in
            do throws(SignatureError) { try ModelSigning.verify(b, publicKey: key); return nil } catch { return error }
        }
        if let failure { throw failure }
    }

    func testSignedFilesVerifyAndResigningReplacesTheTrailer() throws {
        let (priv, pub) = ModelSigning.generateKeys()
        let signed = try sign(content, priv)
        XCTAssertEqual(signed.count, content.count + ModelSigning.trailerSize)
        XCTAssertEqual(Array(signed.prefix(content.count)), content, "the content is unchanged; the signature follows it")
        XCTAssertNoThrow(try verify(signed, pub))
        let again = try sign(signed, priv)
        XCTAssertEqual(again.count, signed.count)
        XCTAssertNoThrow(try verify(again, pub))
        let (priv2, pub2) = ModelSigning.generateKeys()
        let other = try sign(signed, priv2)
        XCTAssertNoThrow(try verify(other, pub2))
        XCTAssertThrowsError(try verify(other, pub)) { e in
            guard case .wrongKey = e as! SignatureError else { return XCTFail("\(e)") }
        }
    }

    func testEveryTamperedByteIsCaught() throws {
        let (priv, pub) = ModelSigning.generateKeys()
        let signed = try sign(content, priv)
        // Every byte of the content and of the trailer (magic, length, key, signature).
        for i in stride(from: 0, to: signed.count - 16, by: 7) {
            var t = signed
            t[i] ^= 0x01
            XCTAssertThrowsError(try verify(t, pub), "byte \(i)")
        }
        XCTAssertThrowsError(try verify(Array(signed.dropLast()), pub)) { e in XCTAssertEqual(e as? SignatureError, .unsigned) }
        XCTAssertThrowsError(try verify(signed + [0], pub)) { e in XCTAssertEqual(e as? SignatureError, .unsigned) }
        XCTAssertThrowsError(try verify(content, pub)) { e in XCTAssertEqual(e as? SignatureError, .unsigned) }
    }

    func testKeyFilesAreChecked() {
        let (priv, pub) = ModelSigning.generateKeys()
        XCTAssertThrowsError(try ModelSigning.publicKey(text: priv, path: "k")) { e in
            XCTAssertTrue("\(e)".contains("not a minnow-ed25519-public-key file"), "\(e)")
        }
        XCTAssertThrowsError(try sign(content, pub))
        XCTAssertThrowsError(try ModelSigning.publicKey(text: "minnow-ed25519-public-key AAAA"))
        XCTAssertNoThrow(try ModelSigning.publicKey(text: pub))
    }
}
