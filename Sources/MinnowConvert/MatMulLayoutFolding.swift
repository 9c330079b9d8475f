import MinnowFormat

// Attention's head split and merge as strides of the products (format 1.8). An export slices Q,
// K and V out of one projection and transposes each to [batch, heads, L, d]; after the products
// it transposes back to [batch, L, heads * d]. Lowered, those are strided copies on either side of
// the batched matmuls: 13 of BST's 66 operators, 12% of its time at batch 64. Every one is an
// affine map of element positions, and so is a product's operand (element (c, r, e) of product c
// at offset + c * product + r * row + e * column), so a copy that only a product reads composes
// into the product's read, and a copy that is the only reader of a product's output (a
// permutation of it) composes into the product's write. The composition is checked numerically,
// element by element, against an affine fit, so any layout the fit does not express exactly
// stays a copy. Products compute the same sums in the same order either way: outputs are the same
// bits.

enum MatMulLayoutFolding {
    /// Where a product operand's elements are: (c, r, e) at offset + c * product + r * row + e * col.
    struct Layout: Equatable {
        var tensor: Int
        var offset: Int64, product: Int64, row: Int64, col: Int64
    }

    /// A matmul's parameters, as written from 1.8 (the 6- and 8-value forms read into it).
    struct Params {
        var count: Int64, m: Int64, k: Int64, n: Int64
        var a: Layout, b: Layout, y: Layout  // A over (c, m, k), B over (c, k, n), Y over (c, m, n)

        init?(_ op: MOp) {
            guard op.opcode == .matmul, case let .params(p, _) = op.options, [6, 8, 14].contains(p.count) else { return nil }
            (count, m, k, n) = (p[0], p[1], p[2], p[3])
            let trans = p.count >= 8 && p[6] != 0, ldb = p.count >= 8 ? p[7] : n
            let wide = p.count == 14
            a = Layout(tensor: op.inputs[0], offset: wide ? p[9] : 0, product: p[4], row: wide ? p[8] : k, col: 1)
            b = Layout(tensor: op.inputs[1], offset: wide ? p[10] : 0, product: p[5], row: trans ? 1 : ldb, col: trans ? ldb : 1)
            y = Layout(tensor: op.outputs[0], offset: wide ? p[13] : 0, product: wide ? p[11] : m * n, row: wide ? p[12] : n, col: 1)
        }

        /// The file's parameters: the shortest form that says it.
        var ints: [Int64]? {
            // B is K rows of N (column stride 1) or N rows of K (row stride 1); a unit axis may be either.
            let trans: Bool
            if b.col == 1 || n == 1 { trans = false } else if b.row == 1 || k == 1 { trans = true } else { return nil }
            let ldb = trans ? (n == 1 ? k : b.col) : (k == 1 ? n : b.row)
            guard a.col == 1 || k == 1, y.col == 1 || n == 1, ldb >= (trans ? k : n) else { return nil }
            let lda = m == 1 ? k : a.row, ldc = m == 1 ? n : y.row
            let base = [count, m, k, n, count == 1 ? 0 : a.product, count == 1 ? 0 : b.product]
            let dense = a.offset == 0 && lda == k && b.offset == 0 && y.offset == 0 && ldc == n && (count == 1 || y.product == m * n)
            if dense && !trans && ldb == n { return base }
            if dense { return base + [trans ? 1 : 0, ldb] }
            let wide = base + [trans ? 1 : 0, ldb, lda, a.offset, b.offset, count == 1 ? m * n : y.product, ldc, y.offset]
            return wide.allSatisfy { $0 >= 0 && $0 <= Int64(Int32.max) } ? wide : nil
        }
    }

    /// Largest product operand checked element by element (the fit is exact or not applied).
    static let maxCheckedElements: Int64 = 1 << 22

    static func run(_ g: inout MGraph) {
        var removed = Set<Int>()
        for i in g.ops.indices where g.ops[i].opcode == .matmul {
            guard var p = Params(g.ops[i]) else { continue }
            let before = removed.count
            var changed = true
            while changed {
                changed = false
                for side in 0..<2 {
                    let current = side == 0 ? p.a : p.b
                    let extents = side == 0 ? (p.count, p.m, p.k) : (p.count, p.k, p.n)
                    let other = side == 0 ? p.b.tensor : p.a.tensor
                    guard current.tensor != other,
                          let (q, folded) = foldRead(g, current, extents, reader: i, removed: removed) else { continue }
                    var trial = p
                    if side == 0 { trial.a = folded } else { trial.b = folded }
                    guard trial.ints != nil else { continue }
                    p = trial
                    removed.insert(q)
                    changed = true
                }
                if let (q, folded) = foldWrite(g, p.y, (p.count, p.m, p.n), writer: i, removed: removed) {
                    var trial = p
                    trial.y = folded
                    if trial.ints != nil {
                        p = trial
                        removed.insert(q)
                        changed = true
                    }
                }
            }
            guard removed.count > before else { continue }  // unchanged: keep its parameters as lowered
            g.ops[i].inputs = [p.a.tensor, p.b.tensor]
            g.ops[i].outputs = [p.y.tensor]
            g.ops[i].options = .params(ints: p.ints!, floats: [])
        }
        g.ops = g.ops.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// The op that copies or reshapes into `t` (batched float, read only by `reader`), folded
    /// into the layout that reads t: the copy's index and the layout on its input.
    private static func foldRead(_ g: MGraph, _ l: Layout, _ e: (Int64, Int64, Int64), reader: Int,
                                 removed: Set<Int>) -> (Int, Layout)? {
        guard let q = g.producer(of: l.tensor), !removed.contains(q), let map = positions(g, g.ops[q]),
              onlyReader(g, l.tensor, reader, removed: removed) else { return nil }
        let x = g.ops[q].inputs[0]
        guard let fit = fit(e, { c, r, col in map(l.offset + c * l.product + r * l.row + col * l.col) }) else { return nil }
        return (q, Layout(tensor: x, offset: fit.offset, product: fit.product, row: fit.row, col: fit.col))
    }

    /// The copy that is the only reader of `l.tensor` (the product's output), folded into the
    /// product's write when it is a permutation of the elements: the copy's index and the
    /// layout on its output.
    private static func foldWrite(_ g: MGraph, _ l: Layout, _ e: (Int64, Int64, Int64), writer: Int,
                                  removed: Set<Int>) -> (Int, Layout)? {
        guard !g.isGraphOutput(l.tensor) else { return nil }
        let readers = g.consumers(of: l.tensor).filter { !removed.contains($0) && $0 != writer }
        guard readers.count == 1, let map = positions(g, g.ops[readers[0]]), g.ops[readers[0]].inputs == [l.tensor] else { return nil }
        let q = readers[0], z = g.ops[q].outputs[0]
        let size = elements(g, l.tensor)
        guard size == elements(g, z), size <= maxCheckedElements else { return nil }
        // Where each element of the input lands in the output: the copy must place each once.
        var inverse = [Int64](repeating: -1, count: Int(size))
        for j in 0..<size {
            let s = map(j)
            guard s >= 0, s < size, inverse[Int(s)] < 0 else { return nil }
            inverse[Int(s)] = j
        }
        guard let fit = fit(e, { c, r, col in inverse[Int(l.offset + c * l.product + r * l.row + col * l.col)] }) else { return nil }
        return (q, Layout(tensor: z, offset: fit.offset, product: fit.product, row: fit.row, col: fit.col))
    }

    /// Whether no live op but `reader` (whose operand it is, once; its inputs are rewritten only
    /// at the end) reads `t`, and t is not a graph input or output.
    private static func onlyReader(_ g: MGraph, _ t: Int, _ reader: Int, removed: Set<Int>) -> Bool {
        !g.isGraphOutput(t) && !g.inputs.contains(t) && g.consumers(of: t).allSatisfy { removed.contains($0) || $0 == reader }
    }

    private static func elements(_ g: MGraph, _ t: Int) -> Int64 { g.tensors[t].shape.dropFirst().reduce(1, *) }

    /// For a copy (a whole sample in order) or a strided copy of a batched float activation: the
    /// input element (per sample) that output element j comes from.
    private static func positions(_ g: MGraph, _ op: MOp) -> ((Int64) -> Int64)? {
        guard op.inputs.count == 1, op.outputs.count == 1, op.inputs[0] >= 0 else { return nil }
        let x = g.tensors[op.inputs[0]], y = g.tensors[op.outputs[0]]
        guard !x.isConstant, x.dtype == .float32, y.dtype == .float32, x.shape.first == -1, y.shape.first == -1 else { return nil }
        switch op.opcode {
        case .copy:
            guard elements(g, op.inputs[0]) == elements(g, op.outputs[0]) else { return nil }
            return { $0 }
        case .stridedCopy:
            guard case let .params(p, _) = op.options, let r = p.first, r >= 1, p.count == 2 + 2 * Int(r) else { return nil }
            let dims = Array(p[1...Int(r)]), strides = Array(p[(1 + Int(r))...(2 * Int(r))]), offset = p[1 + 2 * Int(r)]
            return { j in
                var rest = j, at = offset
                for axis in stride(from: dims.count - 1, through: 0, by: -1) {
                    at += (rest % dims[axis]) * strides[axis]
                    rest /= dims[axis]
                }
                return at
            }
        default:
            return nil
        }
    }

    /// The affine layout (offset + c * product + r * row + e * col) that `f` is over the extents,
    /// checked at every element; nil where f is not affine or steps backwards. A unit axis gets
    /// stride 0 (any stride reads it the same).
    private static func fit(_ e: (Int64, Int64, Int64), _ f: (Int64, Int64, Int64) -> Int64)
        -> (offset: Int64, product: Int64, row: Int64, col: Int64)? {
        guard e.0 * e.1 * e.2 <= maxCheckedElements else { return nil }
        let base = f(0, 0, 0)
        let product = e.0 > 1 ? f(1, 0, 0) - base : 0
        let row = e.1 > 1 ? f(0, 1, 0) - base : 0
        let col = e.2 > 1 ? f(0, 0, 1) - base : 1
        guard base >= 0, product >= 0, row >= 0, col >= 0 else { return nil }
        for c in 0..<e.0 {
            for r in 0..<e.1 {
                for k in 0..<e.2 where f(c, r, k) != base + c * product + r * row + k * col { return nil }
            }
        }
        return (base, product, row, col)
    }
}
