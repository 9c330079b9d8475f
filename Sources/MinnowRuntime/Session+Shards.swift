import MinnowFormat
import MinnowKernels

// Sample-split runs. A session with a pool splits large operators by rows; recommendation models
// at batch 64 are many small operators (DLRM: 26 gathers and GEMMs of a few thousand
// multiply-adds each), below any size that pays for waking a worker per operator. So when a
// run's batch divides well across the threads, each thread runs the *whole plan* on its own
// samples, with one wake-up per run instead of one per operator (what a server gets from one
// session per core, inside one session).
//
// Shards cannot share the session's arena: its memory plan reuses a slot once the tensor in it
// is dead, which holds when every sample passes each operator together, not when one thread is
// ten operators ahead of the other. So each shard gets an arena of its own for its share of the
// samples, planned as the session's (slot offset × samples per shard), and reads the graph's
// inputs from its own samples of the session's input slots (nothing writes the session's arena
// while the shards run). Outputs are copied into the session's slots once every shard is done:
// the plan may put an output where an input was, and one shard must not write there while
// another still reads its input. Shard t's plan is
// resolved once, when the session is made; constants stay shared. A sample's bytes do not depend
// on which rows run beside it (the property that makes operator splits bit-identical), so results
// are the same bytes for any split. The shard arenas cost as much memory again as the session's
// arena; sessions above 1 GiB of it, models with recurrent ops (their scratch is laid out per
// run) and models with an activation without a batch axis are split by operators only.

/// Where an operator's kernels get their pool and scratch.
struct ExecContext {
    var pool: OpaquePointer?
    /// K bytes for one thread's dynamic quantization of a row chunk.
    var dynScratch: UnsafeMutablePointer<Int8>
    /// One thread's convolution scratch (mn_conv_s8_scratch bytes).
    var convScratch: UnsafeMutableRawPointer
}

/// One graph output of a shard-split run: where it is in the session's arena (sample 0), where in
/// a shard's arena, and its bytes per sample.
struct ShardOutput {
    var session: UnsafeMutableRawPointer
    var shardOffset: Int
    var bytesPerSample: Int
}

/// What the pool's tasks read: the session (not retained: `run` holds it) and the run's batch.
private struct ShardJob {
    let session: Unmanaged<Session>
    let batch: Int
}

private let shardTask: @convention(c) (UnsafeMutableRawPointer?, Int32) -> Void = { context, task in
    let job = context!.assumingMemoryBound(to: ShardJob.self).pointee
    job.session.takeUnretainedValue().runShard(Int(task), batch: job.batch)
}

extension Session {
    /// Every graph resolved once per shard, and the shards' arenas; nil when the model is not
    /// split by samples (one thread, a max batch of 1, or the reasons above).
    static func resolveShards(_ model: Model, arenaBase: UnsafeMutableRawPointer, batch: Int, threads: Int,
                              _ tables: inout ArgTables)
        -> (plans: [[[ExecOp]]], outputs: [[ShardOutput]], chunk: Int, arena: AlignedBytes)? {
        let chunk = (batch + threads - 1) / threads
        let shards = (batch + chunk - 1) / chunk
        let bytesPerShard = Int(model.description.memoryPlan.arenaBytesPerSample) * chunk
        guard threads > 1, shards > 1, bytesPerShard * shards <= 1 << 30 else { return nil }
        for g in model.graphs {
            for op in g.prepared { if case .recurrent = op { return nil } }
            for (i, t) in g.description.tensors.enumerated() where g.constants[i] == nil && !t.isBatched { return nil }
        }
        guard let arena = AlignedBytes(zeroedCount: bytesPerShard * shards) else { return nil }
        var all: [[[ExecOp]]] = []
        var outputs: [[ShardOutput]] = []
        for g in model.graphs {
            func bytesPerSample(_ t: TensorInfo) -> Int { (Model.elementCount(t.shape, batch: 1) ?? 0) * t.dtype.byteSize }
            let inputs = Set(g.description.inputs.map(Int.init))
            // Outputs the shards compute (a graph input or a constant given as an output is read in place).
            outputs.append(g.description.outputs.map(Int.init).filter { !inputs.contains($0) && g.constants[$0] == nil }.map { i in
                let t = g.description.tensors[i]
                return ShardOutput(session: arenaBase + Int(t.arenaOffsetPerSample) * batch, shardOffset: Int(t.arenaOffsetPerSample) * chunk,
                                   bytesPerSample: bytesPerSample(t))
            })
            var perShard: [[ExecOp]] = []
            for shard in 0..<shards {
                let first = shard * chunk, own = arena.pointer + shard * bytesPerShard
                let addresses: [UnsafeMutableRawPointer] = g.description.tensors.enumerated().map { i, t in
                    if let c = g.constants[i] { return c.pointer }
                    // Inputs: this shard's samples of the session's slots.
                    if inputs.contains(i) { return arenaBase + Int(t.arenaOffsetPerSample) * batch + first * bytesPerSample(t) }
                    return own + Int(t.arenaOffsetPerSample) * chunk
                }
                perShard.append(resolvePlan(g, addresses, &tables).plan)
            }
            all.append(perShard)
        }
        return (all, outputs, chunk, arena)
    }

    /// The shards a run of `batch` samples is split into, or 1 when it runs operator by operator:
    /// only when every thread gets a shard and the last holds at least half a shard's samples
    /// (a batch below the session's max leaves the later shards short or empty).
    func sampleShards(batch: Int) -> Int {
        guard shardPlans != nil else { return 1 }
        let shards = (batch + shardChunk - 1) / shardChunk
        guard shards == threads, batch - (shards - 1) * shardChunk >= (shardChunk + 1) / 2 else { return 1 }
        return shards
    }

    /// How a run of `batch` samples uses the session's threads: "samples" (each thread runs the
    /// whole plan on its share), "operators" (large operators split across the pool) or "none".
    public func parallelism(batch: Int) -> String {
        threads == 1 ? "none" : (sampleShards(batch: batch) > 1 ? "samples" : "operators")
    }

    /// Runs each shard's plan on its samples across the pool. False when a shard failed (an id
    /// out of range): the caller reruns operator by operator, which reports the exact position.
    func runSplittingSamples(batch: Int, shards: Int) -> Bool {
        for t in 0..<shards { shardFailed[t] = false }
        var job = ShardJob(session: Unmanaged.passUnretained(self), batch: batch)
        withUnsafeMutablePointer(to: &job) { mn_pool_run(pool, shardTask, $0, Int32(shards)) }
        for t in 0..<shards where shardFailed[t] { return false }
        let bytesPerShard = Int(model.description.memoryPlan.arenaBytesPerSample) * shardChunk
        shardOutputs[graphIndex].withUnsafeBufferPointer { outputs in
            for o in outputs {
                for t in 0..<shards {
                    let count = min(shardChunk, batch - t * shardChunk)
                    (o.session + t * shardChunk * o.bytesPerSample).copyMemory(
                        from: shardArena!.pointer + t * bytesPerShard + o.shardOffset, byteCount: count * o.bytesPerSample)
                }
            }
        }
        return true
    }

    /// Shard `t`'s samples through its plan, on whichever pool thread took the task; with no pool
    /// of its own, and the t-th slice of the session's scratch.
    func runShard(_ t: Int, batch: Int) {
        let count = min(shardChunk, batch - t * shardChunk)
        guard count > 0, let shardPlans else { return }
        let context = ExecContext(pool: nil, dynScratch: mainContext.dynScratch + t * dynScratchBytes,
                                  convScratch: mainContext.convScratch + t * convScratchBytes)
        shardPlans[graphIndex][t].withUnsafeBufferPointer { ops in
            for i in 0..<ops.count {
                if execute(ops[i], batch: count, context) != nil {
                    shardFailed[t] = true
                    return
                }
            }
        }
    }
}
