// Typed memory with a stable address for the lifetime of its owner (Model or Session), so that
// resolved kernel arguments can hold raw pointers into it. Swift arrays give no such promise.

final class PinnedBuffer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    let count: Int

    init(_ values: [T]) {
        count = values.count
        pointer = UnsafeMutablePointer<T>.allocate(capacity: max(values.count, 1))
        _ = UnsafeMutableBufferPointer(start: pointer, count: values.count).initialize(from: values)
    }

    deinit {
        pointer.deinitialize(count: count)
        pointer.deallocate()
    }
}
