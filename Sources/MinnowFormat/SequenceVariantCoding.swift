import CMinnowFormat

// The per-length changes of a variable-sequence model (format 1.3) as their own small FlatBuffer
// ("MNWS", root `SequenceVariants`), stored in a compressed weight segment of the model file.

extension SequenceVariant {
    public static let identifier = "MNWS"

    public static func encode(_ variants: [SequenceVariant]) -> [UInt8] {
        let root = FBTableBuilder().add(Slot.Variants.variants, FBObject.tableVector(variants.map { v in
            FBTableBuilder()
                .add(Slot.Variant.length, v.length)
                .add(Slot.Variant.tensors, FBObject.tableVector(v.tensors.map { c in
                    FBTableBuilder().add(Slot.TensorChange.tensor, c.tensor)
                        .add(Slot.TensorChange.shape, FBObject.vector(c.shape)).add(Slot.TensorChange.buffer, c.buffer)
                        .add(Slot.TensorChange.prefix, c.prefix)
                }))
                .add(Slot.Variant.operators, FBObject.tableVector(v.operators.map { c in
                    FBTableBuilder().add(Slot.OperatorChange.op, c.op)
                        .add(Slot.OperatorChange.ints, FBObject.vector(c.ints)).add(Slot.OperatorChange.floats, FBObject.vector(c.floats))
                }))
        }))
        return FlatBufferWriter.serialize(root: root, identifier: identifier)
    }

    /// Verifies (FlatBuffers' verifier) and decodes a segment written by `encode`.
    public static func decode(_ bytes: AlignedBytes) throws(FormatError) -> [SequenceVariant] {
        let buf = UnsafeRawBufferPointer(start: bytes.pointer, count: bytes.count)
        guard bytes.count >= 8, minnow_verify_sequence_variants(buf.baseAddress!.assumingMemoryBound(to: UInt8.self), buf.count) == 1 else {
            throw .malformed("sequence variants: the buffer is not a valid SequenceVariants FlatBuffer")
        }
        var out: [SequenceVariant] = []
        for v in try FBTable.root(of: buf).tables(Slot.Variants.variants) {
            var variant = SequenceVariant(length: try v.scalar(Slot.Variant.length, default: 0), tensors: [], operators: [])
            for c in try v.tables(Slot.Variant.tensors) {
                variant.tensors.append(.init(tensor: try c.scalar(Slot.TensorChange.tensor, default: 0),
                                             shape: try c.scalars(Slot.TensorChange.shape, as: Int64.self),
                                             buffer: try c.scalar(Slot.TensorChange.buffer, default: 0),
                                             prefix: try c.bool(Slot.TensorChange.prefix, default: false)))
            }
            for c in try v.tables(Slot.Variant.operators) {
                variant.operators.append(.init(op: try c.scalar(Slot.OperatorChange.op, default: 0),
                                               ints: try c.scalars(Slot.OperatorChange.ints, as: Int64.self),
                                               floats: try c.floats(Slot.OperatorChange.floats)))
            }
            out.append(variant)
        }
        return out
    }
}
