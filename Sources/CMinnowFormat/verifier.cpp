// The one place that runs FlatBuffers' own verifier: it walks every offset in the buffer and
// proves it in bounds before the Swift reader touches anything.
#include "minnow_format_c.h"
#include "minnow_generated.h"

extern "C" int minnow_verify_model(const uint8_t *buf, size_t len) {
    if (buf == nullptr || len < 8 || len > FLATBUFFERS_MAX_BUFFER_SIZE) return 0;
    // Depth and table limits bound the work on hostile input.
    flatbuffers::Verifier verifier(buf, len, /*max_depth=*/64, /*max_tables=*/4000000);
    return minnow::fb::VerifyModelBuffer(verifier) ? 1 : 0;
}

extern "C" int minnow_has_identifier(const uint8_t *buf, size_t len) {
    if (buf == nullptr || len < 8) return 0;
    return flatbuffers::BufferHasIdentifier(buf, minnow::fb::ModelIdentifier()) ? 1 : 0;
}

extern "C" int minnow_verify_sequence_variants(const uint8_t *buf, size_t len) {
    if (buf == nullptr || len < 8 || len > FLATBUFFERS_MAX_BUFFER_SIZE) return 0;
    flatbuffers::Verifier verifier(buf, len, /*max_depth=*/64, /*max_tables=*/4000000);
    return verifier.VerifyBuffer<minnow::fb::SequenceVariants>("MNWS") ? 1 : 0;
}
