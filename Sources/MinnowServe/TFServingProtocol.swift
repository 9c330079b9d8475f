import MinnowFormat
import MinnowRuntime

/// TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest): predict in row
/// (`instances` → `predictions`) and columnar (`inputs` → `outputs`) form, model status and
/// metadata.
enum TFServing {
    enum Format { case row, columnar }

    /// Decodes a `:predict` body for `model`.
    static func decodePredict(_ body: JSONValue, model: Model) throws(ServeError) -> (InferenceRequest, Format) {
        guard case .object = body else { throw .badRequest("predict body must be a JSON object with \"instances\" or \"inputs\"") }
        if let signature = body["signature_name"] {
            guard case .string(let s) = signature, s == "serving_default" || s.isEmpty else {
                throw .badRequest("unknown signature_name: this model has only \"serving_default\"")
            }
        }
        switch (body["instances"], body["inputs"]) {
        case (.some, .some): throw .badRequest("predict body has both \"instances\" and \"inputs\"; send one")
        case (.some(let instances), nil): return (try rows(instances, model: model), .row)
        case (nil, .some(let inputs)): return (try columns(inputs, model: model), .columnar)
        case (nil, nil): throw .badRequest("predict body needs \"instances\" (row format) or \"inputs\" (columnar format)")
        }
    }

    /// Row format: a list with one entry per sample; an entry is the sample itself (single-input
    /// models) or an object naming every input.
    static func rows(_ instances: JSONValue, model: Model) throws(ServeError) -> InferenceRequest {
        // Fast path: a rectangular numeric array for a single-input model is already one batch.
        if case .tensor(let shape, _) = instances, model.inputs.count == 1 {
            let length = try TensorDecoding.sequenceLength(model, shapes: [model.inputs[0].name: shape])
            let specs = TensorDecoding.inputSpecs(model, length: length)
            let (rows, values) = try TensorDecoding.batch(instances, spec: specs[0], path: "instances")
            return try InferenceRequest(model: model, rows: rows, inputs: [values], sequenceLength: length)
        }
        // The first instance's shapes say which sequence length the request has.
        var length: Int?
        if !model.sequenceLengths.isEmpty, case .array(let list) = instances, let first = list.first {
            var shapes: [String: [Int]] = [:]
            for spec in model.inputs {
                let v = model.inputs.count == 1 && !isObject(first) ? first : first[spec.name]
                if let v, let r = try? TensorDecoding.numeric(v, path: "") { shapes[spec.name] = [1] + r.shape }
            }
            length = try TensorDecoding.sequenceLength(model, shapes: shapes)
        }
        let specs = TensorDecoding.inputSpecs(model, length: length)
        guard case .array(let list) = instances else {
            if case .tensor = instances {
                throw .badRequest("instances: this model has \(specs.count) inputs (\(TensorDecoding.inputNames(model))); send each instance as an object naming them")
            }
            throw .badRequest("instances must be a list, found \(instances.kindName)")
        }
        guard !list.isEmpty else { throw .badRequest("instances is empty") }
        var values = [[Double]](repeating: [], count: specs.count)
        for (r, instance) in list.enumerated() {
            if case .object(let members) = instance {
                for (key, _) in members where !specs.contains(where: { $0.name == key }) {
                    throw .badRequest("instances[\(r)]: unknown input '\(key)' (model inputs: \(TensorDecoding.inputNames(model)))")
                }
                for (i, spec) in specs.enumerated() {
                    guard let v = instance[spec.name] else {
                        throw .badRequest("instances[\(r)]: missing input '\(spec.name)' (model inputs: \(TensorDecoding.inputNames(model)))")
                    }
                    values[i] += try TensorDecoding.sample(v, spec: spec, path: "instances[\(r)].\(spec.name)")
                }
            } else {
                guard specs.count == 1 else {
                    throw .badRequest("instances[\(r)]: this model has \(specs.count) inputs (\(TensorDecoding.inputNames(model))); send an object naming them")
                }
                values[0] += try TensorDecoding.sample(instance, spec: specs[0], path: "instances[\(r)]")
            }
        }
        return try InferenceRequest(model: model, rows: list.count, inputs: values, sequenceLength: length)
    }

    private static func isObject(_ v: JSONValue) -> Bool { if case .object = v { return true } else { return false } }

    /// Columnar format: the batch of the only input, or an object with a batch per input.
    static func columns(_ inputs: JSONValue, model: Model) throws(ServeError) -> InferenceRequest {
        var specs = model.inputs
        var named: [(String, JSONValue)]
        if case .object(let members) = inputs {
            named = members
        } else {
            guard specs.count == 1 else {
                throw .badRequest("inputs: this model has \(specs.count) inputs (\(TensorDecoding.inputNames(model))); send an object naming them")
            }
            named = [(specs[0].name, inputs)]
        }
        for (key, _) in named where !specs.contains(where: { $0.name == key }) {
            throw .badRequest("inputs: unknown input '\(key)' (model inputs: \(TensorDecoding.inputNames(model)))")
        }
        var length: Int?
        if !model.sequenceLengths.isEmpty {  // decoding the values twice only where the length varies
            var shapes: [String: [Int]] = [:]
            for (key, v) in named { if let r = try? TensorDecoding.numeric(v, path: "") { shapes[key] = r.shape } }
            length = try TensorDecoding.sequenceLength(model, shapes: shapes)
            specs = TensorDecoding.inputSpecs(model, length: length)
        }
        var rows: Int?
        var values: [[Double]] = []
        for spec in specs {
            guard let v = named.last(where: { $0.0 == spec.name })?.1 else {
                throw .badRequest("inputs: missing input '\(spec.name)' (model inputs: \(TensorDecoding.inputNames(model)))")
            }
            let (n, x) = try TensorDecoding.batch(v, spec: spec, path: "inputs.\(spec.name)")
            if let r = rows, r != n {
                throw .badRequest("inputs.\(spec.name): batch of \(n) samples, but other inputs have \(r)")
            }
            rows = n
            values.append(x)
        }
        return try InferenceRequest(model: model, rows: rows ?? 0, inputs: values, sequenceLength: length)
    }

    static func encodePredict(_ result: InferenceResult, model: Model, format: Format) -> [UInt8] {
        var w = JSONWriter(capacity: 64 + result.outputs.reduce(0) { $0 + $1.count * 12 })
        let specs = result.specs
        w.beginObject()
        switch format {
        case .row:
            w.key("predictions")
            w.beginArray()
            for r in 0..<result.rows {
                if specs.count == 1 {
                    let sample = TensorDecoding.sampleShape(specs[0])
                    w.tensor(result.outputs[0], shape: sample, offset: r * specs[0].elementsPerSample)
                } else {
                    w.beginObject()
                    for (i, spec) in specs.enumerated() {
                        w.key(spec.name)
                        w.tensor(result.outputs[i], shape: TensorDecoding.sampleShape(spec), offset: r * spec.elementsPerSample)
                    }
                    w.endObject()
                }
            }
            w.endArray()
        case .columnar:
            w.key("outputs")
            if specs.count == 1 {
                w.tensor(result.outputs[0], shape: [result.rows] + TensorDecoding.sampleShape(specs[0]))
            } else {
                w.beginObject()
                for (i, spec) in specs.enumerated() {
                    w.key(spec.name)
                    w.tensor(result.outputs[i], shape: [result.rows] + TensorDecoding.sampleShape(spec))
                }
                w.endObject()
            }
        }
        w.endObject()
        return w.bytes
    }

    /// `GET /v1/models/<m>[/versions/<v>]`.
    static func encodeStatus(_ versions: [VersionStatus]) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.key("model_version_status")
        w.beginArray()
        for s in versions.reversed() {
            w.beginObject()
            w.key("version"); w.string(String(s.version))
            w.key("state"); w.string(s.state.rawValue)
            w.key("status")
            w.beginObject()
            w.key("error_code"); w.string(s.error == nil ? "OK" : "UNKNOWN")
            w.key("error_message"); w.string(s.error ?? "")
            w.endObject()
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.bytes
    }

    static func dtypeName(_ d: DType) -> String {
        switch d {
        case .float32: "DT_FLOAT"
        case .int8: "DT_INT8"
        case .uint8: "DT_UINT8"
        case .int32: "DT_INT32"
        case .int64: "DT_INT64"
        case .bool: "DT_BOOL"
        }
    }

    /// `GET /v1/models/<m>[/versions/<v>]/metadata`: the serving_default signature.
    static func encodeMetadata(_ s: ServableVersion) -> [UInt8] {
        func tensors(_ specs: [TensorSpec], _ w: inout JSONWriter) {
            w.beginObject()
            for spec in specs {
                w.key(spec.name)
                w.beginObject()
                w.key("dtype"); w.string(dtypeName(spec.dtype))
                w.key("tensor_shape")
                w.beginObject()
                w.key("dim")
                w.beginArray()
                for d in spec.shape {
                    w.beginObject(); w.key("size"); w.string(String(d)); w.key("name"); w.string(""); w.endObject()
                }
                w.endArray()
                w.key("unknown_rank"); w.bool(false)
                w.endObject()
                w.key("name"); w.string(spec.name)
                w.endObject()
            }
            w.endObject()
        }
        var w = JSONWriter()
        w.beginObject()
        w.key("model_spec")
        w.beginObject()
        w.key("name"); w.string(s.name)
        w.key("signature_name"); w.string("")
        w.key("version"); w.string(String(s.version))
        w.endObject()
        w.key("metadata")
        w.beginObject()
        w.key("signature_def")
        w.beginObject()
        w.key("signature_def")
        w.beginObject()
        w.key("serving_default")
        w.beginObject()
        w.key("inputs"); tensors(s.model.inputs, &w)
        w.key("outputs"); tensors(s.model.outputs, &w)
        w.key("method_name"); w.string("tensorflow/serving/predict")
        w.endObject()
        w.endObject()
        w.endObject()
        w.endObject()
        w.endObject()
        return w.bytes
    }
}
