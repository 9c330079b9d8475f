import MinnowConvert
import MinnowFormat
import MinnowRuntime

/// An ONNX file through the whole converter (dynamic mode needs no calibration data), and, when
/// it converts, the result through the loader and one run.
enum ONNXTarget {
    static func run(_ data: UnsafeRawBufferPointer) -> Bool {
        var options = ConvertOptions()
        options.mode = .dynamic
        options.maxBatch = 2
        guard let result = try? Converter.convert(onnxPath: writeScratch("model.onnx", data), options: options),
              let model = try? Model(bytes: AlignedBytes(result.bytes)),
              let session = try? Session(model: model, threads: 1) else { return false }
        return (try? session.run(batch: 1)) != nil
    }
}
