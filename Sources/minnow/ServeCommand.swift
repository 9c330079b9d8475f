import ArgumentParser
import Foundation
import Logging
import MinnowServe
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve .minnow models over HTTP (TF Serving REST and KServe v2) from a model repository.",
        discussion: """
        The repository uses TF Serving's layout: ROOT/<model>/<version>/model.minnow. New versions \
        are verified and warmed before they take traffic; a version that fails never replaces the \
        one in service. SIGTERM or SIGINT stops accepting, drains in-flight requests and exits 0.

          POST /v1/models/<m>[/versions/<v>]:predict   {"instances": [...]} or {"inputs": ...}
          POST /v2/models/<m>[/versions/<v>]/infer     {"inputs": [{"name","shape","datatype","data"}]}
          GET  /v1/models/<m>, /v1/models/<m>/metadata, /v2/models/<m>, /v2/health/ready, /metrics
        """)

    @Option(help: "Model repository: ROOT/<model>/<version>/model.minnow.") var modelRoot: String
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port; the chosen one is printed).") var port = 8501
    @Option(help: "Seconds between repository scans for new or removed versions.") var pollSeconds = 1.0
    @Option(help: "Versions to serve: latest:N, all, or specific:V[,V...].") var versionPolicy = "latest:1"
    @Option(help: "Worker threads per loaded version, each with its own session (default: one per core).") var threads: Int?
    @Option(help: "Threads inside each run (splits large operators).") var intraOpThreads = 1
    @Option(help: "Dynamic batching: merge queued requests into runs of up to N rows (1: off).") var maxBatch = 1
    @Option(help: "Dynamic batching: microseconds a partial batch waits for more requests.") var batchTimeoutUs = 0
    @Option(help: "Requests queued per version before new ones get 503 (overloaded).") var maxQueue = 1024
    @Option(help: "Largest request body in bytes (larger: 413).") var maxBodyBytes = 64 << 20
    @Option(help: "A new file counts as complete once unchanged across two scans and for this many seconds.")
    var settleSeconds = 1.0
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Option(help: "Serve only files signed by this public key (minnow keygen / minnow sign); others are reported and skipped.")
    var requireSignature: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard pollSeconds > 0, pollSeconds <= 86400 else { throw ValidationError("--poll-seconds must be in (0, 86400], got \(pollSeconds)") }
        guard (threads ?? 1) >= 1, (threads ?? 1) <= 256 else { throw ValidationError("--threads must be in 1...256") }
        guard (1...256).contains(intraOpThreads) else { throw ValidationError("--intra-op-threads must be in 1...256") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        guard (0...10_000_000).contains(batchTimeoutUs) else { throw ValidationError("--batch-timeout-us must be in 0...10000000") }
        guard maxQueue >= 1 else { throw ValidationError("--max-queue must be at least 1") }
        guard maxBodyBytes >= 1 else { throw ValidationError("--max-body-bytes must be at least 1") }
        guard settleSeconds >= 0 else { throw ValidationError("--settle-seconds must not be negative") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
        do { _ = try VersionPolicy(parsing: versionPolicy) } catch { throw ValidationError("--version-policy: \(error.message)") }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: modelRoot, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationError("--model-root \(modelRoot) is not a directory")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "minnow.serve")

        var options = ModelManager.Options()
        options.policy = try VersionPolicy(parsing: versionPolicy)
        options.pollSeconds = pollSeconds
        if let keyPath = requireSignature { options.requiredSigner = try readPublicKey(keyPath) }
        options.settleSeconds = settleSeconds
        options.execution = ExecutionOptions(
            workers: threads ?? ProcessInfo.processInfo.activeProcessorCount, intraOpThreads: intraOpThreads,
            queueCapacity: maxQueue, maxBatchRows: maxBatch, batchTimeoutMicroseconds: batchTimeoutUs)
        let metrics = ServeMetrics()
        let manager = ModelManager(repository: ModelRepository(root: modelRoot), options: options, metrics: metrics, logger: logger)
        // Load what is there before listening, so the first request finds the models ready.
        await manager.pollInBackground(initial: true)
        for name in manager.modelNames {
            let versions = (manager.status(name) ?? []).map { "\($0.version) \($0.state.rawValue)" }
            logger.info("model", metadata: ["model": "\(name)", "versions": "\(versions.joined(separator: ", "))"])
        }

        var http = HTTPServerOptions()
        http.host = host
        http.port = port
        http.maxBodyBytes = maxBodyBytes
        let api = ServingAPI(manager: manager, metrics: metrics, logger: logger)
        let host = host
        let server = HTTPServer.make(api: api, options: http, logger: logger) { bound in
            // Written straight to fd 1 (unbuffered) so a supervising script sees it at once.
            FileHandle.standardOutput.write(Data("minnow serve: listening on http://\(host):\(bound)\n".utf8))
        }
        try await ServiceGroup(configuration: .init(
            services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
        print("minnow serve: stopped")
    }
}
