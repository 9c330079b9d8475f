import Prometheus

/// The server's Prometheus metrics, exposed at `/metrics`. Metric handles are looked up in the
/// registry by name and labels (the registry returns the same handle for the same pair).
public final class ServeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(5),
    ]
    static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "minnow", metricName: metric, unitName: unit, helpText: help)
    }
    static var requests: MetricNameDescriptor { name("requests", "total", "Requests answered, by protocol, model, version and HTTP status.") }
    static var errors: MetricNameDescriptor { name("request_errors", "total", "Requests answered with an HTTP error status.") }
    static var latency: MetricNameDescriptor { name("request_duration", "seconds", "Time from request to reply of successful inference requests.") }
    static var loads: MetricNameDescriptor { name("model_load", "total", "Version load attempts, by result.") }
    static var unloads: MetricNameDescriptor { name("model_unload", "total", "Versions retired from service.") }
    static var available: MetricNameDescriptor { name("model_versions_available", "", "Versions in service per model.") }
    static var scanErrors: MetricNameDescriptor { name("repository_scan_errors", "total", "Polls that could not list the model root.") }
    static var depth: MetricNameDescriptor { name("queue_depth", "", "Requests waiting for a worker, per version.") }
    static var batchRows: MetricNameDescriptor { name("batch_rows", "", "Rows per run (dynamic batching merges requests).") }
    static var batchRequests: MetricNameDescriptor { name("batch_requests", "", "Requests merged per run.") }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// One answered request. `model`/`version` are "" when the request named no known model.
    /// Latency is recorded for inference requests only.
    func request(protocol proto: String, model: String, version: String, status: Int, duration: Duration, inference: Bool) {
        registry.makeCounter(descriptor: ServeMetrics.requests, labels: [
            ("protocol", proto), ("model", model), ("version", version), ("code", String(status)),
        ]).increment()
        if status >= 400 {
            registry.makeCounter(descriptor: ServeMetrics.errors, labels: [
                ("protocol", proto), ("model", model), ("code", String(status)),
            ]).increment()
        }
        if inference, status < 400, !model.isEmpty {
            registry.makeDurationHistogram(descriptor: ServeMetrics.latency,
                                           labels: [("model", model), ("version", version)],
                                           buckets: ServeMetrics.latencyBuckets).record(duration)
        }
    }

    /// A version load attempt: result is "success" or "failure".
    func loadEvent(model: String, version: Int, result: String) {
        registry.makeCounter(descriptor: ServeMetrics.loads, labels: [
            ("model", model), ("version", String(version)), ("result", result),
        ]).increment()
    }

    func unloadEvent(model: String, version: Int) {
        registry.makeCounter(descriptor: ServeMetrics.unloads, labels: [("model", model), ("version", String(version))])
            .increment()
    }

    func versionsAvailable(model: String, count: Int) {
        registry.makeGauge(descriptor: ServeMetrics.available, labels: [("model", model)]).set(Double(count))
    }

    func repositoryScanFailed() {
        registry.makeCounter(descriptor: ServeMetrics.scanErrors).increment()
    }

    /// Queue depth and batch sizes of one version.
    func queueObserver(model: String, version: Int) -> QueueObserver {
        let labels = [("model", model), ("version", String(version))]
        let depth = registry.makeGauge(descriptor: ServeMetrics.depth, labels: labels)
        let rows = registry.makeValueHistogram(descriptor: ServeMetrics.batchRows, labels: labels, buckets: ServeMetrics.batchBuckets)
        let requests = registry.makeValueHistogram(descriptor: ServeMetrics.batchRequests, labels: labels, buckets: ServeMetrics.batchBuckets)
        var observer = QueueObserver()
        observer.depthChanged = { depth.set(Double($0)) }
        observer.batchRan = { r, n in
            rows.record(Double(r))
            requests.record(Double(n))
        }
        return observer
    }

    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}
