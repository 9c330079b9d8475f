import MinnowFormat

// Convolutions and pooling (NCHW, as torch and tf2onnx export them). A Conv becomes
// im2col -> Dense -> transpose: the patches of each output pixel form a row, so the Dense kernels
// (fp32, dynamic and static int8, packed and threaded) do the arithmetic and quantization,
// fusion and planning treat it like any other layer. Grouped convolutions use a block-diagonal
// weight (exact; costs a factor `group` in multiply-adds, fine for the small groups of edge CNNs).

extension Lowering {
    /// Spatial geometry shared by Conv and the pools: input [C, H, W] (a rank-3 input is [C, 1, L]).
    struct Window {
        var c, h, w, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw: Int64
        var oh: Int64 { (h + pt + pb - dh * (kh - 1) - 1) / sh + 1 }
        var ow: Int64 { (w + pl + pr - dw * (kw - 1) - 1) / sw + 1 }
    }

    func window(_ n: ONNXNode, _ s: [Int64], kernel: [Int64]) throws(ConvertError) -> Window {
        guard s.count == 4 || s.count == 3 else { throw bad(n, "input \(s) is not [batch, C, H, W] or [batch, C, L]") }
        let spatial = s.count - 2
        guard kernel.count == spatial else { throw bad(n, "kernel \(kernel) does not match input \(s)") }
        let hw = spatial == 2 ? [s[2], s[3]] : [1, s[2]]
        let k = spatial == 2 ? kernel : [1, kernel[0]]
        func pair(_ key: String, _ fill: Int64) -> [Int64] {
            let v = n.ints(key) ?? Array(repeating: fill, count: spatial)
            return spatial == 2 ? v : [fill == 0 ? 0 : 1, v.first ?? fill]
        }
        let strides = pair("strides", 1), dil = pair("dilations", 1)
        var pads = n.ints("pads") ?? Array(repeating: 0, count: 2 * spatial)
        guard pads.count == 2 * spatial else { throw bad(n, "pads \(pads)") }
        if spatial == 1 { pads = [0, pads[0], 0, pads[1]] }
        var win = Window(c: s[1], h: hw[0], w: hw[1], kh: k[0], kw: k[1], sh: strides[0], sw: strides[1],
                         pt: pads[0], pl: pads[1], pb: pads[2], pr: pads[3], dh: dil[0], dw: dil[1])
        switch n.string("auto_pad") ?? "NOTSET" {
        case "NOTSET", "VALID": if n.string("auto_pad") == "VALID" { (win.pt, win.pl, win.pb, win.pr) = (0, 0, 0, 0) }
        case let mode where mode == "SAME_UPPER" || mode == "SAME_LOWER":
            // Output = ceil(input / stride); the odd pad goes at the end (UPPER) or the start (LOWER).
            func same(_ size: Int64, _ k: Int64, _ st: Int64, _ d: Int64) -> (Int64, Int64) {
                let total = max(0, ((size + st - 1) / st - 1) * st + d * (k - 1) + 1 - size)
                return mode == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
            }
            (win.pt, win.pb) = same(win.h, win.kh, win.sh, win.dh)
            (win.pl, win.pr) = same(win.w, win.kw, win.sw, win.dw)
        case let other: throw bad(n, "auto_pad \(other)")
        }
        guard [win.c, win.h, win.w, win.kh, win.kw, win.sh, win.sw, win.dh, win.dw].allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }),
              [win.pt, win.pl, win.pb, win.pr].allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }), win.oh >= 1, win.ow >= 1 else {
            throw bad(n, "window of \(k) with strides \(strides), pads \(pads), dilations \(dil) over \(hw) has no output")
        }
        return win
    }

    /// Output shape in the input's rank.
    func spatialShape(_ s: [Int64], channels: Int64, _ win: Window) -> [Int64] {
        s.count == 4 ? [-1, channels, win.oh, win.ow] : [-1, channels, win.ow]
    }

    mutating func lowerConv(_ n: ONNXNode) throws(ConvertError) {
        let x = try floatActivation(n, 0)
        let s = shape(x)
        let wt = try constant(n, 1)
        guard wt.shape.count == s.count else { throw bad(n, "weight \(wt.shape) does not match input \(s)") }
        let oc = Int64(wt.shape[0])
        let group = n.int("group", default: 1)
        let win = try window(n, s, kernel: wt.shape.dropFirst(2).map { Int64($0) })
        guard group >= 1, win.c % group == 0, oc % group == 0, Int64(wt.shape[1]) * group == win.c else {
            throw bad(n, "weight \(wt.shape) with group \(group) does not match \(win.c) input channels")
        }
        // [OC, C/g, KH, KW] -> [OC, C * KH * KW], zero outside each output channel's group.
        let kg = Int(wt.count) / Int(oc), k = Int(win.c * win.kh * win.kw), perGroup = Int(oc / group)
        var w = [Float](repeating: 0, count: Int(oc) * k)
        let src = wt.floats
        for o in 0..<Int(oc) {
            let gi = o / perGroup
            for j in 0..<kg { w[o * k + gi * kg + j] = src[o * kg + j] }
        }
        let p = win.oh * win.ow
        let patches = g.add(MTensor(name: n.outputs[0] + ".patches", dtype: .float32, shape: [-1, p, Int64(k)]))
        g.ops.append(MOp(opcode: .im2col, inputs: [x], outputs: [patches],
                         options: .params(ints: [win.c, win.h, win.w, win.kh, win.kw, win.oh, win.ow, win.sh, win.sw, win.pt, win.pl,
                                                 win.dh, win.dw], floats: []),
                         name: n.name, sourceType: n.opType))
        let wi = floatConstant(n.name + ".weight", ConstTensor(shape: [Int(oc), k], floats: w))
        var ins = [patches, wi]
        if n.input(2) != nil {
            let b = try constant(n, 2)
            guard b.count == Int(oc) else { throw bad(n, "bias has \(b.count) values for \(oc) channels") }
            ins.append(floatConstant(n.name + ".bias", ConstTensor(shape: [Int(oc)], floats: b.floats)))
        }
        let pixels = g.add(MTensor(name: n.outputs[0] + ".nhwc", dtype: .float32, shape: [-1, p, oc]))
        g.ops.append(MOp(opcode: .dense, inputs: ins, outputs: [pixels], options: .dense(DenseOptions()), name: n.name, sourceType: n.opType))
        // [P, OC] -> [OC, P]: back to NCHW.
        try emitStridedCopy(n, pixels, dims: [oc, p], strides: [1, oc], offset: 0, outShape: spatialShape(s, channels: oc, win))
    }

    mutating func lowerPool(_ n: ONNXNode) throws(ConvertError) {
        let x = try floatActivation(n, 0)
        let s = shape(x)
        guard n.outputs.count == 1 || !onnx.isConsumed(n.outputs[1]) else { throw bad(n, "the Indices output is used") }
        if n.opType.hasPrefix("Global") {
            guard s.count >= 3 else { throw bad(n, "input \(s) has no spatial dimensions") }
            let kind: Int64 = n.opType == "GlobalMaxPool" ? 2 : 1
            emit(n, .reduce, [x], shape: Array(s.prefix(2)) + Array(repeating: 1, count: s.count - 2),
                 .params(ints: [kind, s[1], s.dropFirst(2).reduce(1, *), 1], floats: []))
            return
        }
        guard let kernel = n.ints("kernel_shape") else { throw bad(n, "kernel_shape is missing") }
        guard (n.ints("dilations") ?? []).allSatisfy({ $0 == 1 }) else { throw bad(n, "dilated pooling is not supported") }
        guard n.int("storage_order", default: 0) == 0 else { throw bad(n, "storage_order 1 is not supported") }
        var win = try window(n, s, kernel: kernel)
        if n.int("ceil_mode", default: 0) != 0 {
            // A last window that starts inside the input (or its left padding) counts.
            func ceilOut(_ size: Int64, _ k: Int64, _ st: Int64, _ p0: Int64, _ p1: Int64) -> Int64 {
                var o = (size + p0 + p1 - k + st - 1) / st + 1
                if (o - 1) * st >= size + p0 { o -= 1 }
                return o
            }
            let oh = ceilOut(win.h, win.kh, win.sh, win.pt, win.pb), ow = ceilOut(win.w, win.kw, win.sw, win.pl, win.pr)
            win.pb += (oh - win.oh) * win.sh
            win.pr += (ow - win.ow) * win.sw
        }
        let kind: Int64 = n.opType == "MaxPool" ? 0 : 1
        emit(n, .pool, [x], shape: spatialShape(s, channels: win.c, win),
             .params(ints: [kind, win.c, win.h, win.w, win.kh, win.kw, win.oh, win.ow, win.sh, win.sw, win.pt, win.pl,
                            n.int("count_include_pad", default: 0)], floats: []))
    }
}
