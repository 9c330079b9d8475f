import DequeModule
import Foundation
import MinnowRuntime

/// How a version executes requests: worker threads (one session each), the queue bound, and
/// dynamic batching.
public struct ExecutionOptions: Sendable {
    /// Worker threads per loaded version, each with its own session.
    public var workers: Int
    /// Threads inside one session's run (1: no intra-op pool).
    public var intraOpThreads: Int
    /// Requests waiting per version before new ones are refused as overloaded.
    public var queueCapacity: Int
    /// Dynamic batching: merge queued requests into one run of up to this many rows
    /// (capped by the model's max batch). 1 turns batching off.
    public var maxBatchRows: Int
    /// How long a worker holding a partial batch waits for more requests (0: take only what
    /// is already queued).
    public var batchTimeoutMicroseconds: Int

    public init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, intraOpThreads: Int = 1,
                queueCapacity: Int = 1024, maxBatchRows: Int = 1, batchTimeoutMicroseconds: Int = 0) {
        self.workers = workers
        self.intraOpThreads = intraOpThreads
        self.queueCapacity = queueCapacity
        self.maxBatchRows = maxBatchRows
        self.batchTimeoutMicroseconds = batchTimeoutMicroseconds
    }
}

/// Observes a queue for metrics (called outside the queue's lock).
public struct QueueObserver: Sendable {
    public var depthChanged: @Sendable (Int) -> Void = { _ in }
    public var batchRan: @Sendable (_ rows: Int, _ requests: Int) -> Void = { _, _ in }
    public init() {}
}

/// A bounded queue of requests for one model version, served by worker threads that each own a
/// session. Idle workers sleep on a condition variable (no spinning). `close()` stops taking
/// requests; workers finish everything already queued, then exit and release their sessions.
final class InferenceQueue: @unchecked Sendable {
    typealias Completion = @Sendable (Result<InferenceResult, ServeError>) -> Void

    struct Job {
        let request: InferenceRequest
        let completion: Completion
    }

    enum SubmitOutcome { case accepted, full, closed }

    let model: Model
    let options: ExecutionOptions
    let observer: QueueObserver
    /// Rows one run may take: dynamic batching's limit, within every session's max batch.
    let mergeRows: Int
    let sessionRows: Int

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var pending = Deque<Job>()
    private var closed = false
    private var running = 0
    private let finished = DispatchGroup()

    /// Makes one session per worker and warms each with a run on zeros, so that a version is
    /// fully allocated and touched before it takes traffic. Errors surface here, not per request.
    init(model: Model, options: ExecutionOptions, observer: QueueObserver) throws(ServeError) {
        self.model = model
        self.options = options
        self.observer = observer
        var sessions: [Session] = []
        for _ in 0..<max(1, options.workers) {
            let session: Session
            do { session = try Session(model: model, threads: options.intraOpThreads) } catch {
                throw ServeError(.unavailable, "cannot make a session: \(error)")
            }
            for i in model.inputs.indices { session.inputBuffer(i).initializeMemory(as: UInt8.self, repeating: 0) }
            do { try session.run(batch: 1) } catch { throw ServeError(.unavailable, "warm-up run failed: \(error)") }
            sessions.append(session)
        }
        sessionRows = sessions[0].maxBatch
        mergeRows = max(1, min(options.maxBatchRows, sessionRows))
        for (i, session) in sessions.enumerated() {
            finished.enter()
            let box = SessionBox(session)
            let thread = Thread { [self] in
                workerLoop(box.session)
                finished.leave()
            }
            thread.name = "minnow-worker-\(i)"
            thread.start()
        }
    }

    /// Queues a request; `completion` runs on a worker thread when it is done.
    func submit(_ request: InferenceRequest, completion: @escaping Completion) -> SubmitOutcome {
        condition.lock()
        if closed { condition.unlock(); return .closed }
        if pending.count >= options.queueCapacity { condition.unlock(); return .full }
        pending.append(Job(request: request, completion: completion))
        let depth = pending.count
        condition.signal()
        condition.unlock()
        observer.depthChanged(depth)
        return .accepted
    }

    var depth: Int {
        condition.lock(); defer { condition.unlock() }
        return pending.count
    }

    /// Stops taking requests; queued ones still run. Returns at once.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Blocks until every worker has finished the queue and exited (after `close()`).
    func waitUntilDrained() { finished.wait() }

    // MARK: Workers

    private func workerLoop(_ session: Session) {
        var batch: [Job] = []
        while let rows = nextBatch(into: &batch) {
            observer.depthChanged(depth)
            execute(batch, rows: rows, session: session)
            observer.batchRan(rows, batch.count)
            batch.removeAll(keepingCapacity: true)
        }
    }

    /// Takes the next job and, with batching on, more queued jobs up to `mergeRows` rows,
    /// waiting up to the batch timeout for them. Nil when closed and drained.
    private func nextBatch(into batch: inout [Job]) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && !closed { condition.wait() }
        guard let first = pending.popFirst() else { return nil }
        batch.append(first)
        var rows = first.request.rows
        guard mergeRows > 1 else { return rows }
        let deadline = Date(timeIntervalSinceNow: Double(options.batchTimeoutMicroseconds) / 1e6)
        while rows < mergeRows {
            if let next = pending.first {
                // One run is one sequence length: a request of another length starts the next run.
                guard rows + next.request.rows <= mergeRows, next.request.sequenceLength == first.request.sequenceLength else { break }
                batch.append(pending.removeFirst())
                rows += next.request.rows
                continue
            }
            if closed || options.batchTimeoutMicroseconds <= 0 { break }
            if !condition.wait(until: deadline) { break }
        }
        return rows
    }

    /// Runs the jobs and completes each. A job larger than the session's batch runs alone in
    /// chunks; otherwise all jobs share one run (their rows are at most `mergeRows`).
    private func execute(_ jobs: [Job], rows: Int, session: Session) {
        if jobs.count == 1, rows > sessionRows {
            let job = jobs[0]
            var outputs: [TensorValues]? = nil
            var start = 0
            while start < rows {
                let n = min(sessionRows, rows - start)
                switch runOnce([(job.request, start, n)], session: session) {
                case .failure(let e): job.completion(.failure(e)); return
                case .success(let parts):
                    if outputs == nil { outputs = parts[0] } else {
                        for i in parts[0].indices { outputs![i].append(parts[0][i]) }
                    }
                }
                start += n
            }
            job.completion(.success(InferenceResult(rows: rows, outputs: outputs ?? [], specs: job.request.outputSpecs)))
            return
        }
        switch runOnce(jobs.map { ($0.request, 0, $0.request.rows) }, session: session) {
        case .failure(let e): for job in jobs { job.completion(.failure(e)) }
        case .success(let parts):
            for (job, outs) in zip(jobs, parts) {
                job.completion(.success(InferenceResult(rows: job.request.rows, outputs: outs, specs: job.request.outputSpecs)))
            }
        }
    }

    /// One session run over consecutive row ranges of several requests; returns each range's outputs.
    private func runOnce(_ segments: [(request: InferenceRequest, from: Int, rows: Int)], session: Session)
        -> Result<[[TensorValues]], ServeError> {
        let total = segments.reduce(0) { $0 + $1.rows }
        do { try session.setSequenceLength(segments[0].request.sequenceLength) } catch {
            return .failure(ServeError(.badRequest, "\(error)"))
        }
        for (i, spec) in session.inputs.enumerated() {
            let buffer = session.inputBuffer(i)
            var at = 0
            for s in segments {
                s.request.write(input: i, spec: spec, fromRow: s.from, rows: s.rows, to: buffer, atRow: at)
                at += s.rows
            }
        }
        do { try session.run(batch: total) } catch { return .failure(ServeError(.internalError, "run failed: \(error)")) }
        var results: [[TensorValues]] = []
        var at = 0
        for s in segments {
            results.append(session.outputs.enumerated().map { i, spec in
                TensorValues.read(session.outputBuffer(i, batch: total), dtype: spec.dtype,
                                  elementsPerSample: spec.elementsPerSample, first: at, rows: s.rows)
            })
            at += s.rows
        }
        return .success(results)
    }
}

/// Hands a session to the worker thread that will own it from then on.
private final class SessionBox: @unchecked Sendable {
    let session: Session
    init(_ session: Session) { self.session = session }
}
