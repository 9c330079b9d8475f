// Maps ModelDescription to and from FlatBuffer tables. Slot numbers follow the field order in
// formats/minnow.fbs (a union takes two slots: its type, then its value).

enum Slot {
    enum Quant { static let scales = 0, zeroPoints = 1, axis = 2, buffer = 3, rowEncoding = 4 }
    enum Tensor { static let name = 0, dtype = 1, shape = 2, quant = 3, buffer = 4, arenaOffset = 5 }
    enum Buffer { static let offset = 0, storedSize = 1, size = 2, codec = 3, shuffle = 4, checksum = 5 }
    enum Dense { static let activation = 0, actMin = 1, actMax = 2, actAlpha = 3, dynamicQuant = 4 }
    enum Op { static let opcode = 0, inputs = 1, outputs = 2, optionsType = 3, options = 4, name = 5 }
    enum KV { static let key = 0, value = 1 }
    enum Plan { static let arenaBytes = 0, alignment = 1, maxBatch = 2 }
    enum Golden { static let count = 0, inputs = 1, outputs = 2, tolerance = 3 }
    enum Model {
        static let formatMajor = 0, formatMinor = 1, producer = 2, sourceHash = 3, metadata = 4, tensors = 5,
                   operators = 6, inputs = 7, outputs = 8, buffers = 9, memoryPlan = 10, segmentBase = 11, golden = 12,
                   sequenceLength = 13, sequenceVariants = 14
    }
    enum Variant { static let length = 0, tensors = 1, operators = 2 }
    enum Variants { static let variants = 0 }
    enum TensorChange { static let tensor = 0, shape = 1, buffer = 2, prefix = 3 }
    enum OperatorChange { static let op = 0, ints = 1, floats = 2 }
}

/// Union tags of `OpOptions` in the schema.
enum OptionsTag: UInt8 {
    case none = 0, dense, leakyRelu, clip, softmax, concat, params
}

enum ModelCoding {
    static func encode(_ m: ModelDescription) -> FBTableBuilder {
        let root = FBTableBuilder()
        root.add(Slot.Model.formatMajor, m.formatMajor)
        root.add(Slot.Model.formatMinor, m.formatMinor)
        root.add(Slot.Model.producer, string: m.producer)
        root.add(Slot.Model.sourceHash, string: m.sourceHash)
        root.add(Slot.Model.metadata, FBObject.tableVector(m.metadata.map { kv in
            FBTableBuilder().add(Slot.KV.key, string: kv.key).add(Slot.KV.value, string: kv.value)
        }))
        root.add(Slot.Model.tensors, FBObject.tableVector(m.tensors.map(encodeTensor)))
        root.add(Slot.Model.operators, FBObject.tableVector(m.operators.map(encodeOperator)))
        root.add(Slot.Model.inputs, FBObject.vector(m.inputs))
        root.add(Slot.Model.outputs, FBObject.vector(m.outputs))
        root.add(Slot.Model.buffers, FBObject.tableVector(m.buffers.map { b in
            FBTableBuilder()
                .add(Slot.Buffer.offset, b.offset).add(Slot.Buffer.storedSize, b.storedSize)
                .add(Slot.Buffer.size, b.size).add(Slot.Buffer.codec, b.codec.rawValue)
                .add(Slot.Buffer.shuffle, b.shuffle).add(Slot.Buffer.checksum, b.checksum)
        }))
        root.add(Slot.Model.memoryPlan, FBObject.table(FBTableBuilder()
            .add(Slot.Plan.arenaBytes, m.memoryPlan.arenaBytesPerSample)
            .add(Slot.Plan.alignment, m.memoryPlan.alignment)
            .add(Slot.Plan.maxBatch, m.memoryPlan.maxBatch)))
        root.add(Slot.Model.segmentBase, m.segmentBase)
        if let g = m.golden {
            root.add(Slot.Model.golden, FBObject.table(FBTableBuilder()
                .add(Slot.Golden.count, g.count).add(Slot.Golden.inputs, FBObject.vector(g.inputs))
                .add(Slot.Golden.outputs, FBObject.vector(g.outputs)).add(Slot.Golden.tolerance, g.tolerance)))
        }
        if m.sequenceLength != 0 || m.sequenceVariants != 0 {
            root.add(Slot.Model.sequenceLength, m.sequenceLength)
            root.add(Slot.Model.sequenceVariants, m.sequenceVariants)
        }
        return root
    }

    private static func encodeTensor(_ t: TensorInfo) -> FBTableBuilder {
        let b = FBTableBuilder()
            .add(Slot.Tensor.name, string: t.name)
            .add(Slot.Tensor.dtype, t.dtype.rawValue)
            .add(Slot.Tensor.shape, FBObject.vector(t.shape))
            .add(Slot.Tensor.buffer, t.buffer)
            .add(Slot.Tensor.arenaOffset, t.arenaOffsetPerSample)
        if let q = t.quant {
            b.add(Slot.Tensor.quant, FBObject.table(FBTableBuilder()
                .add(Slot.Quant.scales, FBObject.vector(q.scales))
                .add(Slot.Quant.zeroPoints, FBObject.vector(q.zeroPoints))
                .add(Slot.Quant.axis, q.axis).add(Slot.Quant.buffer, q.buffer).add(Slot.Quant.rowEncoding, q.rowEncoding.rawValue)))
        }
        return b
    }

    private static func encodeOperator(_ op: OperatorInfo) -> FBTableBuilder {
        let b = FBTableBuilder()
            .add(Slot.Op.opcode, op.opcode.rawValue)
            .add(Slot.Op.inputs, FBObject.vector(op.inputs))
            .add(Slot.Op.outputs, FBObject.vector(op.outputs))
            .add(Slot.Op.name, string: op.name)
        let (tag, table): (OptionsTag, FBTableBuilder?) = {
            switch op.options {
            case .none: return (.none, nil)
            case let .dense(d):
                return (.dense, FBTableBuilder()
                    .add(Slot.Dense.activation, d.activation.rawValue).add(Slot.Dense.actMin, d.actMin)
                    .add(Slot.Dense.actMax, d.actMax).add(Slot.Dense.actAlpha, d.actAlpha)
                    .add(Slot.Dense.dynamicQuant, d.dynamicQuant))
            case let .leakyRelu(alpha): return (.leakyRelu, FBTableBuilder().add(0, alpha))
            case let .clip(lo, hi): return (.clip, FBTableBuilder().add(0, lo).add(1, hi))
            case let .softmax(axis, nanToZero):
                let t = FBTableBuilder().add(0, axis)
                return (.softmax, nanToZero ? t.add(1, true) : t)
            case let .concat(axis): return (.concat, FBTableBuilder().add(0, axis))
            case let .params(ints, floats):
                return (.params, FBTableBuilder().add(0, FBObject.vector(ints)).add(1, FBObject.vector(floats)))
            }
        }()
        b.add(Slot.Op.optionsType, tag.rawValue)
        if let table { b.add(Slot.Op.options, FBObject.table(table)) }
        return b
    }

    // MARK: decoding

    static func decode(_ root: FBTable) throws(FormatError) -> ModelDescription {
        var m = ModelDescription()
        m.formatMajor = try root.scalar(Slot.Model.formatMajor, default: 0)
        m.formatMinor = try root.scalar(Slot.Model.formatMinor, default: 0)
        guard m.formatMajor == ModelDescription.formatMajor else {
            throw .unsupportedVersion(found: "\(m.formatMajor).\(m.formatMinor)",
                                      supported: "\(ModelDescription.formatMajor).x")
        }
        m.producer = try root.string(Slot.Model.producer) ?? ""
        m.sourceHash = try root.string(Slot.Model.sourceHash) ?? ""
        for kv in try root.tables(Slot.Model.metadata) {
            m.metadata.append(KeyValue(try kv.string(Slot.KV.key) ?? "", try kv.string(Slot.KV.value) ?? ""))
        }
        for (i, t) in try root.tables(Slot.Model.tensors).enumerated() {
            m.tensors.append(try decodeTensor(t, index: i))
        }
        for (i, o) in try root.tables(Slot.Model.operators).enumerated() {
            m.operators.append(try decodeOperator(o, index: i))
        }
        m.inputs = try root.scalars(Slot.Model.inputs, as: Int32.self)
        m.outputs = try root.scalars(Slot.Model.outputs, as: Int32.self)
        for (i, b) in try root.tables(Slot.Model.buffers).enumerated() {
            let codecRaw: Int8 = try b.scalar(Slot.Buffer.codec, default: 0)
            guard let codec = Codec(rawValue: codecRaw) else { throw .malformed("buffer \(i + 1): unknown codec \(codecRaw)") }
            m.buffers.append(BufferInfo(
                offset: try b.scalar(Slot.Buffer.offset, default: 0),
                storedSize: try b.scalar(Slot.Buffer.storedSize, default: 0),
                size: try b.scalar(Slot.Buffer.size, default: 0),
                codec: codec,
                shuffle: try b.scalar(Slot.Buffer.shuffle, default: 0),
                checksum: try b.scalar(Slot.Buffer.checksum, default: 0)))
        }
        if let plan = try root.table(Slot.Model.memoryPlan) {
            m.memoryPlan = MemoryPlanInfo(
                arenaBytesPerSample: try plan.scalar(Slot.Plan.arenaBytes, default: 0),
                alignment: try plan.scalar(Slot.Plan.alignment, default: 64),
                maxBatch: try plan.scalar(Slot.Plan.maxBatch, default: 1))
        } else {
            m.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 0, maxBatch: 1)
        }
        m.segmentBase = try root.scalar(Slot.Model.segmentBase, default: 0)
        if let g = try root.table(Slot.Model.golden) {
            m.golden = GoldenSamples(count: try g.scalar(Slot.Golden.count, default: 0),
                                     inputs: try g.scalars(Slot.Golden.inputs, as: UInt32.self),
                                     outputs: try g.scalars(Slot.Golden.outputs, as: UInt32.self),
                                     tolerance: try g.float(Slot.Golden.tolerance, default: 0))
        }
        m.sequenceLength = try root.scalar(Slot.Model.sequenceLength, default: 0)
        m.sequenceVariants = try root.scalar(Slot.Model.sequenceVariants, default: 0)
        return m
    }

    private static func decodeTensor(_ t: FBTable, index: Int) throws(FormatError) -> TensorInfo {
        let raw: Int8 = try t.scalar(Slot.Tensor.dtype, default: 0)
        guard let dtype = DType(rawValue: raw) else { throw .malformed("tensor \(index): unknown dtype \(raw)") }
        var quant: QuantParams?
        if let q = try t.table(Slot.Tensor.quant) {
            quant = QuantParams(scales: try q.floats(Slot.Quant.scales),
                                zeroPoints: try q.scalars(Slot.Quant.zeroPoints, as: Int32.self),
                                axis: try q.scalar(Slot.Quant.axis, default: -1),
                                buffer: try q.scalar(Slot.Quant.buffer, default: 0))
            let encoding: UInt8 = try q.scalar(Slot.Quant.rowEncoding, default: 0)
            guard let e = RowEncoding(rawValue: encoding) else { throw .malformed("QuantParams.row_encoding \(encoding) is not 0, 1 or 2") }
            quant!.rowEncoding = e
        }
        return TensorInfo(name: try t.string(Slot.Tensor.name) ?? "", dtype: dtype,
                          shape: try t.scalars(Slot.Tensor.shape, as: Int64.self), quant: quant,
                          buffer: try t.scalar(Slot.Tensor.buffer, default: 0),
                          arenaOffsetPerSample: try t.scalar(Slot.Tensor.arenaOffset, default: 0))
    }

    private static func decodeOperator(_ o: FBTable, index: Int) throws(FormatError) -> OperatorInfo {
        let raw: UInt16 = try o.scalar(Slot.Op.opcode, default: 0)
        guard let opcode = OpCode(rawValue: raw) else { throw .malformed("operator \(index): unknown opcode \(raw)") }
        let tagRaw: UInt8 = try o.scalar(Slot.Op.optionsType, default: 0)
        guard let tag = OptionsTag(rawValue: tagRaw) else {
            throw .malformed("operator \(index): unknown options type \(tagRaw)")
        }
        let t = try o.table(Slot.Op.options)
        if tag != .none && t == nil { throw .malformed("operator \(index): options of type \(tagRaw) missing") }
        let options: OpOptions
        switch tag {
        case .none: options = .none
        case .dense:
            let actRaw: Int8 = try t!.scalar(Slot.Dense.activation, default: 0)
            guard let act = Activation(rawValue: actRaw) else {
                throw .malformed("operator \(index): unknown activation \(actRaw)")
            }
            options = .dense(DenseOptions(activation: act,
                                          actMin: try t!.float(Slot.Dense.actMin, default: 0),
                                          actMax: try t!.float(Slot.Dense.actMax, default: 0),
                                          actAlpha: try t!.float(Slot.Dense.actAlpha, default: 0),
                                          dynamicQuant: try t!.bool(Slot.Dense.dynamicQuant, default: false)))
        case .leakyRelu: options = .leakyRelu(alpha: try t!.float(0, default: 0.01))
        case .clip: options = .clip(min: try t!.float(0, default: -Float.greatestFiniteMagnitude),
                                    max: try t!.float(1, default: Float.greatestFiniteMagnitude))
        case .softmax: options = .softmax(axis: try t!.scalar(0, default: -1), nanToZero: try t!.bool(1, default: false))
        case .concat: options = .concat(axis: try t!.scalar(0, default: 1))
        case .params: options = .params(ints: try t!.scalars(0, as: Int64.self), floats: try t!.floats(1))
        }
        return OperatorInfo(opcode: opcode, inputs: try o.scalars(Slot.Op.inputs, as: Int32.self),
                            outputs: try o.scalars(Slot.Op.outputs, as: Int32.self), options: options,
                            name: try o.string(Slot.Op.name) ?? "")
    }
}
