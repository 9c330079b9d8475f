import Foundation
import MinnowKernels

// The opt-in precision of the fused attention's products (AttentionFusion.swift,
// attention_bf16_avx512.c), chosen per Model at load.

/// The precision of attention's two products (QK^T and PV) where attention is fused.
public enum AttentionPrecision: String, Sendable, CaseIterable {
    /// fp32, the same bytes as the unfused operators (the default).
    case f32
    /// Opt-in: Q, K, the probabilities and V rounded to bfloat16 for the products (fp32 sums;
    /// scale, mask and softmax fp32). About twice the products' speed on AVX512-BF16 CPUs. On a
    /// float all-MiniLM-L6-v2 it moves embeddings by ~3e-6 in cosine; with int8 Dense layers it
    /// redraws which activations round up at the next quantization (the mean cosine to PyTorch is
    /// unchanged, single sentences move by int8 noise). Runs as f32 where the CPU lacks it.
    case bf16

    /// MINNOW_ATTENTION's value (unset or empty: f32).
    static func fromEnvironment() throws(ModelError) -> AttentionPrecision {
        guard let raw = ProcessInfo.processInfo.environment["MINNOW_ATTENTION"], !raw.isEmpty else { return .f32 }
        guard let p = AttentionPrecision(rawValue: raw) else {
            throw .unsupported("MINNOW_ATTENTION='\(raw)': expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return p
    }

    /// Whether `kernels` has a bf16 attention kernel this CPU runs.
    static func bf16Runs(on kernels: mn_kernel_table) -> Bool { kernels.attention_bf16 != nil && mn_cpu_has_avx512bf16() != 0 }
}
