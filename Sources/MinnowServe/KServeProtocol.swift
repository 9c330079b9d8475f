import MinnowFormat
import MinnowRuntime

/// KServe's Open Inference Protocol, v2 REST (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/).
enum KServe {
    static func datatype(_ d: DType) -> String {
        switch d {
        case .float32: "FP32"
        case .int8: "INT8"
        case .uint8: "UINT8"
        case .int32: "INT32"
        case .int64: "INT64"
        case .bool: "BOOL"
        }
    }

    struct Decoded {
        let request: InferenceRequest
        let id: String?
        /// Model output indices to answer with (all when the request names none).
        let outputs: [Int]
    }

    /// Decodes an `/infer` body: `inputs` is a list of {name, shape, datatype, data}.
    static func decodeInfer(_ body: JSONValue, model: Model) throws(ServeError) -> Decoded {
        guard case .object = body else { throw .badRequest("infer body must be a JSON object with \"inputs\"") }
        var id: String?
        if let v = body["id"] {
            guard case .string(let s) = v else { throw .badRequest("id: expected a string, found \(v.kindName)") }
            id = s
        }
        guard let inputsValue = body["inputs"] else { throw .badRequest("infer body needs \"inputs\"") }
        guard case .array(let list) = inputsValue, !list.isEmpty else {
            throw .badRequest("inputs must be a non-empty list of {name, shape, datatype, data} objects")
        }
        // First the names and shapes: they say which sequence length the request has.
        var items: [(path: String, name: String, item: JSONValue, shape: [Int])] = []
        var shapes: [String: [Int]] = [:]
        for (k, item) in list.enumerated() {
            let path = "inputs[\(k)]"
            guard case .object = item else { throw .badRequest("\(path): expected an object, found \(item.kindName)") }
            guard case .string(let name)? = item["name"] else { throw .badRequest("\(path): \"name\" (a string) is required") }
            guard model.input(named: name) != nil else {
                throw .badRequest("\(path): unknown input '\(name)' (model inputs: \(TensorDecoding.inputNames(model)))")
            }
            guard shapes[name] == nil else { throw .badRequest("\(path): input '\(name)' given twice") }
            let shape = try declaredShape(item["shape"], path: path)
            shapes[name] = shape
            items.append((path, name, item, shape))
        }
        let length = try TensorDecoding.sequenceLength(model, shapes: shapes)
        let specs = TensorDecoding.inputSpecs(model, length: length)
        var byName: [String: (shape: [Int], values: [Double])] = [:]
        for (path, name, item, shape) in items {
            let spec = specs.first { $0.name == name }!
            guard case .string(let dt)? = item["datatype"] else { throw .badRequest("\(path): \"datatype\" (a string) is required") }
            guard dt == datatype(spec.dtype) else {
                throw .badRequest("\(path): input '\(name)' has datatype \(datatype(spec.dtype)), request says \(dt)")
            }
            let expected = TensorDecoding.sampleShape(spec)
            guard shape.count == expected.count + 1, Array(shape.dropFirst()) == expected else {
                throw .badRequest("\(path): input '\(name)' takes shape \(TensorDecoding.describe([-1] + expected)), request says \(TensorDecoding.describe(shape))")
            }
            guard let data = item["data"] else { throw .badRequest("\(path): \"data\" is required") }
            let (_, values) = try TensorDecoding.numeric(data, path: "\(path).data")
            let count = shape.reduce(1, *)
            guard values.count == count else {
                throw .badRequest("\(path): shape \(TensorDecoding.describe(shape)) needs \(count) values, data has \(values.count)")
            }
            byName[name] = (shape, values)
        }
        var rows: Int?
        var values: [[Double]] = []
        for spec in model.inputs {
            guard let t = byName[spec.name] else {
                throw .badRequest("missing input '\(spec.name)' (model inputs: \(TensorDecoding.inputNames(model)))")
            }
            if let r = rows, r != t.shape[0] {
                throw .badRequest("input '\(spec.name)' has a batch of \(t.shape[0]), other inputs have \(r)")
            }
            rows = t.shape[0]
            values.append(t.values)
        }
        let request = try InferenceRequest(model: model, rows: rows ?? 0, inputs: values, sequenceLength: length)
        return Decoded(request: request, id: id, outputs: try requestedOutputs(body["outputs"], model: model))
    }

    static func declaredShape(_ value: JSONValue?, path: String) throws(ServeError) -> [Int] {
        guard let value else { throw .badRequest("\(path): \"shape\" is required") }
        guard case .tensor(let s, let dims) = value, s.count == 1,
              dims.allSatisfy({ $0 >= 0 && $0 <= 1e9 && $0.rounded() == $0 }) else {
            throw .badRequest("\(path): \"shape\" must be a list of non-negative integers")
        }
        return dims.map { Int($0) }
    }

    static func requestedOutputs(_ value: JSONValue?, model: Model) throws(ServeError) -> [Int] {
        guard let value else { return Array(model.outputs.indices) }
        guard case .array(let list) = value else { throw .badRequest("outputs must be a list of {name} objects") }
        var picked: [Int] = []
        for (k, item) in list.enumerated() {
            guard case .string(let name)? = item["name"] else { throw .badRequest("outputs[\(k)]: \"name\" (a string) is required") }
            guard let i = model.outputs.firstIndex(where: { $0.name == name }) else {
                throw .badRequest("outputs[\(k)]: unknown output '\(name)' (model outputs: \(model.outputs.map(\.name).joined(separator: ", ")))")
            }
            picked.append(i)
        }
        return picked.isEmpty ? Array(model.outputs.indices) : picked
    }

    static func encodeInfer(_ result: InferenceResult, servable: ServableVersion, id: String?, outputs: [Int]) -> [UInt8] {
        var w = JSONWriter(capacity: 128 + result.outputs.reduce(0) { $0 + $1.count * 12 })
        w.beginObject()
        w.key("model_name"); w.string(servable.name)
        w.key("model_version"); w.string(String(servable.version))
        if let id { w.key("id"); w.string(id) }
        w.key("outputs")
        w.beginArray()
        for i in outputs {
            let spec = result.specs[i]
            w.beginObject()
            w.key("name"); w.string(spec.name)
            w.key("datatype"); w.string(datatype(spec.dtype))
            w.key("shape")
            w.beginArray()
            for d in [result.rows] + TensorDecoding.sampleShape(spec) { w.number(d) }
            w.endArray()
            w.key("data")
            w.tensor(result.outputs[i], shape: [result.outputs[i].count])
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.bytes
    }

    /// `GET /v2/models/<m>[/versions/<v>]`.
    static func encodeModelMetadata(_ s: ServableVersion, versions: [Int]) -> [UInt8] {
        func tensors(_ specs: [TensorSpec], _ w: inout JSONWriter) {
            w.beginArray()
            for spec in specs {
                w.beginObject()
                w.key("name"); w.string(spec.name)
                w.key("datatype"); w.string(datatype(spec.dtype))
                w.key("shape")
                w.beginArray()
                for d in spec.shape { w.number(d) }
                w.endArray()
                w.endObject()
            }
            w.endArray()
        }
        var w = JSONWriter()
        w.beginObject()
        w.key("name"); w.string(s.name)
        w.key("versions")
        w.beginArray()
        for v in versions { w.string(String(v)) }
        w.endArray()
        w.key("platform"); w.string("minnow")
        w.key("inputs"); tensors(s.model.inputs, &w)
        w.key("outputs"); tensors(s.model.outputs, &w)
        w.endObject()
        return w.bytes
    }
}
