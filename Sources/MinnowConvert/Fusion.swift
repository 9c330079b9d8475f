import MinnowFormat

// Folds element-wise ops into the preceding float Dense where the math allows:
// Add/Sub of a per-channel constant -> bias; Mul/Div by a per-channel constant -> scaled weights
// (this is how BatchNormalization after a linear layer disappears); Relu/Clip/LeakyRelu -> the
// dense's fused activation; a Mul/Div by one constant after layout copies (the scaled Q and K of
// torch's attention export) -> scaled weights. (An int8 dense with a fused leaky relu keeps fp32
// output: the quantizer sees to it, since the int8 epilogue only clamps.)

enum Fusion {
    static func run(_ g: inout MGraph) {
        hoistActivationsAboveLayoutCopies(&g)
        var changed = true
        while changed {
            changed = false
            for d in g.ops.indices where g.ops[d].opcode == .dense {
                guard case var .dense(options) = g.ops[d].options else { continue }
                let y = g.ops[d].outputs[0]
                let consumers = g.consumers(of: y)
                guard consumers.count == 1, !g.isGraphOutput(y) else { continue }
                let c = consumers[0]
                let next = g.ops[c]
                let n = Int(g.tensors[g.ops[d].inputs[1]].shape[0])
                var fused = false
                switch next.opcode {
                case .add where options.activation == .none, .sub where options.activation == .none,
                     .mul where options.activation == .none, .div where options.activation == .none:
                    let other = next.inputs[0] == y ? next.inputs[1] : next.inputs[0]
                    guard next.inputs.filter({ $0 == y }).count == 1, let v = perChannel(g, other, n: n) else { break }
                    if (next.opcode == .sub || next.opcode == .div) && next.inputs[1] != other { break }
                    switch next.opcode {
                    case .add: addBias(&g, d, v.map { $0 })
                    case .sub: addBias(&g, d, v.map { -$0 })
                    case .mul: scale(&g, d, v)
                    default: scale(&g, d, v.map { 1 / $0 })
                    }
                    fused = true
                case .relu where options.activation == .none:
                    options.activation = .relu
                    fused = true
                case .clip where options.activation == .none:
                    if case let .clip(lo, hi) = next.options {
                        options.activation = .clip
                        options.actMin = lo
                        options.actMax = hi
                        fused = true
                    }
                case .leakyRelu where options.activation == .none:
                    if case let .leakyRelu(alpha) = next.options {
                        options.activation = .leakyRelu
                        options.actAlpha = alpha
                        fused = true
                    }
                default:
                    break
                }
                if fused {
                    g.ops[d].options = .dense(options)
                    g.ops[d].outputs = next.outputs
                    g.ops[d].name += "+" + next.name
                    g.ops.remove(at: c)
                    changed = true
                    break
                }
            }
        }
        g.compact()
        foldScalarScalesIntoDense(&g)
    }

    /// A Mul (or Div) by one float constant reached through layout copies from a float Dense
    /// (torch's SDPA export scales Q and K by d^-1/4 after their transposes): the scale commutes
    /// with the copies, so it goes into the Dense's weights and bias, and the Mul disappears.
    static func foldScalarScalesIntoDense(_ g: inout MGraph) {
        var removed = Set<Int>()
        for m in g.ops.indices where [.mul, .div].contains(g.ops[m].opcode) && g.ops[m].inputs.count == 2 {
            let op = g.ops[m]
            var c: Float?, t = -1
            for (i, v) in op.inputs.enumerated() {
                guard case let .float(k)? = g.tensors[v].data, k.count == 1 else { continue }
                if op.opcode == .div && i == 0 { continue }  // c / x is not a scale of x
                c = op.opcode == .div ? 1 / k[0] : k[0]
                t = op.inputs[1 - i]
            }
            guard let k = c, k.isFinite, t >= 0, !g.tensors[t].isConstant, !g.isGraphOutput(op.outputs[0]),
                  g.tensors[t].shape == g.tensors[op.outputs[0]].shape else { continue }
            // Up through single-reader layout copies to the Dense that produced the values.
            var cur = t, reader = m
            while g.consumers(of: cur) == [reader], !g.isGraphOutput(cur), let p = g.producer(of: cur),
                  [.copy, .stridedCopy].contains(g.ops[p].opcode) {
                reader = p
                cur = g.ops[p].inputs[0]
            }
            // Only without a fused activation: relu(v) * k is not relu(v * k) for k < 0.
            guard g.consumers(of: cur) == [reader], !g.isGraphOutput(cur), let d = g.producer(of: cur), g.ops[d].opcode == .dense,
                  case let .dense(o) = g.ops[d].options, o.activation == .none,
                  case .float? = g.tensors[g.ops[d].inputs[1]].data else { continue }
            let n = Int(g.tensors[g.ops[d].inputs[1]].shape[0])
            scale(&g, d, Array(repeating: k, count: n))
            // Readers of the Mul's result read its input instead.
            let y = op.outputs[0]
            for o in g.ops.indices { g.ops[o].inputs = g.ops[o].inputs.map { $0 == y ? t : $0 } }
            g.ops[d].name += "+" + op.name
            removed.insert(m)
        }
        g.ops = g.ops.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        g.compact()
    }

    /// The values of a constant that broadcasts along the last axis only ([N], [1, N], scalar).
    private static func perChannel(_ g: MGraph, _ t: Int, n: Int) -> [Float]? {
        guard case let .float(v)? = g.tensors[t].data else { return nil }
        let shape = g.tensors[t].shape
        if v.count == 1 { return Array(repeating: v[0], count: n) }
        guard v.count == n, shape.last == Int64(n), shape.dropLast().allSatisfy({ $0 == 1 }) else { return nil }
        return v
    }

    private static func bias(_ g: inout MGraph, _ d: Int) -> Int {
        if g.ops[d].inputs.count == 3 { return g.ops[d].inputs[2] }
        let n = Int(g.tensors[g.ops[d].inputs[1]].shape[0])
        let b = g.addConstant(name: g.ops[d].name + ".bias", shape: [Int64(n)], .float(Array(repeating: 0, count: n)))
        g.ops[d].inputs.append(b)
        return b
    }

    /// Constants may be shared; fused values go into fresh tensors.
    private static func addBias(_ g: inout MGraph, _ d: Int, _ v: [Float]) {
        let b = bias(&g, d)
        guard case let .float(old)? = g.tensors[b].data else { return }
        let nb = g.addConstant(name: g.tensors[b].name, shape: g.tensors[b].shape, .float(zip(old, v).map { $0 + $1 }))
        g.ops[d].inputs[2] = nb
    }

    private static func scale(_ g: inout MGraph, _ d: Int, _ s: [Float]) {
        let w = g.ops[d].inputs[1]
        guard case let .float(old)? = g.tensors[w].data else { return }
        let k = Int(g.tensors[w].shape[1])
        var scaled = old
        for c in s.indices { for i in 0..<k { scaled[c * k + i] *= s[c] } }
        g.ops[d].inputs[1] = g.addConstant(name: g.tensors[w].name, shape: g.tensors[w].shape, .float(scaled))
        if g.ops[d].inputs.count == 3, case let .float(b)? = g.tensors[g.ops[d].inputs[2]].data {
            let bt = g.ops[d].inputs[2]
            g.ops[d].inputs[2] = g.addConstant(name: g.tensors[bt].name, shape: g.tensors[bt].shape, .float(zip(b, s).map { $0 * $1 }))
        }
    }

    /// Dense -> layout copy -> Relu/Clip/LeakyRelu (a Conv's transpose back to NCHW sits between
    /// them) becomes Dense -> activation -> copy: element-wise ops commute with a layout change,
    /// and the activation then fuses into the Dense.
    static func hoistActivationsAboveLayoutCopies(_ g: inout MGraph) {
        for a in g.ops.indices where [.relu, .clip, .leakyRelu].contains(g.ops[a].opcode) {
            let t = g.ops[a].inputs[0]
            guard let c = g.producer(of: t), c < a, [.copy, .stridedCopy].contains(g.ops[c].opcode), g.consumers(of: t) == [a],
                  !g.isGraphOutput(t) else { continue }
            let d = g.ops[c].inputs[0]
            guard let p = g.producer(of: d), g.ops[p].opcode == .dense, g.consumers(of: d) == [c], !g.isGraphOutput(d) else { continue }
            // d -> act -> r -> copy -> (the activation's old output)
            let r = g.add(MTensor(name: g.tensors[d].name + ".act", dtype: g.tensors[d].dtype, shape: g.tensors[d].shape))
            var act = g.ops[a], copy = g.ops[c]
            act.inputs = [d]
            let out = act.outputs[0]
            act.outputs = [r]
            copy.inputs = [r]
            copy.outputs = [out]
            g.ops[c] = act
            g.ops[a] = copy
        }
        g.compact()
    }
}
