import Foundation
import MinnowNumpy
import MinnowRuntime
import XCTest

/// The CLI driven the way a user drives it: convert -> inspect -> run -> parity, and bad input.
final class CLITests: XCTestCase {
    func testConvertRunParityOnEveryFixture() throws {
        let dir = try temporaryDirectory()
        for name in fixtureNames {
            let out = dir.appendingPathComponent("\(name).minnow").path
            let c = try minnow(["convert", fixture(name, "model.onnx"), "-o", out, "--calibration", fixture(name, "calibration.npz")])
            XCTAssertEqual(c.code, 0, c.stderr)
            XCTAssertTrue(c.stdout.contains("mode: auto"), c.stdout)
            XCTAssertTrue(c.stdout.contains("precision per Dense (auto"), c.stdout)
            XCTAssertTrue(c.stdout.contains("float ops"), c.stdout)

            let ran = dir.appendingPathComponent("\(name).out.npz").path
            let r = try minnow(["run", out, "--input", fixture(name, "reference.npz"), "-o", ran])
            XCTAssertEqual(r.code, 0, r.stderr)
            let outputs = try Npz.read(path: ran)
            let reference = try Npz.read(path: fixture(name, "reference.npz"))
            let ours = outputs[0].array, theirs = reference.first { $0.name.hasPrefix("outputs/") }!.array
            XCTAssertEqual(outputs[0].name, reference.first { $0.name.hasPrefix("outputs/") }!.name)
            XCTAssertEqual(ours.shape, theirs.shape)

            let p = try minnow(["parity", out, "--reference", fixture(name, "reference.npz"), "--spec", fixture(name, "parity.json")])
            XCTAssertEqual(p.code, 0, p.stdout + p.stderr)
            XCTAssertTrue(p.stdout.contains("PASS"), p.stdout)
        }
    }

    func testParityFailsWhenAThresholdIsViolated() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("m.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("digits_mlp", "model.onnx"), "-o", out, "--calibration", fixture("digits_mlp", "calibration.npz")]).code, 0)
        let spec = dir.appendingPathComponent("strict.json")
        try Data(#"{"outputs": {"probs": {"max_abs_error": {"max": 1e-9}}}}"#.utf8).write(to: spec)
        let p = try minnow(["parity", out, "--reference", fixture("digits_mlp", "reference.npz"), "--spec", spec.path])
        XCTAssertEqual(p.code, 1, p.stdout + p.stderr)
        XCTAssertTrue(p.stdout.contains("FAIL"), p.stdout)
        // The failing row comes first in the table (after the header lines).
        XCTAssertTrue(p.stdout.split(separator: "\n")[2].contains("max_abs_error"), p.stdout)
        let bad = try minnow(["parity", out, "--reference", "/nonexistent.npz"])
        XCTAssertEqual(bad.code, 2)
    }

    func testInspectShowsTheModel() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("m.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("ctr_mlp", "model.onnx"), "-o", out, "--calibration", fixture("ctr_mlp", "calibration.npz"),
                                   "--mode", "static"]).code, 0)
        let text = try minnow(["inspect", out])
        XCTAssertEqual(text.code, 0)
        for needle in ["inputs:", "x: float32[batch, 30]", "ctr: float32[batch, 1]", "Dense[relu]", "per-channel axis 0", "zstd", "arena:"] {
            XCTAssertTrue(text.stdout.contains(needle), "missing '\(needle)' in\n\(text.stdout)")
        }
        let json = try minnow(["inspect", out, "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((obj["inputs"] as! [[String: Any]])[0]["shape"] as? [Int], [-1, 30])
        XCTAssertEqual((obj["metadata"] as! [String: String])["mode"], "static")
    }

    func testInspectListsTheConvolutionsFusedAtLoad() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("cnn.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("cnn_digits", "model.onnx"), "-o", out, "--calibration", fixture("cnn_digits", "calibration.npz")]).code, 0)
        let text = try minnow(["inspect", out])
        XCTAssertEqual(text.code, 0)
        let line = try XCTUnwrap(text.stdout.split(separator: "\n").first { $0.hasPrefix("kernels: ") }.map(String.init))
        if line == "kernels: reference" { return }  // the reference table runs im2col and Dense apart
        XCTAssertTrue(line.hasSuffix(", operators 1+2, 3+4 run as implicit-GEMM convolutions"), line)
    }

    func testRunAcceptsNpyAndBareNames() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("m.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("regression_mlp", "model.onnx"), "-o", out, "--mode", "float"]).code, 0)
        let x = NpyArray(floats: (0..<20).map { Float($0) / 10 }, shape: [2, 10])
        let npy = dir.appendingPathComponent("x.npy")
        try Data(Npy.serialize(x)).write(to: npy)
        XCTAssertEqual(try minnow(["run", out, "--input", npy.path, "-o", dir.appendingPathComponent("a.npz").path]).code, 0)
        let bare = dir.appendingPathComponent("bare.npz").path
        try Npz.write(path: bare, arrays: [("x", x)])
        XCTAssertEqual(try minnow(["run", out, "--input", bare, "-o", dir.appendingPathComponent("b.npz").path]).code, 0)
        XCTAssertEqual(try Npz.read(path: dir.appendingPathComponent("a.npz").path)[0].array,
                       try Npz.read(path: dir.appendingPathComponent("b.npz").path)[0].array)
    }

    // MARK: bad input: exit 1, one line naming the problem, never a crash

    func assertOneLineError(_ r: CLIResult, contains needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.code, 1, r.stderr, file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains(needle), r.stderr, file: file, line: line)
    }

    func testTruncatedAndBitFlippedModelsAreRefused() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("m.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("digits_mlp", "model.onnx"), "-o", out, "--calibration", fixture("digits_mlp", "calibration.npz")]).code, 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        let truncated = dir.appendingPathComponent("t.minnow")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        assertOneLineError(try minnow(["run", truncated.path, "--input", fixture("digits_mlp", "reference.npz"), "-o", dir.appendingPathComponent("o.npz").path]),
                           contains: "t.minnow")
        var flipped = bytes
        flipped[flipped.count - 100] ^= 0x10  // inside the last weight segment
        let f = dir.appendingPathComponent("f.minnow")
        try flipped.write(to: f)
        assertOneLineError(try minnow(["inspect", f.path]), contains: "checksum mismatch")
        let garbage = dir.appendingPathComponent("g.minnow")
        try Data("definitely not a model".utf8).write(to: garbage)
        assertOneLineError(try minnow(["inspect", garbage.path]), contains: "g.minnow")
    }

    func testMalformedNpzAndWrongShapeAreRefused() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("m.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("digits_mlp", "model.onnx"), "-o", out, "--mode", "float"]).code, 0)
        let bad = dir.appendingPathComponent("bad.npz")
        try Data([0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 7, count: 60)).write(to: bad)
        assertOneLineError(try minnow(["run", out, "--input", bad.path, "-o", dir.appendingPathComponent("o.npz").path]), contains: "bad.npz")
        let wrong = dir.appendingPathComponent("wrong.npz").path
        try Npz.write(path: wrong, arrays: [("inputs/x", NpyArray(floats: [Float](repeating: 0, count: 30), shape: [3, 10]))])
        assertOneLineError(try minnow(["run", out, "--input", wrong, "-o", dir.appendingPathComponent("o.npz").path]),
                           contains: "input 'x': expected shape [N, 64], found [3, 10]")
    }

    func testConverterErrorsNameTheProblem() throws {
        let dir = try temporaryDirectory()
        let o = dir.appendingPathComponent("o.minnow").path
        assertOneLineError(try minnow(["convert", fixture("digits_mlp", "model.onnx"), "-o", o, "--mode", "static"]), contains: "--calibration")
        assertOneLineError(try minnow(["convert", fixture("digits_mlp", "model.onnx"), "-o", o, "--mode", "int4"]), contains: "--mode")
        assertOneLineError(try minnow(["convert", fixture("digits_mlp", "reference.npz"), "-o", o, "--mode", "float"]), contains: "not a readable ONNX model")
        for (file, needle) in [("unsupported_op.onnx", "node 'topk': operator TopK (opset 17) is not supported"),
                               ("opset12.onnx", "opset 12"),
                               ("external_data.onnx", "initializer 'w': external data: cannot open")] {
            assertOneLineError(try minnow(["convert", repoRoot.appendingPathComponent("fixtures/errors/\(file)").path, "-o", o, "--mode", "float"]),
                               contains: needle)
        }
    }
}

/// Help text is part of the interface: a change must be deliberate (update the snapshot files:
/// `for c in "" convert run inspect parity verify bench kernels serve keygen sign; do minnow $c --help > Tests/EndToEndTests/Snapshots/help-${c:-root}.txt; done`).
final class HelpSnapshotTests: XCTestCase {
    func testHelpMatchesSnapshots() throws {
        for command in ["", "convert", "run", "inspect", "parity", "verify", "bench", "kernels", "serve", "keygen", "sign"] {
            let r = try minnow(command.isEmpty ? ["--help"] : [command, "--help"])
            XCTAssertEqual(r.code, 0)
            let snapshot = repoRoot.appendingPathComponent("Tests/EndToEndTests/Snapshots/help-\(command.isEmpty ? "root" : command).txt")
            XCTAssertEqual(r.stdout, try String(contentsOf: snapshot, encoding: .utf8), "minnow \(command) --help changed")
        }
    }

    func testUsageErrorsExitTwo() throws {
        let r = try minnow(["parity", "model.minnow"])
        XCTAssertEqual(r.code, 2)
        XCTAssertTrue(r.stderr.contains("Missing expected argument '--reference <reference>'"), r.stderr)
        XCTAssertEqual(try minnow(["convert", "--max-batch", "many", "m.onnx", "-o", "x"]).code, 2)
    }
}

/// `minnow bench --json`: the keys scripts rely on, and zero allocations per run (no timing asserts).
final class BenchTests: XCTestCase {
    func testBenchJSONContract() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("m.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("ctr_mlp", "model.onnx"), "-o", out, "--calibration", fixture("ctr_mlp", "calibration.npz")]).code, 0)
        for batch in ["1", "64"] {
            let r = try minnow(["bench", out, "--batch", batch, "--seconds", "0.2", "--json"])
            XCTAssertEqual(r.code, 0, r.stderr)
            let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            for key in ["load_ms", "first_run_ms", "latency_ms", "throughput_per_s", "allocations_per_run", "peak_rss_bytes", "batch", "threads",
                        "parallelism"] {
                XCTAssertNotNil(j[key], "missing \(key)")
            }
            let latency = j["latency_ms"] as! [String: Double]
            XCTAssertEqual(Set(latency.keys), ["p50", "p90", "p99"])
            XCTAssertLessThanOrEqual(latency["p50"]!, latency["p99"]!)
            XCTAssertEqual(j["allocations_per_run"] as? Double, 0)
            XCTAssertEqual(j["batch"] as? Int, Int(batch))
            XCTAssertGreaterThan(j["peak_rss_bytes"] as! Int, 0)
            // The session is made for the benchmark's batch, so it divides across the threads.
            let threads = j["threads"] as! Int
            XCTAssertEqual(j["parallelism"] as? String, threads == 1 ? "none" : (batch == "1" ? "operators" : "samples"))
        }
        XCTAssertEqual(try minnow(["bench", out, "--batch", "65", "--seconds", "0.1"]).code, 1)
    }

    /// `minnow bench --profile`: every operator that runs, once, in order, with its kind; shares
    /// add up; a convolution shows as one int8 operator (not as the Im2Col and Dense the file has).
    func testBenchProfileListsEveryOperatorByKind() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("m.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("cnn_digits", "model.onnx"), "-o", out, "--calibration", fixture("cnn_digits", "calibration.npz")]).code, 0)
        let r = try minnow(["bench", out, "--batch", "4", "--threads", "1", "--seconds", "0.1", "--json", "--profile"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(j["allocations_per_run"] as? Double, 0)
        let profile = try XCTUnwrap(j["profile"] as? [String: Any])
        XCTAssertGreaterThanOrEqual(profile["runs"] as! Int, 5)
        let ops = profile["operators"] as! [[String: Any]]
        let indices = ops.map { $0["index"] as! Int }
        XCTAssertEqual(indices, indices.sorted())
        XCTAssertEqual(Set(indices).count, indices.count)
        XCTAssertTrue(ops.contains { $0["opcode"] as? String == "Conv" && $0["kernel"] as? String == "int8 implicit GEMM" }, "\(ops)")
        XCTAssertFalse(ops.contains { $0["opcode"] as? String == "Im2Col" }, "a fused im2col was listed")
        let kinds = profile["by_kind"] as! [[String: Any]]
        XCTAssertEqual(kinds.reduce(0) { $0 + ($1["count"] as! Int) }, ops.count)
        XCTAssertEqual(kinds.reduce(0.0) { $0 + ($1["share"] as! Double) }, 100, accuracy: 0.01)
        let text = try minnow(["bench", out, "--seconds", "0.05", "--profile", "--top", "3"])
        XCTAssertEqual(text.code, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("by kind:") && text.stdout.contains("slowest:"), text.stdout)
        XCTAssertTrue(text.stdout.contains("Conv (int8 implicit GEMM)"), text.stdout)
        XCTAssertEqual(try minnow(["bench", out, "--seconds", "0.05", "--profile", "--top=-1"]).code, 1)
    }

    /// `minnow bench --kernels NAME` runs on that table, zero allocations on each; `minnow kernels`
    /// lists what this CPU runs; an unknown or unavailable table is one error line naming it.
    func testBenchRunsOnEachKernelTableThisCPUSupports() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("m.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("cnn_digits", "model.onnx"), "-o", out, "--calibration", fixture("cnn_digits", "calibration.npz")]).code, 0)
        let listed = try minnow(["kernels", "--supported"])
        XCTAssertEqual(listed.code, 0)
        let supported = listed.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(supported.first, "reference")
        for table in supported {
            let r = try minnow(["bench", out, "--batch", "4", "--seconds", "0.05", "--json", "--kernels", table])
            XCTAssertEqual(r.code, 0, r.stderr)
            let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(j["kernels"] as? String, table)
            XCTAssertEqual(j["allocations_per_run"] as? Double, 0, "\(table)")
        }
        let unknown = try minnow(["bench", out, "--seconds", "0.05", "--kernels", "sse9"])
        XCTAssertEqual(unknown.code, 1)
        XCTAssertTrue(unknown.stderr.contains("kernel table 'sse9' is unknown (this build has reference, avx2, avx512vnni, amx)"), unknown.stderr)
        let all = try minnow(["kernels", "--json"])
        let j = try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as! [String: Any]
        let missing = (j["tables"] as! [[String: Any]]).filter { ($0["supported"] as? Bool) == false }.map { $0["name"] as! String }
        for table in missing {
            let r = try minnow(["bench", out, "--seconds", "0.05", "--kernels", table])
            XCTAssertEqual(r.code, 1)
            XCTAssertTrue(r.stderr.contains("kernel table '\(table)' is not available on this host"), r.stderr)
        }
    }

    /// `minnow bench --attention bf16` loads the model with the opt-in bf16 attention products where
    /// this CPU runs them (the JSON and the profile say which precision ran), allocation-free;
    /// MINNOW_ATTENTION asks the same; an unknown precision is one error line naming it.
    func testBenchAttentionPrecisionOption() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("bst.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("bst_seqrec", "model.onnx"), "-o", out, "--calibration", fixture("bst_seqrec", "calibration.npz")]).code, 0)
        let expected = try Model(path: out, attention: .bf16).attentionPrecision.rawValue
        for (args, env, want) in [(["--attention", "bf16"], [String: String](), expected), ([], ["MINNOW_ATTENTION": "bf16"], expected),
                                  (["--attention", "f32"], ["MINNOW_ATTENTION": "bf16"], "f32"), ([], [:], "f32")] {
            let r = try minnow(["bench", out, "--batch", "4", "--threads", "1", "--seconds", "0.05", "--json", "--profile"] + args, environment: env)
            XCTAssertEqual(r.code, 0, r.stderr)
            let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(j["attention"] as? String, want, "\(args) \(env)")
            XCTAssertEqual(j["allocations_per_run"] as? Double, 0, "\(args) \(env)")
            let profile = try XCTUnwrap(j["profile"] as? [String: Any])
            XCTAssertTrue("\(profile)".contains(want == "bf16" ? "bf16 products" : "f32, QK^T"), "\(args) \(env): \(profile)")
        }
        // `minnow kernels` says where the opt-in runs.
        let kernels = try JSONSerialization.jsonObject(with: Data(try minnow(["kernels", "--json"]).stdout.utf8)) as! [String: Any]
        let chosen = (kernels["tables"] as! [[String: Any]]).first { $0["name"] as? String == kernels["default"] as? String }
        XCTAssertEqual(chosen?["bf16_attention"] as? Bool, expected == "bf16")
        XCTAssertTrue(try minnow(["kernels"]).stdout.contains("bf16 attention products (opt-in: MINNOW_ATTENTION=bf16): "))
        let bad = try minnow(["bench", out, "--seconds", "0.05", "--attention", "fp16"])
        XCTAssertEqual(bad.code, 1)
        XCTAssertTrue(bad.stderr.contains("--attention must be one of f32, bf16 (found 'fp16')"), bad.stderr)
        let badEnv = try minnow(["bench", out, "--seconds", "0.05"], environment: ["MINNOW_ATTENTION": "fp16"])
        XCTAssertEqual(badEnv.code, 1)
        XCTAssertTrue(badEnv.stderr.contains("MINNOW_ATTENTION='fp16': expected one of f32, bf16"), badEnv.stderr)
    }

    /// `amx` is the default wherever this CPU runs it, and `MINNOW_AMX=0` turns it off: then it is
    /// listed as unavailable with the way back, and the default is the table below it.
    func testAMXIsTheDefaultWhereSupportedAndMINNOW_AMX0TurnsItOff() throws {
        func tables(_ env: [String: String]) throws -> (String, [String: Bool]) {
            let r = try minnow(["kernels", "--json"], environment: env)
            XCTAssertEqual(r.code, 0, r.stderr)
            let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            let supported = Dictionary(uniqueKeysWithValues: (j["tables"] as! [[String: Any]]).map { ($0["name"] as! String, $0["supported"] as! Bool) })
            return (j["default"] as! String, supported)
        }
        let (chosen, supported) = try tables([:])
        if supported["amx"] == true { XCTAssertEqual(chosen, "amx") }
        let (offDefault, offSupported) = try tables(["MINNOW_AMX": "0"])
        XCTAssertEqual(offSupported["amx"], false)
        XCTAssertNotEqual(offDefault, "amx")
        if supported["avx512vnni"] == true { XCTAssertEqual(offDefault, "avx512vnni") }
        let text = try minnow(["kernels"], environment: ["MINNOW_AMX": "0"]).stdout
        XCTAssertTrue(text.contains("amx (not available here: needs AMX-INT8 and Linux's tile-data permission; MINNOW_AMX=0 turns it off)"), text)
    }

    /// A model with embedding ids: real inputs from a reference file (the first --batch samples),
    /// and synthetic ones that stay inside every table.
    func testBenchTakesInputsAndValidIds() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("m.minnow").path
        XCTAssertEqual(try minnow(["convert", fixture("bilstm_nextitem", "model.onnx"), "-o", out,
                                   "--calibration", fixture("bilstm_nextitem", "calibration.npz")]).code, 0)
        for extra in [["--input", fixture("bilstm_nextitem", "reference.npz")], []] {
            let r = try minnow(["bench", out, "--batch", "3", "--seconds", "0.1", "--json"] + extra)
            XCTAssertEqual(r.code, 0, r.stderr)
            let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(j["allocations_per_run"] as? Double, 0)
        }
        let bad = try minnow(["bench", out, "--input", fixture("ctr_mlp", "reference.npz"), "--seconds", "0.1"])
        XCTAssertEqual(bad.code, 1)
        XCTAssertTrue(bad.stderr.contains("no array for input 'history'"), bad.stderr)
    }
}
