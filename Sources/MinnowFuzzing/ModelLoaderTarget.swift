import MinnowFormat
import MinnowRuntime

/// Bytes → verified model → session → one run → golden self-test: everything a server does
/// with a model file before it answers requests.
enum ModelLoaderTarget {
    static func run(_ data: UnsafeRawBufferPointer) -> Bool {
        guard let model = try? Model(bytes: AlignedBytes(Array(data))),
              let session = try? Session(model: model, maxBatch: min(2, model.maxBatch), threads: 1),
              (try? session.run(batch: session.maxBatch)) != nil else { return false }
        do { _ = try model.selfTest() } catch { return false }
        return true
    }
}
