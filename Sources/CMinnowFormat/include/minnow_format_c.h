#ifndef MINNOW_FORMAT_C_H
#define MINNOW_FORMAT_C_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Runs the flatc-generated FlatBuffers verifier for `minnow.fbs` over `len` bytes.
/// Returns 1 when the buffer is a structurally valid Model (offsets, vtables, vectors, strings,
/// unions and nesting all in bounds), 0 otherwise. `buf` must be at least 8-byte aligned.
int minnow_verify_model(const uint8_t *buf, size_t len);

/// The same for the "MNWS" SequenceVariants buffer kept in a weight segment (format 1.3).
int minnow_verify_sequence_variants(const uint8_t *buf, size_t len);

/// 1 when the buffer carries the "MNW1" file identifier at bytes 4..8.
int minnow_has_identifier(const uint8_t *buf, size_t len);

/// XXH64 (seed as given) of `len` bytes: the checksum stored with every weight segment.
uint64_t minnow_xxh64(const void *data, size_t len, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
