import MinnowFormat

// What the load-time fusions (ConvFusion, SoftmaxFusion, LayerNormFusion) ask of a graph before they merge
// operators: who reads a tensor, and which bytes of a sample its arena slot covers.

extension ModelDescription {
    /// How many operator inputs and graph outputs read each tensor.
    var readerCounts: [Int] {
        var readers = [Int](repeating: 0, count: tensors.count)
        for op in operators { for i in op.inputs where i >= 0 { readers[Int(i)] += 1 } }
        for i in outputs { readers[Int(i)] += 1 }
        return readers
    }

    /// Tensor `t`'s arena slot, in bytes per sample.
    func arenaSlot(_ t: Int) -> Range<UInt64> {
        let info = tensors[t]
        let bytes = UInt64(info.shape.dropFirst().reduce(1, *)) * UInt64(info.dtype.byteSize)
        return info.arenaOffsetPerSample..<(info.arenaOffsetPerSample + bytes)
    }
}
