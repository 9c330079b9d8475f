import ArgumentParser
import CAllocCounter
import Foundation
import MinnowNumpy
import MinnowRuntime

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure load time, first-inference time, latency percentiles, throughput, allocations per run and peak RSS.",
        discussion: "Numbers from one machine are only comparable side by side: see tools/compare for peers in the same run.")

    @Argument(help: "A .minnow file.") var file: String
    @Option(help: "Refuse the file unless it carries a valid signature by this public key.") var requireSignature: String?
    @Option(help: "Samples per run.") var batch: Int = 1
    @Option(help: "Kernel table to run on instead of this CPU's best (`minnow kernels` lists them).") var kernels: String?
    @Option(help: "Attention products' precision: f32 (the unfused operators' bytes) or bf16 (opt-in: Q, K, probabilities and V rounded to bfloat16; about twice the products' speed where the CPU has AVX512-BF16, f32 elsewhere). Default: MINNOW_ATTENTION, else f32.")
    var attention: String?
    @Option(help: "Threads per run (default: the physical cores; 1: no pool; more: each thread runs its share of the samples where the batch divides evenly, else large operators are split).") var threads: Int?
    @Option(help: "Seconds of timed runs after warm-up.") var seconds: Double = 3
    @Option(help: "Inputs (.npz, as for `minnow run`): the first --batch samples are used, repeated if fewer. Default: synthetic floats in [-1, 1), ids 0 and 1 for integer inputs.")
    var input: String?
    @Option(help: "Sequence length of the synthetic inputs, for a model converted with --max-seq (default: the longest).") var seqLen: Int?
    @Flag(help: "Print JSON (keys: load_ms, first_run_ms, latency_ms{p50,p90,p99}, throughput_per_s, allocations_per_run, peak_rss_bytes, batch, threads, parallelism, kernels, attention; with --profile, profile).")
    var json = false
    @Flag(help: "After the timed runs, time every operator (medians over as many runs again) and print the time by operator kind and the slowest operators.")
    var profile = false
    @Option(help: "Slowest operators listed by --profile.") var top: Int = 15

    func run() {
        reportingErrors {
            guard batch >= 1 else { throw CLIFailure("--batch must be at least 1") }
            if let threads { guard threads >= 1, threads <= 256 else { throw CLIFailure("--threads must be in 1...256") } }
            guard seconds > 0, seconds <= 3600 else { throw CLIFailure("--seconds must be in (0, 3600]") }
            guard top >= 0 else { throw CLIFailure("--top must be at least 0") }
            let t0 = DispatchTime.now().uptimeNanoseconds
            let model: Model
            var precision: AttentionPrecision?
            if let attention {
                guard let p = AttentionPrecision(rawValue: attention) else {
                    throw CLIFailure("--attention must be one of \(AttentionPrecision.allCases.map(\.rawValue).joined(separator: ", ")) (found '\(attention)')")
                }
                precision = p
            }
            model = try loadModel(file, requireSignature: requireSignature, kernels: kernels, attention: precision)
            let loadMs = ms(DispatchTime.now().uptimeNanoseconds - t0)
            guard batch <= model.maxBatch else { throw CLIFailure("--batch \(batch) exceeds the model's max batch \(model.maxBatch)") }

            let t1 = DispatchTime.now().uptimeNanoseconds
            let session = try Session(model: model, maxBatch: batch, threads: threads)
            if let input {
                let arrays: [(name: String, array: NpyArray)]
                do { arrays = try Npz.readAny(path: input) } catch { throw CLIFailure("\(input): \(error)") }
                if let length = try RunCommand.sequenceLength(model, arrays, file: input) { try session.setSequenceLength(length) }
                let data = try RunCommand.matchInputs(session.inputs, arrays, file: input)
                for (i, spec) in session.inputs.enumerated() {
                    let per = spec.elementsPerSample
                    try session.setInput(i, floats: (0..<batch).flatMap { data.values[i][(($0 % data.count) * per)..<(($0 % data.count + 1) * per)] })
                }
            } else {
                if let seqLen { try session.setSequenceLength(seqLen) }
                // Deterministic inputs (a fixed LCG): every run sees the same data.
                var state: UInt64 = 0x9E37_79B9_7F4A_7C15
                for (i, spec) in session.inputs.enumerated() {
                    let values = (0..<(batch * spec.elementsPerSample)).map { _ -> Float in
                        state = state &* 6364136223846793005 &+ 1442695040888963407
                        let u = Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
                        return spec.dtype == .float32 ? u : (u < 0 ? 0 : 1)  // ids and masks: 0 and 1
                    }
                    try session.setInput(i, floats: values)
                }
            }
            try session.run(batch: batch)
            let firstMs = ms(DispatchTime.now().uptimeNanoseconds - t1)

            // Warm-up, then count allocations over a fixed number of runs (fewer for a model whose
            // run takes over 10 ms, so a BERT at batch 64 does not spend 30 s before timing).
            let heavy = firstMs > 10
            for _ in 0..<(heavy ? 3 : 20) { try session.run(batch: batch) }
            let counted = heavy ? 10 : 100
            minnow_alloc_reset()
            for _ in 0..<counted { try session.run(batch: batch) }
            let allocs = Double(minnow_alloc_count()) / Double(counted)

            var latencies: [UInt64] = []
            latencies.reserveCapacity(1 << 20)
            let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
            let start = DispatchTime.now().uptimeNanoseconds
            var now = start
            while now < deadline && latencies.count < (1 << 20) {
                try session.run(batch: batch)
                let t = DispatchTime.now().uptimeNanoseconds
                latencies.append(t - now)
                now = t
            }
            let elapsed = Double(now - start) / 1e9
            latencies.sort()
            func pct(_ p: Double) -> Double { ms(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) }
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let rss = Int(usage.ru_maxrss) * 1024
            let throughput = Double(latencies.count * batch) / elapsed
            // Profiled runs come after the timed ones, so the latency figures have no clock reads in them.
            let report = try profile ? OperatorReport(session.profile(batch: batch, runs: max(latencies.count, 5))) : nil
            if json {
                var object: [String: Any] = [
                    "load_ms": loadMs, "first_run_ms": firstMs,
                    "latency_ms": ["p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)],
                    "throughput_per_s": throughput, "allocations_per_run": allocs, "peak_rss_bytes": rss,
                    "batch": batch, "threads": session.threads, "kernels": model.kernelName, "runs": latencies.count,
                    "attention": model.attentionPrecision.rawValue,
                    "parallelism": session.parallelism(batch: batch),
                ]
                if let report { object["profile"] = report.json }
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                let split = session.threads > 1 ? " (split by \(session.parallelism(batch: batch)))" : ""
                print("\(file): batch \(batch), threads \(session.threads)\(split), kernels \(model.kernelName), attention \(model.attentionPrecision.rawValue), \(latencies.count) runs in \(String(format: "%.1f", elapsed)) s")
                print(String(format: "  load %.3f ms, first inference %.3f ms", loadMs, firstMs))
                print(String(format: "  latency p50 %.4f ms, p90 %.4f ms, p99 %.4f ms", pct(0.5), pct(0.9), pct(0.99)))
                print(String(format: "  throughput %.0f samples/s", throughput))
                print("  allocations per run: \(allocs)")
                print("  peak RSS: \(rss / 1024) KiB")
                if let report { print(report.text(top: top), terminator: "") }
            }
        }
    }

    private func ms(_ ns: UInt64) -> Double { Double(ns) / 1e6 }
}
