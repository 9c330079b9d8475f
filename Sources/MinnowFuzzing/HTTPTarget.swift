import Dispatch
import Foundation
import Logging
import MinnowConvert
@testable import MinnowServe

/// One HTTP request through `minnow serve`'s handler (routing, JSON parsing, both protocols'
/// decoders, validation against the model, the queue, inference and the encoders), on a
/// repository serving ctr_mlp (model "ctr", version 1). Input: "METHOD PATH\n" then the body.
enum HTTPTarget {
    /// Made once per process: converting and loading is not what is being fuzzed.
    static let api: ServingAPI = {
        let root = scratchDirectory + "/models"
        var options = ConvertOptions()
        options.calibrationPath = repoRoot.appendingPathComponent("fixtures/ctr_mlp/calibration.npz").path
        options.maxBatch = 8
        let bytes = try! Converter.convert(onnxPath: repoRoot.appendingPathComponent("fixtures/ctr_mlp/model.onnx").path,
                                           options: options).bytes
        try! FileManager.default.createDirectory(atPath: root + "/ctr/1", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/ctr/1/model.minnow", contents: Data(bytes))
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        var managerOptions = ModelManager.Options()
        managerOptions.settleSeconds = 0
        managerOptions.execution = ExecutionOptions(workers: 1, queueCapacity: 64, maxBatchRows: 8)
        let manager = ModelManager(repository: ModelRepository(root: root), options: managerOptions,
                                   metrics: ServeMetrics(), logger: logger)
        manager.poll(initial: true)
        return ServingAPI(manager: manager, metrics: manager.metrics, logger: logger)
    }()

    final class Box: @unchecked Sendable { var reply: HTTPReply? }

    static func run(_ data: UnsafeRawBufferPointer) -> Bool {
        let bytes = Array(data)
        let newline = bytes.firstIndex(of: 0x0A) ?? bytes.count
        let line = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ", maxSplits: 1)
        let method = line.first.map(String.init) ?? "", path = line.count > 1 ? String(line[1]) : "/"
        let body = Array(bytes[min(newline + 1, bytes.count)...])
        let api = self.api, box = Box(), done = DispatchSemaphore(value: 0)
        Task {
            box.reply = await api.handle(method: method, path: path, body: body)
            done.signal()
        }
        done.wait()
        // Every answer is a status the server documents, and errors are JSON objects.
        let reply = box.reply!
        precondition([200, 400, 404, 405, 413, 503].contains(reply.status), "unexpected status \(reply.status)")
        if reply.status != 200 { precondition((try? JSONValue.parse(reply.body)) != nil, "error body is not JSON") }
        return reply.status == 200
    }
}
