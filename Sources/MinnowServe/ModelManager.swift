import Foundation
import Logging
import ServiceLifecycle

/// What the server knows about one version of a model, for status routes.
public struct VersionStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        case start = "START"          // seen on disk, waiting for the file to settle
        case available = "AVAILABLE"  // serving
        case end = "END"              // failed to load (with `error`), until its file changes
    }
    public let version: Int
    public let state: State
    public let error: String?
}

/// Owns every loaded version. Polls the repository, loads and warms new versions off the
/// request path, and swaps them in atomically; retired versions drain their queues and unload.
///
/// Rules (DESIGN §7): a version that fails verification or warm-up never replaces one in service
/// and is retried only when its file changes; a file whose size or time is still changing is not
/// loaded; a repository that cannot be listed changes nothing.
public final class ModelManager: Service, @unchecked Sendable {
    public struct Options: Sendable {
        public var policy: VersionPolicy = .latest(1)
        public var pollSeconds: Double = 1
        /// A file counts as complete once unchanged across two scans and this old.
        public var settleSeconds: Double = 1
        public var execution = ExecutionOptions()
        /// Serve only files signed by this Ed25519 public key (raw 32 bytes).
        public var requiredSigner: Data?
        public init() {}
    }

    public let repository: ModelRepository
    public let options: Options
    let metrics: ServeMetrics
    let logger: Logger

    /// Per-model state. `serving` is read by request handlers; everything is written only by
    /// the loader (one poll at a time, on `loaderQueue`), under `lock`.
    struct ModelState {
        var serving: [Int: ServableVersion] = [:]
        var failed: [Int: (fingerprint: ModelRepository.Fingerprint, message: String)] = [:]
        var lastSeen: [Int: ModelRepository.Fingerprint] = [:]
        /// On disk, not served, not failed: waiting for the file to settle.
        var pending: Set<Int> = []
    }
    private let lock = NSLock()
    private var models: [String: ModelState] = [:]
    private var shuttingDown = false
    private let loaderQueue = DispatchQueue(label: "minnow.loader")

    public init(repository: ModelRepository, options: Options, metrics: ServeMetrics, logger: Logger) {
        self.repository = repository
        self.options = options
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: Lookups (request path)

    /// The version a request goes to: `version` if it is served, else the highest served one.
    public func lookup(_ name: String, version: Int?) throws(ServeError) -> ServableVersion {
        lock.lock(); defer { lock.unlock() }
        guard let state = models[name] else { throw .notFound("model '\(name)' not found in \(repository.root)") }
        if let v = version {
            guard let s = state.serving[v] else {
                let served = state.serving.keys.sorted().map(String.init).joined(separator: ", ")
                throw .notFound("model '\(name)' version \(v) is not served (served: \(served.isEmpty ? "none" : served))")
            }
            return s
        }
        guard let newest = state.serving.keys.max() else {
            throw ServeError(.unavailable, "model '\(name)' has no version in service" + ModelManager.failureHint(state))
        }
        return state.serving[newest]!
    }

    /// Versions the server knows for `name` (nil: no such model), sorted by version.
    public func status(_ name: String) -> [VersionStatus]? {
        lock.lock(); defer { lock.unlock() }
        guard let state = models[name] else { return nil }
        var list: [Int: VersionStatus] = [:]
        for v in state.pending { list[v] = VersionStatus(version: v, state: .start, error: nil) }
        for (v, f) in state.failed { list[v] = VersionStatus(version: v, state: .end, error: f.message) }
        for v in state.serving.keys { list[v] = VersionStatus(version: v, state: .available, error: nil) }
        return list.keys.sorted().map { list[$0]! }
    }

    public var modelNames: [String] {
        lock.lock(); defer { lock.unlock() }
        return models.keys.sorted()
    }

    /// Ready: not shutting down, and every model in the repository has a version in service.
    public var isReady: Bool {
        lock.lock(); defer { lock.unlock() }
        return !shuttingDown && !models.isEmpty && models.values.allSatisfy { !$0.serving.isEmpty }
    }

    static func failureHint(_ state: ModelState) -> String {
        guard let (v, f) = state.failed.max(by: { $0.key < $1.key }) else { return "" }
        return "; version \(v) failed to load: \(f.message)"
    }

    // MARK: Polling

    /// Scans once and loads or unloads what changed. `initial`: every file present counts as
    /// complete (the operator started the server on them).
    public func poll(initial: Bool = false) {
        let scan: [String: [ModelRepository.VersionFile]?]
        do { scan = try repository.scan() } catch {
            metrics.repositoryScanFailed()
            logger.warning("repository scan failed; keeping every version in service", metadata: ["error": "\(error)"])
            return
        }
        for (name, files) in scan.sorted(by: { $0.key < $1.key }) {
            // An unreadable model directory: keep what is served, try again next poll.
            guard let files else { continue }
            update(name, files: files, initial: initial)
        }
        // Models whose directory is gone: retire their versions.
        lock.lock()
        let gone = models.keys.filter { scan[$0] == nil }
        var retired: [ServableVersion] = []
        for name in gone {
            retired += models[name]!.serving.values
            models[name] = nil
        }
        lock.unlock()
        for name in gone {
            logger.info("model removed from the repository", metadata: ["model": "\(name)"])
            metrics.versionsAvailable(model: name, count: 0)
        }
        retire(retired)
    }

    private func update(_ name: String, files: [ModelRepository.VersionFile], initial: Bool) {
        lock.lock()
        var state = models[name] ?? ModelState()
        lock.unlock()

        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        var candidates: [Int: ModelRepository.VersionFile] = [:]  // loadable or already served
        var needsLoad: Set<Int> = []
        var seen: [Int: ModelRepository.Fingerprint] = [:]
        var pending: Set<Int> = []
        for f in files {
            let v = f.version
            seen[v] = f.fingerprint
            // Complete = unchanged since the previous scan and not modified for settleSeconds
            // (a writer that pauses briefly mid-file is not caught half-way).
            let settled = initial || (state.lastSeen[v] == f.fingerprint
                && Double(now - f.fingerprint.modifiedNanoseconds) >= options.settleSeconds * 1e9)
            let servedCurrent = state.serving[v]?.fingerprint == f.fingerprint
            let knownBad = state.failed[v]?.fingerprint == f.fingerprint
            if servedCurrent {
                candidates[v] = f
            } else if state.serving[v] != nil {
                // Served, but its file changed: keep the loaded copy unless the new bytes load.
                candidates[v] = f
                if settled && !knownBad { needsLoad.insert(v) }
            } else if settled && !knownBad {
                candidates[v] = f
                needsLoad.insert(v)
            } else if !knownBad {
                pending.insert(v)
            }
        }
        state.lastSeen = seen
        state.pending = pending
        state.failed = state.failed.filter { seen[$0.key] != nil }

        // Load what the policy wants; a failure drops that version from the candidates (unless
        // an older copy of it is served) and the policy is asked again.
        var loaded: [Int: ServableVersion] = [:]
        var attempted: Set<Int> = []
        var target = options.policy.select(from: Array(candidates.keys))
        while let v = target.filter({ needsLoad.contains($0) && !attempted.contains($0) }).max() {
            attempted.insert(v)
            let file = candidates[v]!
            logger.info("loading version", metadata: ["model": "\(name)", "version": "\(v)", "bytes": "\(file.fingerprint.size)"])
            do throws(ServeError) {
                let servable = try ServableVersion.load(name: name, file: file, options: options.execution,
                                                        requiredSigner: options.requiredSigner, observer: metrics.queueObserver(model: name, version: v))
                loaded[v] = servable
                state.failed[v] = nil
                metrics.loadEvent(model: name, version: v, result: "success")
                logger.info("version loaded", metadata: ["model": "\(name)", "version": "\(v)", "path": "\(file.path)"])
            } catch {
                state.failed[v] = (file.fingerprint, error.message)
                metrics.loadEvent(model: name, version: v, result: "failure")
                logger.error("version failed to load; not served", metadata: [
                    "model": "\(name)", "version": "\(v)", "error": "\(error.message)",
                ])
                if state.serving[v] == nil { candidates[v] = nil }
                target = options.policy.select(from: Array(candidates.keys))
            }
        }

        // The swap: one critical section replaces the served set.
        var serving: [Int: ServableVersion] = [:]
        for v in target { if let s = loaded[v] ?? state.serving[v] { serving[v] = s } }
        var retired = state.serving.filter { serving[$0.key] !== $0.value }.map(\.value)
        retired += loaded.filter { serving[$0.key] !== $0.value }.map(\.value)  // loaded but not chosen
        state.serving = serving
        lock.lock()
        models[name] = state
        lock.unlock()

        for s in retired {
            logger.info("version retired", metadata: ["model": "\(name)", "version": "\(s.version)"])
        }
        metrics.versionsAvailable(model: name, count: serving.count)
        retire(retired)
    }

    /// Closes retired versions' queues; their workers finish queued requests, then exit.
    private func retire(_ versions: [ServableVersion]) {
        for s in versions {
            s.queue.close()
            metrics.unloadEvent(model: s.name, version: s.version)
        }
    }

    // MARK: Service

    /// Polls until graceful shutdown, then drains every version (queued requests finish).
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: .milliseconds(Int(self.options.pollSeconds * 1000)))
                await self.pollInBackground()
            }
        }
        await shutdown()
    }

    /// Runs one poll on the loader queue (loading is CPU work that must not block the server's threads).
    public func pollInBackground(initial: Bool = false) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            loaderQueue.async {
                self.poll(initial: initial)
                MemoryTrim.releaseFreeMemory()
                c.resume()
            }
        }
    }

    /// Stops serving: every version's queue closes and drains.
    public func shutdown() async {
        let all = lock.withLock {
            shuttingDown = true
            return models.values.flatMap { $0.serving.values }
        }
        retire(all)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                for s in all { s.queue.waitUntilDrained() }
                c.resume()
            }
        }
        logger.info("all versions drained")
    }
}
