import CMinnowAPI
import MinnowFormat
import MinnowRuntime

// The C interface declared in Sources/CMinnowAPI/include/minnow.h. Handles are retained Swift
// objects passed as opaque pointers; each entry point checks its arguments and reports failures
// through minnow_last_error() instead of trapping. The run path converts nothing and allocates
// nothing.

final class ModelHandle {
    let model: Model
    /// NUL-terminated names that stay put while the model lives.
    let inputNames: [UnsafeMutablePointer<CChar>]
    let outputNames: [UnsafeMutablePointer<CChar>]
    let kernelName: UnsafeMutablePointer<CChar>

    init(_ model: Model) {
        self.model = model
        inputNames = model.inputs.map { strdup($0.name)! }
        outputNames = model.outputs.map { strdup($0.name)! }
        kernelName = strdup(model.kernelName)!
    }

    deinit { (inputNames + outputNames + [kernelName]).forEach { free($0) } }
}

final class SessionHandle {
    let owner: ModelHandle
    let session: Session
    init(_ owner: ModelHandle, _ session: Session) {
        self.owner = owner
        self.session = session
    }
}

private func fail(_ message: String) { minnow_internal_set_error(message) }
private func modelHandle(_ p: OpaquePointer?) -> ModelHandle? {
    p.map { Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}
private func sessionHandle(_ p: OpaquePointer?) -> SessionHandle? {
    p.map { Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}
private func retained(_ m: ModelHandle) -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(m).toOpaque()) }

@_cdecl("minnow_model_load")
public func minnow_model_load_impl(_ path: UnsafePointer<CChar>?) -> OpaquePointer? {
    guard let path else { fail("minnow_model_load: path is NULL"); return nil }
    do { return retained(ModelHandle(try Model(path: String(cString: path)))) } catch {
        let file = String(cString: path), text = "\(error)"
        fail(text.hasPrefix(file) ? text : "\(file): \(text)")
        return nil
    }
}

@_cdecl("minnow_model_load_kernels")
public func minnow_model_load_kernels_impl(_ path: UnsafePointer<CChar>?, _ kernels: UnsafePointer<CChar>?) -> OpaquePointer? {
    guard let path else { fail("minnow_model_load_kernels: path is NULL"); return nil }
    do { return retained(ModelHandle(try Model(path: String(cString: path), kernels: kernels.map { String(cString: $0) }))) } catch {
        let file = String(cString: path), text = "\(error)"
        fail(text.hasPrefix(file) ? text : "\(file): \(text)")
        return nil
    }
}

@_cdecl("minnow_model_kernels")
public func minnow_model_kernels_impl(_ model: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let m = modelHandle(model) else { fail("minnow_model_kernels: model is NULL"); return nil }
    return UnsafePointer(m.kernelName)
}

@_cdecl("minnow_model_load_bytes")
public func minnow_model_load_bytes_impl(_ data: UnsafeRawPointer?, _ size: Int) -> OpaquePointer? {
    guard let data, size >= 0 else { fail("minnow_model_load_bytes: data is NULL"); return nil }
    do { return retained(ModelHandle(try Model(bytes: AlignedBytes(copying: UnsafeRawBufferPointer(start: data, count: size))))) } catch {
        fail("\(error)")
        return nil
    }
}

@_cdecl("minnow_model_free")
public func minnow_model_free_impl(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(model)).release()
}

@_cdecl("minnow_model_input_count")
public func minnow_model_input_count_impl(_ model: OpaquePointer?) -> Int32 {
    guard let m = modelHandle(model) else { fail("model is NULL"); return -1 }
    return Int32(m.model.inputs.count)
}

@_cdecl("minnow_model_output_count")
public func minnow_model_output_count_impl(_ model: OpaquePointer?) -> Int32 {
    guard let m = modelHandle(model) else { fail("model is NULL"); return -1 }
    return Int32(m.model.outputs.count)
}

@_cdecl("minnow_model_input_name")
public func minnow_model_input_name_impl(_ model: OpaquePointer?, _ index: Int32) -> UnsafePointer<CChar>? {
    guard let m = modelHandle(model), m.inputNames.indices.contains(Int(index)) else { fail("no input \(index)"); return nil }
    return UnsafePointer(m.inputNames[Int(index)])
}

@_cdecl("minnow_model_output_name")
public func minnow_model_output_name_impl(_ model: OpaquePointer?, _ index: Int32) -> UnsafePointer<CChar>? {
    guard let m = modelHandle(model), m.outputNames.indices.contains(Int(index)) else { fail("no output \(index)"); return nil }
    return UnsafePointer(m.outputNames[Int(index)])
}

private func writeShape(_ spec: TensorSpec, _ dims: UnsafeMutablePointer<Int64>?, _ capacity: Int32) -> Int32 {
    for (i, d) in spec.shape.enumerated() where i < Int(capacity) { dims?[i] = Int64(d) }
    return Int32(spec.shape.count)
}

@_cdecl("minnow_model_input_shape")
public func minnow_model_input_shape_impl(_ model: OpaquePointer?, _ index: Int32, _ dims: UnsafeMutablePointer<Int64>?, _ capacity: Int32) -> Int32 {
    guard let m = modelHandle(model), m.model.inputs.indices.contains(Int(index)) else { fail("no input \(index)"); return -1 }
    return writeShape(m.model.inputs[Int(index)], dims, capacity)
}

@_cdecl("minnow_model_output_shape")
public func minnow_model_output_shape_impl(_ model: OpaquePointer?, _ index: Int32, _ dims: UnsafeMutablePointer<Int64>?, _ capacity: Int32) -> Int32 {
    guard let m = modelHandle(model), m.model.outputs.indices.contains(Int(index)) else { fail("no output \(index)"); return -1 }
    return writeShape(m.model.outputs[Int(index)], dims, capacity)
}

@_cdecl("minnow_model_input_dtype")
public func minnow_model_input_dtype_impl(_ model: OpaquePointer?, _ index: Int32) -> Int32 {
    guard let m = modelHandle(model), m.model.inputs.indices.contains(Int(index)) else { fail("no input \(index)"); return -1 }
    return Int32(m.model.inputs[Int(index)].dtype.rawValue)
}

@_cdecl("minnow_model_output_dtype")
public func minnow_model_output_dtype_impl(_ model: OpaquePointer?, _ index: Int32) -> Int32 {
    guard let m = modelHandle(model), m.model.outputs.indices.contains(Int(index)) else { fail("no output \(index)"); return -1 }
    return Int32(m.model.outputs[Int(index)].dtype.rawValue)
}

@_cdecl("minnow_model_input_index")
public func minnow_model_input_index_impl(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?) -> Int32 {
    guard let m = modelHandle(model), let name else { fail("model or name is NULL"); return -1 }
    let n = String(cString: name)
    guard let i = m.model.inputs.firstIndex(where: { $0.name == n }) else {
        fail("unknown input '\(n)' (model inputs: \(m.model.inputs.map(\.name).joined(separator: ", ")))")
        return -1
    }
    return Int32(i)
}

@_cdecl("minnow_model_output_index")
public func minnow_model_output_index_impl(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?) -> Int32 {
    guard let m = modelHandle(model), let name else { fail("model or name is NULL"); return -1 }
    let n = String(cString: name)
    guard let i = m.model.outputs.firstIndex(where: { $0.name == n }) else {
        fail("unknown output '\(n)' (model outputs: \(m.model.outputs.map(\.name).joined(separator: ", ")))")
        return -1
    }
    return Int32(i)
}

@_cdecl("minnow_model_max_batch")
public func minnow_model_max_batch_impl(_ model: OpaquePointer?) -> Int32 {
    guard let m = modelHandle(model) else { fail("model is NULL"); return -1 }
    return Int32(m.model.maxBatch)
}

@_cdecl("minnow_session_create")
public func minnow_session_create_impl(_ model: OpaquePointer?, _ maxBatch: Int32) -> OpaquePointer? {
    minnow_session_create_threads_impl(model, maxBatch, 0)
}

@_cdecl("minnow_session_create_threads")
public func minnow_session_create_threads_impl(_ model: OpaquePointer?, _ maxBatch: Int32, _ threads: Int32) -> OpaquePointer? {
    guard let m = modelHandle(model) else { fail("model is NULL"); return nil }
    do {
        let s = try Session(model: m.model, maxBatch: maxBatch > 0 ? Int(maxBatch) : nil, threads: threads > 0 ? Int(threads) : nil)
        return OpaquePointer(Unmanaged.passRetained(SessionHandle(m, s)).toOpaque())
    } catch {
        fail("\(error)")
        return nil
    }
}

@_cdecl("minnow_session_free")
public func minnow_session_free_impl(_ session: OpaquePointer?) {
    guard let session else { return }
    Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(session)).release()
}

@_cdecl("minnow_session_max_batch")
public func minnow_session_max_batch_impl(_ session: OpaquePointer?) -> Int32 {
    guard let s = sessionHandle(session) else { fail("session is NULL"); return -1 }
    return Int32(s.session.maxBatch)
}

@_cdecl("minnow_session_input")
public func minnow_session_input_impl(_ session: OpaquePointer?, _ index: Int32) -> UnsafeMutablePointer<Float>? {
    guard let s = sessionHandle(session), s.session.inputs.indices.contains(Int(index)) else { fail("no input \(index)"); return nil }
    guard s.session.inputs[Int(index)].dtype == .float32 else { fail("input \(index) is not float32 (use minnow_session_input_data)"); return nil }
    return s.session.inputBuffer(Int(index)).baseAddress?.assumingMemoryBound(to: Float.self)
}

@_cdecl("minnow_session_input_data")
public func minnow_session_input_data_impl(_ session: OpaquePointer?, _ index: Int32) -> UnsafeMutableRawPointer? {
    guard let s = sessionHandle(session), s.session.inputs.indices.contains(Int(index)) else { fail("no input \(index)"); return nil }
    return s.session.inputBuffer(Int(index)).baseAddress
}

@_cdecl("minnow_session_set_input")
public func minnow_session_set_input_impl(_ session: OpaquePointer?, _ index: Int32, _ data: UnsafePointer<Float>?, _ count: Int64) -> Int32 {
    guard let s = sessionHandle(session), s.session.inputs.indices.contains(Int(index)) else { fail("no input \(index)"); return -1 }
    guard let data, count >= 0 else { fail("data is NULL"); return -1 }
    guard s.session.inputs[Int(index)].dtype == .float32 else {
        fail("input \(index) '\(s.session.inputs[Int(index)].name)' is \(s.session.inputs[Int(index)].dtype), not float32 (write it through minnow_session_input_data)")
        return -1
    }
    do {
        try s.session.setInput(Int(index), bytes: UnsafeRawBufferPointer(start: data, count: Int(count) * 4))
        return 0
    } catch {
        fail("\(error)")
        return -1
    }
}

@_cdecl("minnow_session_run")
public func minnow_session_run_impl(_ session: OpaquePointer?, _ batch: Int32) -> Int32 {
    guard let s = sessionHandle(session) else { fail("session is NULL"); return -1 }
    do throws(RunError) {
        try s.session.run(batch: Int(batch))
        return 0
    } catch {
        fail("\(error)")
        return -1
    }
}

@_cdecl("minnow_session_output")
public func minnow_session_output_impl(_ session: OpaquePointer?, _ index: Int32) -> UnsafePointer<Float>? {
    guard let s = sessionHandle(session), s.session.outputs.indices.contains(Int(index)) else { fail("no output \(index)"); return nil }
    guard s.session.outputs[Int(index)].dtype == .float32 else { fail("output \(index) is not float32 (use minnow_session_output_data)"); return nil }
    return s.session.outputBuffer(Int(index), batch: s.session.maxBatch).baseAddress?.assumingMemoryBound(to: Float.self)
}

@_cdecl("minnow_session_output_data")
public func minnow_session_output_data_impl(_ session: OpaquePointer?, _ index: Int32) -> UnsafeRawPointer? {
    guard let s = sessionHandle(session), s.session.outputs.indices.contains(Int(index)) else { fail("no output \(index)"); return nil }
    return UnsafeRawPointer(s.session.outputBuffer(Int(index), batch: s.session.maxBatch).baseAddress)
}

@_cdecl("minnow_model_sequence_lengths")
public func minnow_model_sequence_lengths_impl(_ model: OpaquePointer?, _ lengths: UnsafeMutablePointer<Int64>?, _ capacity: Int32) -> Int32 {
    guard let m = modelHandle(model) else { fail("model is NULL"); return -1 }
    let all = m.model.sequenceLengths
    for (i, l) in all.enumerated() where i < Int(capacity) { lengths?[i] = Int64(l) }
    return Int32(all.count)
}

@_cdecl("minnow_session_set_sequence_length")
public func minnow_session_set_sequence_length_impl(_ session: OpaquePointer?, _ length: Int64) -> Int32 {
    guard let s = sessionHandle(session) else { fail("session is NULL"); return -1 }
    do throws(IOError) {
        try s.session.setSequenceLength(Int(clamping: length))
        return 0
    } catch {
        fail("\(error)")
        return -1
    }
}

@_cdecl("minnow_session_input_shape")
public func minnow_session_input_shape_impl(_ session: OpaquePointer?, _ index: Int32, _ dims: UnsafeMutablePointer<Int64>?, _ capacity: Int32) -> Int32 {
    guard let s = sessionHandle(session), s.session.inputs.indices.contains(Int(index)) else { fail("no input \(index)"); return -1 }
    return writeShape(s.session.inputs[Int(index)], dims, capacity)
}

@_cdecl("minnow_session_output_shape")
public func minnow_session_output_shape_impl(_ session: OpaquePointer?, _ index: Int32, _ dims: UnsafeMutablePointer<Int64>?, _ capacity: Int32) -> Int32 {
    guard let s = sessionHandle(session), s.session.outputs.indices.contains(Int(index)) else { fail("no output \(index)"); return -1 }
    return writeShape(s.session.outputs[Int(index)], dims, capacity)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
