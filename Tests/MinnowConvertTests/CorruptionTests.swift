import Foundation
import MinnowConvert
import MinnowFormat
import MinnowRuntime
import XCTest

// Random corruptions of every fixture's .minnow file (issue 7): each must be refused with a typed
// error or load, make a session, run and self-test; never crash or hang. Deterministic: the seed
// and count come from MINNOW_CORRUPTION_SEED / MINNOW_CORRUPTIONS (defaults 1 and 10,000 per
// fixture), and a failure names the fixture, iteration and mutation to replay it.

/// SplitMix64: small, fast, and the same sequence on every platform.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Mutation: String, CaseIterable {
    case bitFlips, headerBitFlips, truncate, splice, inflateLength, overwrite, extend, duplicateChunk

    /// `headerEnd` is where the FlatBuffer ends (segment_base): the region whose corruptions
    /// reach the parser rather than a checksum.
    func apply(_ a: [UInt8], partner b: [UInt8], headerEnd: Int, _ rng: inout SplitMix64) -> [UInt8] {
        var out = a
        switch self {
        case .bitFlips, .headerBitFlips:
            let limit = self == .bitFlips ? out.count : headerEnd
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                out[Int.random(in: 0..<limit, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            }
        case .truncate:
            out.removeLast(Int.random(in: 1...out.count, using: &rng))
        case .splice:
            out = Array(a.prefix(Int.random(in: 0...a.count, using: &rng))) + b.suffix(Int.random(in: 0...b.count, using: &rng))
        case .inflateLength:
            // Lengths, offsets and sizes are 4- or 8-byte little-endian scalars in the FlatBuffer.
            let wide = Bool.random(using: &rng)
            let width = wide ? 8 : 4
            let at = Int.random(in: 0..<(headerEnd / width), using: &rng) * width
            let current = out[at..<(at + width)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let candidates: [UInt64] = [current &+ 1, current &+ 64, current &* 2 &+ 1, UInt64(a.count), UInt64(a.count) &+ 8,
                                        0x7FFF_FFFF, 0xFFFF_FFFF, 0x8000_0000, wide ? UInt64.max : 0xFFFF_FFF0, wide ? 1 << 62 : 0x1000_0000]
            var v = candidates[Int.random(in: 0..<candidates.count, using: &rng)]
            for i in 0..<width { out[at + i] = UInt8(truncatingIfNeeded: v); v >>= 8 }
        case .overwrite:
            let n = Int.random(in: 1...64, using: &rng)
            let at = Int.random(in: 0..<out.count, using: &rng)
            for i in at..<min(out.count, at + n) { out[i] = UInt8.random(in: 0...255, using: &rng) }
        case .extend:
            out += (0..<Int.random(in: 1...256, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case .duplicateChunk:
            let n = Int.random(in: 1...256, using: &rng)
            let from = Int.random(in: 0..<out.count, using: &rng), to = Int.random(in: 0..<out.count, using: &rng)
            let chunk = Array(a[from..<min(a.count, from + n)])
            for (i, v) in chunk.enumerated() where to + i < out.count { out[to + i] = v }
        }
        return out
    }
}

/// Progress of the campaign, read by the watchdog thread.
final class CampaignProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var step = 0
    private var label = ""
    private var done = false
    func advance(_ l: String) { lock.lock(); step += 1; label = l; lock.unlock() }
    /// The campaign is over: the watchdog stops watching (other tests may take their time).
    func finish() { lock.lock(); done = true; lock.unlock() }
    var snapshot: (Int, String, Bool) { lock.lock(); defer { lock.unlock() }; return (step, label, done) }
}

final class CorruptionTests: XCTestCase {
    static let fixtures = ["digits_mlp", "ctr_mlp", "regression_mlp", "outlier_mlp", "bst_seqrec"]

    /// The files attacked: each fixture's default (static int8) conversion gets the full count;
    /// its dynamic and float conversions (other kernels, other quantization metadata) a tenth.
    func campaign(count: Int) throws -> [(label: String, bytes: [UInt8], count: Int)] {
        try Self.fixtures.flatMap { name in
            try QuantizationMode.allCases.map { mode in
                var o = ConvertOptions()
                o.mode = mode
                o.calibrationPath = fixture(name, "calibration.npz")
                o.maxBatch = 16
                let bytes = try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: o).bytes
                // The transformer takes ~2 ms a load: a tenth of the count keeps the sanitizer runs short.
                let n = name == "bst_seqrec" ? count / 10 : count
                return mode == .static ? (name, bytes, n) : ("\(name) (\(mode))", bytes, n / 10)
            }
        }
    }

    /// Loads, makes a session, runs once and reruns golden samples if any. The outcome's name: the
    /// error's case, or "loaded and ran".
    func attempt(_ bytes: [UInt8]) -> String {
        do {
            let model = try Model(bytes: AlignedBytes(bytes))
            let session = try Session(model: model, maxBatch: min(2, model.maxBatch))
            try session.run(batch: session.maxBatch)
            _ = try model.selfTest()
            return "loaded and ran"
        } catch let e as ModelError {
            if case let .format(f) = e { return "FormatError." + (f == .verifierRejected ? "verifierRejected" : caseName(f)) }
            return "ModelError." + caseName(e)
        } catch {
            return "\(type(of: error)).\(caseName(error))"
        }
    }

    private func caseName(_ e: Any) -> String { Mirror(reflecting: e).children.first?.label ?? "\(e)" }

    func testRandomCorruptionsAreRefusedOrRun() throws {
        let env = ProcessInfo.processInfo.environment
        let count = Int(env["MINNOW_CORRUPTIONS"] ?? "") ?? 10_000
        let seed = UInt64(env["MINNOW_CORRUPTION_SEED"] ?? "") ?? 1
        let files = try campaign(count: count)

        // A hang is a failure too: no progress for 60 s stops the process with its location.
        let progress = CampaignProgress()
        let watchdog = Thread {
            var last = -1
            while true {
                Thread.sleep(forTimeInterval: 60)
                let (step, label, done) = progress.snapshot
                if done { return }
                if step == last { fatalError("corruption campaign hung at \(label)") }
                last = step
            }
        }
        watchdog.start()
        defer { progress.finish() }

        for (k, file) in files.enumerated() {
            let (name, base) = (file.label, file.bytes)
            let partner = files[(k + 1) % files.count].bytes
            let headerEnd = Int(try ModelFile(bytes: AlignedBytes(base)).description.segmentBase)
            XCTAssertEqual(attempt(base), "loaded and ran", name)
            var rng = SplitMix64(state: seed &+ UInt64(k) &* 0x1_0000)
            var outcomes: [String: Int] = [:]
            for i in 0..<file.count {
                let m = Mutation.allCases[Int.random(in: 0..<Mutation.allCases.count, using: &rng)]
                progress.advance("\(name) #\(i) \(m) seed \(seed)")
                outcomes[attempt(m.apply(base, partner: partner, headerEnd: headerEnd, &rng)), default: 0] += 1
            }
            XCTAssertEqual(outcomes.values.reduce(0, +), file.count)
            let table = outcomes.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            print("corruptions of \(name) (\(base.count) bytes, seed \(seed)): \(table)")
        }
    }
}
