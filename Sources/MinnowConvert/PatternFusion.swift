import MinnowFormat

// Recognizes the decomposed forms exporters emit for LayerNorm and GELU (torch at opset < 17/20,
// Keras via tf2onnx), and torch's NaN guard after an attention softmax, and replaces each with one
// fused op, so they run as one pass over memory and
// stay together through quantization. A pattern is only taken when none of its intermediate
// values is read elsewhere or leaves the graph.

enum PatternFusion {
    static func run(_ g: inout MGraph) {
        var dead = Set<Int>()
        for i in g.ops.indices where !dead.contains(i) {
            if let (ops, fused) = layerNorm(&g, at: i, dead) ?? gelu(g, at: i, dead) ?? geluTanh(g, at: i, dead)
                ?? softmaxNaNToZero(g, at: i, dead) {
                dead.formUnion(ops)
                // The fused op takes the place of the pattern's last op, where all of its inputs exist.
                g.ops[ops.max()!] = fused
                dead.remove(ops.max()!)
            }
        }
        g.ops = g.ops.enumerated().filter { !dead.contains($0.offset) }.map(\.element)
        g.compact()
    }

    // MARK: matching helpers

    private static func scalar(_ g: MGraph, _ t: Int) -> Float? {
        guard case let .float(v)? = g.tensors[t].data, v.count == 1 else { return nil }
        return v[0]
    }

    /// The one op reading `t`, when exactly one does and `t` is not a graph output.
    private static func soleConsumer(_ g: MGraph, _ t: Int, _ dead: Set<Int>) -> Int? {
        let c = g.consumers(of: t).filter { !dead.contains($0) }
        guard c.count == 1, !g.isGraphOutput(t) else { return nil }
        return c[0]
    }

    /// The operand of binary op `o` that is not `t` (nil unless `t` is exactly one operand).
    private static func other(_ g: MGraph, _ o: Int, _ t: Int) -> Int? {
        let ins = g.ops[o].inputs
        guard ins.count == 2, ins.filter({ $0 == t }).count == 1 else { return nil }
        return ins[0] == t ? ins[1] : ins[0]
    }

    /// A ReduceMean over exactly the last axis.
    private static func isMeanOverLastAxis(_ g: MGraph, _ o: Int) -> Bool {
        let op = g.ops[o]
        guard op.opcode == .reduce, case let .params(p, _) = op.options, p.count == 4, p[0] == 1, p[3] == 1 else { return false }
        return g.tensors[op.inputs[0]].shape.last == p[2]
    }

    /// A float constant holding one value per element of the last axis (of size d).
    private static func vector(_ g: MGraph, _ t: Int, d: Int64) -> [Float]? {
        guard case let .float(v)? = g.tensors[t].data else { return nil }
        if v.count == 1 { return Array(repeating: v[0], count: Int(d)) }
        guard Int64(v.count) == d, g.tensors[t].shape.last == d else { return nil }
        return v
    }

    // MARK: LayerNorm

    /// mean = ReduceMean(x); d = x - mean; var = ReduceMean(d * d); y = d / Sqrt(var + eps)
    /// [* gamma] [+ beta].
    private static func layerNorm(_ g: inout MGraph, at sub: Int, _ dead: Set<Int>) -> ([Int], MOp)? {
        let op = g.ops[sub]
        guard op.opcode == .sub, op.inputs.count == 2 else { return nil }
        let x = op.inputs[0], mean = op.inputs[1], d = op.outputs[0]
        guard let meanOp = g.producer(of: mean), isMeanOverLastAxis(g, meanOp), g.ops[meanOp].inputs[0] == x,
              g.consumers(of: mean) == [sub], !g.isGraphOutput(mean), let dim = g.tensors[x].shape.last else { return nil }
        let readers = g.consumers(of: d).filter { !dead.contains($0) }
        guard readers.count == 2, !g.isGraphOutput(d),
              let sq = readers.first(where: { g.ops[$0].opcode == .mul && g.ops[$0].inputs == [d, d] }),
              let div = readers.first(where: { g.ops[$0].opcode == .div && g.ops[$0].inputs[0] == d }) else { return nil }
        guard let varOp = soleConsumer(g, g.ops[sq].outputs[0], dead), isMeanOverLastAxis(g, varOp),
              let addEps = soleConsumer(g, g.ops[varOp].outputs[0], dead), g.ops[addEps].opcode == .add,
              let epsT = other(g, addEps, g.ops[varOp].outputs[0]), let eps = scalar(g, epsT), eps >= 0,
              let sqrtOp = soleConsumer(g, g.ops[addEps].outputs[0], dead), g.ops[sqrtOp].opcode == .sqrt,
              g.ops[div].inputs[1] == g.ops[sqrtOp].outputs[0], soleConsumer(g, g.ops[sqrtOp].outputs[0], dead) == div else { return nil }
        var ops = [meanOp, sub, sq, varOp, addEps, sqrtOp, div]
        var out = g.ops[div].outputs[0]
        var gamma = [Float](repeating: 1, count: Int(dim)), beta: [Float]?
        if let mul = soleConsumer(g, out, dead), g.ops[mul].opcode == .mul, let c = other(g, mul, out), let v = vector(g, c, d: dim) {
            gamma = v; ops.append(mul); out = g.ops[mul].outputs[0]
        }
        if let add = soleConsumer(g, out, dead), g.ops[add].opcode == .add, let c = other(g, add, out), let v = vector(g, c, d: dim) {
            beta = v; ops.append(add); out = g.ops[add].outputs[0]
        }
        guard g.tensors[out].shape == g.tensors[x].shape else { return nil }
        // Matched: only now add the fused op's constants (a failed match leaves the graph as it was).
        let gi = g.addConstant(name: op.name + ".gamma", shape: [dim], .float(gamma))
        let bi = beta.map { g.addConstant(name: op.name + ".beta", shape: [dim], .float($0)) } ?? -1
        let names = ops.map { g.ops[$0].name }.joined(separator: "+")
        return (ops, MOp(opcode: .layerNorm, inputs: [x, gi, bi], outputs: [out], options: .params(ints: [], floats: [eps]),
                         name: names, sourceType: "LayerNormalization (decomposed)"))
    }

    // MARK: GELU

    /// 0.5 * x * (1 + Erf(x / sqrt 2)), in the orders torch and tf2onnx write it.
    private static func gelu(_ g: MGraph, at erfOp: Int, _ dead: Set<Int>) -> ([Int], MOp)? {
        guard g.ops[erfOp].opcode == .erf, let scaleOp = g.producer(of: g.ops[erfOp].inputs[0]),
              soleConsumer(g, g.ops[erfOp].inputs[0], dead) == erfOp else { return nil }
        let s = g.ops[scaleOp]
        guard s.inputs.count == 2, let c = scalar(g, s.inputs[1]) else { return nil }
        let x = s.inputs[0]
        guard (s.opcode == .div && abs(c - 1.4142135) < 1e-4) || (s.opcode == .mul && abs(c - 0.70710678) < 1e-5) else { return nil }
        guard let (ops, out) = geluTail(g, x: x, inner: erfOp, head: [scaleOp], dead) else { return nil }
        return (ops, MOp(opcode: .gelu, inputs: [x], outputs: [out], name: ops.map { g.ops[$0].name }.joined(separator: "+"),
                         sourceType: "Gelu (decomposed)"))
    }

    /// 0.5 * x * (1 + Tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))) (Hugging Face `gelu_new`,
    /// tf2onnx's approximate GELU).
    private static func geluTanh(_ g: MGraph, at tanhOp: Int, _ dead: Set<Int>) -> ([Int], MOp)? {
        guard g.ops[tanhOp].opcode == .tanh, let scaleOp = g.producer(of: g.ops[tanhOp].inputs[0]),
              soleConsumer(g, g.ops[tanhOp].inputs[0], dead) == tanhOp, g.ops[scaleOp].opcode == .mul,
              let (v, c) = constOperand(g, scaleOp), abs(c - 0.7978846) < 1e-5,
              let addOp = g.producer(of: v), g.ops[addOp].opcode == .add, soleConsumer(g, v, dead) == scaleOp else { return nil }
        // x + 0.044715 * Pow(x, 3), either operand order.
        for x in g.ops[addOp].inputs {
            guard let cube = other(g, addOp, x), let cubeMul = g.producer(of: cube), g.ops[cubeMul].opcode == .mul,
                  soleConsumer(g, cube, dead) == addOp, let (p, k) = constOperand(g, cubeMul), abs(k - 0.044715) < 1e-6,
                  let powOp = g.producer(of: p), g.ops[powOp].opcode == .pow, g.ops[powOp].inputs.first == x,
                  g.ops[powOp].inputs.count == 2, scalar(g, g.ops[powOp].inputs[1]) == 3, soleConsumer(g, p, dead) == cubeMul,
                  let (ops, out) = geluTail(g, x: x, inner: tanhOp, head: [powOp, cubeMul, addOp, scaleOp], dead) else { continue }
            return (ops, MOp(opcode: .geluTanh, inputs: [x], outputs: [out], name: ops.map { g.ops[$0].name }.joined(separator: "+"),
                             sourceType: "Gelu tanh (decomposed)"))
        }
        return nil
    }

    // MARK: Softmax NaN guard

    /// y = Softmax(x); Where(Not(Equal(y, y)), 0, y): torch's SDPA export zeroes the NaN rows a
    /// fully masked query gives. One softmax with `nanToZero` instead of three more passes.
    private static func softmaxNaNToZero(_ g: MGraph, at s: Int, _ dead: Set<Int>) -> ([Int], MOp)? {
        guard g.ops[s].opcode == .softmax, case let .softmax(axis, false) = g.ops[s].options else { return nil }
        let y = g.ops[s].outputs[0]
        let readers = g.consumers(of: y).filter { !dead.contains($0) }
        guard readers.count == 2, !g.isGraphOutput(y),
              let eq = readers.first(where: { g.ops[$0].opcode == .equal && g.ops[$0].inputs == [y, y] }),
              let not = soleConsumer(g, g.ops[eq].outputs[0], dead), g.ops[not].opcode == .not,
              let wh = soleConsumer(g, g.ops[not].outputs[0], dead), readers.contains(wh), g.ops[wh].opcode == .where,
              g.ops[wh].inputs.count == 3, g.ops[wh].inputs[0] == g.ops[not].outputs[0], g.ops[wh].inputs[2] == y,
              case let .float(zero)? = g.tensors[g.ops[wh].inputs[1]].data, zero.allSatisfy({ $0.bitPattern == 0 }),
              g.tensors[g.ops[wh].outputs[0]].shape == g.tensors[y].shape else { return nil }
        var fused = g.ops[s]
        fused.options = .softmax(axis: axis, nanToZero: true)
        fused.outputs = g.ops[wh].outputs
        fused.name = [s, eq, not, wh].map { g.ops[$0].name }.joined(separator: "+")
        return ([s, eq, not, wh], fused)
    }

    /// Binary op `o` with one scalar float constant operand: (the other operand, the constant).
    private static func constOperand(_ g: MGraph, _ o: Int) -> (Int, Float)? {
        let ins = g.ops[o].inputs
        guard ins.count == 2 else { return nil }
        if let c = scalar(g, ins[1]) { return (ins[0], c) }
        if let c = scalar(g, ins[0]) { return (ins[1], c) }
        return nil
    }

    /// The shared end of both GELU forms: (1 + inner) * x * 0.5, in the orders exporters write it.
    /// Returns every op of the pattern and the value it computes.
    private static func geluTail(_ g: MGraph, x: Int, inner: Int, head: [Int], _ dead: Set<Int>) -> ([Int], Int)? {
        guard let addOne = soleConsumer(g, g.ops[inner].outputs[0], dead), g.ops[addOne].opcode == .add,
              let one = other(g, addOne, g.ops[inner].outputs[0]), scalar(g, one) == 1,
              let mulA = soleConsumer(g, g.ops[addOne].outputs[0], dead), g.ops[mulA].opcode == .mul,
              let partner = other(g, mulA, g.ops[addOne].outputs[0]) else { return nil }
        var ops = head + [inner, addOne, mulA]
        if partner == x {
            // (x * (1 + f)) * 0.5
            guard let half = soleConsumer(g, g.ops[mulA].outputs[0], dead), g.ops[half].opcode == .mul,
                  let h = other(g, half, g.ops[mulA].outputs[0]), scalar(g, h) == 0.5 else { return nil }
            ops.append(half)
            return (ops, g.ops[half].outputs[0])
        } else if let halfOp = g.producer(of: partner), g.ops[halfOp].opcode == .mul, g.ops[halfOp].inputs.contains(x),
                  let h = other(g, halfOp, x), scalar(g, h) == 0.5, soleConsumer(g, partner, dead) == mulA {
            // (x * 0.5) * (1 + f)
            ops.append(halfOp)
            return (ops, g.ops[mulA].outputs[0])
        }
        return nil
    }
}
