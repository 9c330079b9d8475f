// Evaluates ONNX nodes whose inputs are all constants (initializers, Constant nodes, shapes of
// tensors whose dimensions are known). Shape arithmetic on the dynamic batch dimension is
// tracked with a sentinel value so `x.view(x.size(0), -1)` chains fold to a batch-aware shape.

enum ConstantFolder {
    /// Stands for the dynamic batch dimension inside folded int64 shape tensors.
    static let batchSentinel: Int64 = -(1 << 52)

    static let foldable: Set<String> = [
        "Identity", "Constant", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Flatten",
"Transpose", "Slice", "Add", "Sub", "Mul", "Div", "Neg", "Sqrt", "ConstantOfShape", "Range", "Relu", "Dropout",
        "Max", "Min", "Expand", "GatherElements",
        "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Not",
    ]

    static func fold(_ n: ONNXNode, _ ins: [ConstTensor?]) throws(ConvertError) -> [ConstTensor] {
        func bad(_ reason: String) -> ConvertError { .invalidNode(node: n.name, opType: n.opType, reason: reason) }
        func input(_ i: Int) throws(ConvertError) -> ConstTensor {
            guard i < ins.count, let t = ins[i] else { throw bad("missing input \(i)") }
            return t
        }
        switch n.opType {
        case "Identity", "Dropout":
            return [try input(0)]
        case "Constant":
            if case let .tensor(t)? = n.attributes["value"] { return [t] }
            if case let .float(f)? = n.attributes["value_float"] { return [ConstTensor(shape: [], floats: [f])] }
            if case let .int(i)? = n.attributes["value_int"] { return [ConstTensor(shape: [], ints: [i])] }
            if case let .floats(f)? = n.attributes["value_floats"] { return [ConstTensor(shape: [f.count], floats: f)] }
            if case let .ints(i)? = n.attributes["value_ints"] { return [ConstTensor(shape: [i.count], ints: i)] }
            throw bad("Constant without a supported value attribute")
        case "Cast":
            let x = try input(0)
            let to = n.int("to", default: 1)
            if to == 1 || to == 10 || to == 11 { return [ConstTensor(shape: x.shape, floats: x.floats)] }
            if to == 9 { return [ConstTensor(shape: x.shape, ints: x.floats.map { $0 != 0 ? 1 : 0 })] }
            return [ConstTensor(shape: x.shape, ints: x.ints)]
        case "Shape":
            var dims = try input(0).shape.map { Int64($0) }
            let start = Int(n.int("start", default: 0)), end = Int(n.int("end", default: Int64(dims.count)))
            dims = Array(dims[clampIndex(start, dims.count)..<max(clampIndex(start, dims.count), clampIndex(end, dims.count))])
            return [ConstTensor(shape: [dims.count], ints: dims)]
        case "Gather":
            let x = try input(0), idx = try input(1)
            var axis = Int(n.int("axis", default: 0))
            if axis < 0 { axis += x.shape.count }
            guard axis >= 0, axis < x.shape.count else { throw bad("axis out of range") }
            let dim = x.shape[axis]
            let indices = try idx.ints.map { (v: Int64) throws(ConvertError) -> Int in
                let i = Int(v < 0 ? v + Int64(dim) : v)
                guard i >= 0, i < dim else { throw bad("index \(v) out of range for dimension \(dim)") }
                return i
            }
            let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
            guard checkedProduct([outer, indices.count, inner], limit: foldLimit) != nil else { throw bad("folded result too large") }
            var order: [Int] = []
            for o in 0..<outer { for i in indices { for k in 0..<inner { order.append((o * dim + i) * inner + k) } } }
            let shape = Array(x.shape[..<axis]) + idx.shape + Array(x.shape[(axis + 1)...])
            return [select(x, order, shape)]
        case "Unsqueeze":
            let x = try input(0)
            let axes = try (ins.count > 1 ? input(1).ints : (n.ints("axes") ?? []))
            let rank = x.shape.count + axes.count
            var shape = x.shape
            for a in axes.map({ Int($0 < 0 ? $0 + Int64(rank) : $0) }).sorted() {
                guard a >= 0, a <= shape.count else { throw bad("axis \(a) out of range") }
                shape.insert(1, at: a)
            }
            return [reshaped(x, shape)]
        case "Squeeze":
            let x = try input(0)
            let axes = try (ins.count > 1 && ins[1] != nil ? input(1).ints : (n.ints("axes") ?? []))
            let drop = Set(axes.map { Int($0 < 0 ? $0 + Int64(x.shape.count) : $0) })
            let shape = x.shape.enumerated().filter { drop.isEmpty ? $0.element != 1 : !drop.contains($0.offset) }.map(\.element)
            return [reshaped(x, shape)]
        case "Concat":
            let parts = try ins.indices.map { (i: Int) throws(ConvertError) -> ConstTensor in try input(i) }
            guard let first = parts.first else { throw bad("no inputs") }
            var axis = Int(n.int("axis", default: 0))
            if axis < 0 { axis += first.shape.count }
            guard axis >= 0, axis < max(first.shape.count, 1) else { throw bad("axis out of range") }
            for p in parts where p.shape.count != first.shape.count
                || p.shape.enumerated().contains(where: { $0.offset != axis && $0.element != first.shape[$0.offset] }) {
                throw bad("inputs \(parts.map(\.shape)) do not concatenate along axis \(axis)")
            }
            return [concat(parts, axis: axis)]
        case "Reshape":
            let x = try input(0)
            let target = try input(1).ints
            return [reshaped(x, try resolveReshape(x.shape, target, allowZero: n.int("allowzero", default: 0) != 0, bad))]
        case "Flatten":
            let x = try input(0)
            var axis = Int(n.int("axis", default: 1))
            if axis < 0 { axis += x.shape.count }
            guard axis >= 0, axis <= x.shape.count else { throw bad("axis \(axis) out of range") }
            return [reshaped(x, [x.shape[..<axis].reduce(1, *), x.shape[axis...].reduce(1, *)])]
        case "Transpose":
            let x = try input(0)
            let perm = n.ints("perm")?.map { Int($0) } ?? Array((0..<x.shape.count).reversed())
            guard perm.sorted() == Array(0..<x.shape.count) else { throw bad("bad permutation \(perm)") }
            return [transpose(x, perm)]
        case "Slice":
            return [try slice(n, ins, bad)]
        case "Add", "Sub", "Mul", "Div":
            return [try broadcastBinary(n.opType, try input(0), try input(1), bad)]
        case "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or":
            return [try compareBinary(n.opType, try input(0), try input(1), bad)]
        case "Not":
            let x = try input(0)
            return [ConstTensor(shape: x.shape, ints: x.ints.map { $0 == 0 ? 1 : 0 })]
        case "Max", "Min":
            guard ins.count == 2 else { throw bad("\(ins.count) inputs (two are folded)") }
            return [try broadcastBinary(n.opType, try input(0), try input(1), bad)]
        case "Expand":
            // A constant broadcast to a constant shape (one over the batch is Lowering's `uniform`).
            let x = try input(0), target = try input(1).ints
            guard !target.contains(batchSentinel), target.allSatisfy({ $0 >= 1 }) else { throw bad("expands to \(target)") }
            let rank = max(x.shape.count, target.count)
            let xs = Array(repeating: 1, count: rank - x.shape.count) + x.shape
            let ts = Array(repeating: 1, count: rank - target.count) + target.map { Int($0) }
            var out: [Int] = []
            for (a, b) in zip(xs, ts) {
                guard a == b || a == 1 || b == 1 else { throw bad("shape \(x.shape) does not expand to \(target)") }
                out.append(max(a, b))
            }
            guard let total = checkedProduct(out.map { Int64($0) }, limit: foldLimit) else { throw bad("folded result \(out) too large") }
            // x * ones broadcasts exactly as Expand does (for ints and floats alike).
            let ones = x.isFloat ? ConstTensor(shape: out, floats: Array(repeating: 1, count: Int(total)))
                                 : ConstTensor(shape: out, ints: Array(repeating: 1, count: Int(total)))
            return [try broadcastBinary("Mul", x, ones, bad)]
        case "GatherElements":
            let x = try input(0), idx = try input(1)
            var axis = Int(n.int("axis", default: 0))
            if axis < 0 { axis += x.shape.count }
            guard axis >= 0, axis < x.shape.count, idx.shape.count == x.shape.count else { throw bad("axis or rank mismatch") }
            let xStrides = (0..<x.shape.count).map { x.shape[($0 + 1)...].reduce(1, *) }
            var order: [Int] = []
            var pos = [Int](repeating: 0, count: idx.shape.count)
            let values = idx.ints
            for k in 0..<idx.count {
                var v = Int(values[k])
                if v < 0 { v += x.shape[axis] }
                guard v >= 0, v < x.shape[axis] else { throw bad("index \(values[k]) out of range") }
                var flat = 0
                for d in 0..<pos.count {
                    guard d == axis || pos[d] < x.shape[d] else { throw bad("index shape \(idx.shape) exceeds data \(x.shape)") }
                    flat += (d == axis ? v : pos[d]) * xStrides[d]
                }
                order.append(flat)
                var d = pos.count - 1
                while d >= 0 { pos[d] += 1; if pos[d] < idx.shape[d] { break }; pos[d] = 0; d -= 1 }
            }
            return [select(x, order, idx.shape)]
        case "Neg":
            let x = try input(0)
            return [x.isFloat ? ConstTensor(shape: x.shape, floats: x.floats.map { -$0 }) : ConstTensor(shape: x.shape, ints: x.ints.map { -$0 })]
        case "Sqrt":
            let x = try input(0)
            return [ConstTensor(shape: x.shape, floats: x.floats.map { $0.squareRoot() })]
        case "Relu":
            let x = try input(0)
            return [ConstTensor(shape: x.shape, floats: x.floats.map { max($0, 0) })]
        case "ConstantOfShape":
            let dims = try input(0).ints
            guard dims.allSatisfy({ $0 >= 0 }) else { throw bad("shape \(dims) depends on the batch dimension") }
            guard checkedProduct(dims, limit: foldLimit) != nil else { throw bad("shape \(dims) is too large to fold") }
            let shape = dims.map { Int($0) }
            var value = ConstTensor(shape: [1], floats: [0])
            if case let .tensor(t)? = n.attributes["value"] { value = t }
            let count = shape.reduce(1, *)
            return [value.isFloat ? ConstTensor(shape: shape, floats: Array(repeating: value.floats.first ?? 0, count: count))
                                  : ConstTensor(shape: shape, ints: Array(repeating: value.ints.first ?? 0, count: count))]
        case "Range":
            let start = try input(0), limit = try input(1), delta = try input(2)
            if start.isFloat {
                let s = start.floats[0], l = limit.floats[0], d = delta.floats[0]
                guard d != 0 else { throw bad("zero delta") }
                let steps = ((l - s) / d).rounded(.up)
                guard steps.isFinite, steps <= Float(foldLimit) else { throw bad("range too long to fold") }
                let count = max(Int(steps), 0)
                return [ConstTensor(shape: [count], floats: (0..<count).map { s + Float($0) * d })]
            }
            let s = start.ints[0], l = limit.ints[0], d = delta.ints[0]
            guard d != 0 else { throw bad("zero delta") }
            let steps = (Double(l) - Double(s)) / Double(d)
            guard steps.isFinite, steps.rounded(.up) <= Double(foldLimit) else { throw bad("range too long to fold") }
            let count = max(Int(steps.rounded(.up)), 0)
            return [ConstTensor(shape: [count], ints: (0..<count).map { s + Int64($0) * d })]
        default:
            throw .unsupportedOp(node: n.name, opType: n.opType, opset: 0)
        }
    }

    /// Largest constant the folder will materialize (elements).
    static let foldLimit = 1 << 28

    static func clampIndex(_ i: Int, _ n: Int) -> Int { i < 0 ? max(i + n, 0) : min(i, n) }

    static func reshaped(_ x: ConstTensor, _ shape: [Int]) -> ConstTensor {
        var y = x
        y.shape = shape
        return y
    }

    static func select(_ x: ConstTensor, _ order: [Int], _ shape: [Int]) -> ConstTensor {
        switch x.values {
        case let .float(v): return ConstTensor(shape: shape, floats: order.map { v[$0] })
        case let .int(v): return ConstTensor(shape: shape, ints: order.map { v[$0] })
        }
    }

    /// ONNX Reshape semantics: 0 copies the input dimension (unless allowzero), -1 is inferred.
    static func resolveReshape(_ input: [Int], _ target: [Int64], allowZero: Bool,
                               _ bad: (String) -> ConvertError) throws(ConvertError) -> [Int] {
        var out = [Int]()
        var infer: Int?
        for (i, t) in target.enumerated() {
            if t == -1 {
                guard infer == nil else { throw bad("more than one -1 in the target shape") }
                infer = i
                out.append(1)
            } else if t == 0 && !allowZero {
                guard i < input.count else { throw bad("0 at position \(i) copies a dimension the input lacks") }
                out.append(input[i])
            } else {
                guard t >= 0 else { throw bad("negative dimension \(t) in the target shape") }
                out.append(Int(t))
            }
        }
        guard let total = checkedProduct(input, limit: Int.max), let known = checkedProduct(out, limit: Int.max) else {
            throw bad("cannot reshape \(input) to \(target): sizes overflow")
        }
        if let infer {
            guard known > 0, total % known == 0 else { throw bad("cannot reshape \(input) to \(target)") }
            out[infer] = total / known
        }
        guard checkedProduct(out, limit: Int.max) == total else { throw bad("cannot reshape \(input) (\(total) elements) to \(target)") }
        return out
    }

    static func transpose(_ x: ConstTensor, _ perm: [Int]) -> ConstTensor {
        let shape = perm.map { x.shape[$0] }
        let rank = shape.count
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * x.shape[i + 1] }
        var order = [Int]()
        order.reserveCapacity(x.count)
        var idx = [Int](repeating: 0, count: rank)
        for _ in 0..<x.count {
            var src = 0
            for d in 0..<rank { src += idx[d] * inStrides[perm[d]] }
            order.append(src)
            var d = rank - 1
            while d >= 0 { idx[d] += 1; if idx[d] < shape[d] { break }; idx[d] = 0; d -= 1 }
        }
        return select(x, order, shape)
    }

    static func concat(_ parts: [ConstTensor], axis: Int) -> ConstTensor {
        var shape = parts[0].shape
        if shape.isEmpty { shape = [1] }
        shape[axis] = parts.map { $0.shape.isEmpty ? 1 : $0.shape[axis] }.reduce(0, +)
        let outer = shape[..<axis].reduce(1, *)
        let allFloat = parts.allSatisfy(\.isFloat)
        var f = [Float](), i = [Int64]()
        for o in 0..<outer {
            for p in parts {
                let chunk = p.shape.isEmpty ? 1 : p.shape[axis...].reduce(1, *)
                if allFloat { f += p.floats[(o * chunk)..<((o + 1) * chunk)] } else { i += p.ints[(o * chunk)..<((o + 1) * chunk)] }
            }
        }
        return allFloat ? ConstTensor(shape: shape, floats: f) : ConstTensor(shape: shape, ints: i)
    }

    static func slice(_ n: ONNXNode, _ ins: [ConstTensor?], _ bad: (String) -> ConvertError) throws(ConvertError) -> ConstTensor {
        guard let x = ins.first ?? nil, ins.count >= 3, let starts = ins[1]?.ints, let ends = ins[2]?.ints else {
            throw bad("Slice needs constant data, starts and ends")
        }
        let rank = x.shape.count
        let axes = (ins.count > 3 ? ins[3]?.ints : nil) ?? (0..<Int64(starts.count)).map { $0 }
        let steps = (ins.count > 4 ? ins[4]?.ints : nil) ?? Array(repeating: 1, count: starts.count)
        var ranges = x.shape.map { (start: 0, step: 1, count: $0) }
        for (k, a64) in axes.enumerated() {
            let a = Int(a64 < 0 ? a64 + Int64(rank) : a64)
            guard a >= 0, a < rank, k < ends.count, k < steps.count, steps[k] != 0 else { throw bad("bad slice axis or step") }
            let dim = Int64(x.shape[a]), step = steps[k]
            func clampS(_ v: Int64, _ lo: Int64, _ hi: Int64) -> Int64 { min(max(v < 0 ? v + dim : v, lo), hi) }
            let s = step > 0 ? clampS(starts[k], 0, dim) : clampS(starts[k], 0, dim - 1)
            let e = step > 0 ? clampS(ends[k], 0, dim) : clampS(ends[k], -1, dim - 1)
            let count = step > 0 ? max(0, (e - s + step - 1) / step) : max(0, (s - e - step - 1) / -step)
            ranges[a] = (Int(s), Int(step), Int(count))
        }
        var strides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * x.shape[i + 1] }
        let shape = ranges.map(\.count)
        var order = [Int]()
        var idx = [Int](repeating: 0, count: rank)
        let total = shape.reduce(1, *)
        for _ in 0..<total {
            var src = 0
            for d in 0..<rank { src += (ranges[d].start + idx[d] * ranges[d].step) * strides[d] }
            order.append(src)
            var d = rank - 1
            while d >= 0 { idx[d] += 1; if idx[d] < shape[d] { break }; idx[d] = 0; d -= 1 }
        }
        return select(x, order, shape)
    }

    /// The numpy broadcast shape of a and b, and for each result element its source positions.
    static func broadcastIndices(_ a: ConstTensor, _ b: ConstTensor,
                                 _ bad: (String) -> ConvertError) throws(ConvertError) -> ([Int], [Int], [Int]) {
        let rank = max(a.shape.count, b.shape.count)
        let sa = Array(repeating: 1, count: rank - a.shape.count) + a.shape
        let sb = Array(repeating: 1, count: rank - b.shape.count) + b.shape
        var shape = [Int]()
        for i in 0..<rank {
            guard sa[i] == sb[i] || sa[i] == 1 || sb[i] == 1 else { throw bad("shapes \(a.shape) and \(b.shape) do not broadcast") }
            shape.append(sa[i] == 1 ? sb[i] : sa[i])
        }
        func strides(_ s: [Int]) -> [Int] {
            var st = [Int](repeating: 0, count: rank)
            var acc = 1
            for i in stride(from: rank - 1, through: 0, by: -1) { st[i] = s[i] == 1 ? 0 : acc; acc *= s[i] }
            return st
        }
        let stA = strides(sa), stB = strides(sb)
        guard let total = checkedProduct(shape, limit: foldLimit) else { throw bad("folded result \(shape) too large") }
        var ia = [Int](), ib = [Int]()
        ia.reserveCapacity(total); ib.reserveCapacity(total)
        var idx = [Int](repeating: 0, count: rank)
        for _ in 0..<total {
            var pa = 0, pb = 0
            for d in 0..<rank { pa += idx[d] * stA[d]; pb += idx[d] * stB[d] }
            ia.append(pa); ib.append(pb)
            var d = rank - 1
            while d >= 0 { idx[d] += 1; if idx[d] < shape[d] { break }; idx[d] = 0; d -= 1 }
        }
        return (shape, ia, ib)
    }

    /// Comparisons and logic on constants: 0/1 integers (ONNX bool).
    static func compareBinary(_ op: String, _ a: ConstTensor, _ b: ConstTensor,
                              _ bad: (String) -> ConvertError) throws(ConvertError) -> ConstTensor {
        let (shape, ia, ib) = try broadcastIndices(a, b, bad)
        let f: (Double, Double) -> Bool
        switch op {
        case "Equal": f = { $0 == $1 }
        case "Less": f = { $0 < $1 }
        case "LessOrEqual": f = { $0 <= $1 }
        case "Greater": f = { $0 > $1 }
        case "GreaterOrEqual": f = { $0 >= $1 }
        case "And": f = { $0 != 0 && $1 != 0 }
        default: f = { $0 != 0 || $1 != 0 }
        }
        // Doubles hold every int64 shape value exactly enough to compare (and floats exactly).
        let x = a.isFloat ? a.floats.map(Double.init) : a.ints.map(Double.init)
        let y = b.isFloat ? b.floats.map(Double.init) : b.ints.map(Double.init)
        return ConstTensor(shape: shape, ints: ia.indices.map { f(x[ia[$0]], y[ib[$0]]) ? 1 : 0 })
    }

    /// numpy-broadcast binary arithmetic on constants (float if either side is float).
    static func broadcastBinary(_ op: String, _ a: ConstTensor, _ b: ConstTensor,
                                _ bad: (String) -> ConvertError) throws(ConvertError) -> ConstTensor {
        let (shape, ia, ib) = try broadcastIndices(a, b, bad)
        let total = ia.count
        if a.isFloat || b.isFloat {
            let x = a.floats, y = b.floats
            let f: (Float, Float) -> Float
            switch op {
            case "Add": f = { $0 + $1 }
            case "Sub": f = { $0 - $1 }
            case "Mul": f = { $0 * $1 }
            case "Max": f = { Swift.max($0, $1) }
            case "Min": f = { Swift.min($0, $1) }
            default: f = { $0 / $1 }
            }
            return ConstTensor(shape: shape, floats: (0..<total).map { f(x[ia[$0]], y[ib[$0]]) })
        }
        let x = a.ints, y = b.ints
        // Arithmetic on the batch sentinel would produce a meaningless shape value.
        if x.contains(batchSentinel) || y.contains(batchSentinel) {
            guard op == "Mul", (x + y).allSatisfy({ $0 == batchSentinel || $0 == 1 }) else {
                throw bad("shape arithmetic on the dynamic batch dimension is not supported")
            }
        }
        return ConstTensor(shape: shape, ints: try (0..<total).map { (i: Int) throws(ConvertError) -> Int64 in
            let p = x[ia[i]], q = y[ib[i]]
            switch op {
            case "Add": return p &+ q
            case "Sub": return p &- q
            case "Mul": return p == batchSentinel || q == batchSentinel ? batchSentinel : p &* q
            case "Max": return Swift.max(p, q)
            case "Min": return Swift.min(p, q)
            default:
                guard q != 0 else { throw bad("integer division by zero") }
                return p / q
            }
        })
    }
}
