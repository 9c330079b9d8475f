/* libMinnowC: Minnow's C interface, for hosts in C, C++, Go, Rust or Python (ctypes).
 *
 *   minnow_model *m = minnow_model_load("model.minnow");          // verify, decompress, prepare
 *   minnow_session *s = minnow_session_create(m, 16);              // arena for up to 16 samples
 *   memcpy(minnow_session_input(s, 0), features, n * sizeof(float));
 *   if (minnow_session_run(s, n) != 0) fprintf(stderr, "%s\n", minnow_last_error());
 *   const float *scores = minnow_session_output(s, 0);             // valid until the next run
 *   minnow_session_free(s); minnow_model_free(m);
 *
 * Models are immutable and may be shared by threads; a session is used by one thread at a time.
 * minnow_session_run makes no heap allocation. Every function that can fail returns NULL or a
 * negative value and leaves a message for minnow_last_error() (per thread).
 */
#ifndef MINNOW_H
#define MINNOW_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct minnow_model minnow_model;
typedef struct minnow_session minnow_session;

/** The message of the last failure on this thread ("" if none). */
const char *minnow_last_error(void);

minnow_model *minnow_model_load(const char *path);
minnow_model *minnow_model_load_bytes(const void *data, size_t size);
/** Like minnow_model_load, on the kernel table named `kernels` ("reference", "avx2",
 *  "avx512vnni"; NULL: the default for this CPU). A table this CPU lacks is an error. */
minnow_model *minnow_model_load_kernels(const char *path, const char *kernels);
/** The kernel table the model runs on (lives as long as the model). */
const char *minnow_model_kernels(const minnow_model *model);
void minnow_model_free(minnow_model *model);

int32_t minnow_model_input_count(const minnow_model *model);
int32_t minnow_model_output_count(const minnow_model *model);
/** Names live as long as the model. */
const char *minnow_model_input_name(const minnow_model *model, int32_t index);
const char *minnow_model_output_name(const minnow_model *model, int32_t index);
/** Writes up to `capacity` dimensions (dimension 0, the batch, as -1); returns the rank or -1. */
int32_t minnow_model_input_shape(const minnow_model *model, int32_t index, int64_t *dims, int32_t capacity);
int32_t minnow_model_output_shape(const minnow_model *model, int32_t index, int64_t *dims, int32_t capacity);
/** Index of the input/output called `name`, or -1. */
int32_t minnow_model_input_index(const minnow_model *model, const char *name);
int32_t minnow_model_output_index(const minnow_model *model, const char *name);
int32_t minnow_model_max_batch(const minnow_model *model);
/** Element type of input/output `index`, as the format's DType codes: MINNOW_FLOAT32 (0),
 *  MINNOW_INT32 (3), MINNOW_INT64 (4), MINNOW_BOOL (5, one byte); -1 on error. Id inputs of
 *  embedding models are int64 or int32. */
int32_t minnow_model_input_dtype(const minnow_model *model, int32_t index);
int32_t minnow_model_output_dtype(const minnow_model *model, int32_t index);
#define MINNOW_FLOAT32 0
#define MINNOW_INT32 3
#define MINNOW_INT64 4
#define MINNOW_BOOL 5

/** max_batch <= 0 means the model's planned maximum. Runs use the physical cores this process
 *  may run on (a worker pool splits large operators; results do not depend on the count). */
minnow_session *minnow_session_create(const minnow_model *model, int32_t max_batch);
/** As minnow_session_create, with `threads` per run (1: no worker pool; <= 0: the default). */
minnow_session *minnow_session_create_threads(const minnow_model *model, int32_t max_batch, int32_t threads);
void minnow_session_free(minnow_session *session);
int32_t minnow_session_max_batch(const minnow_session *session);
/** Where to write input `index` (fp32, row-major, room for max_batch samples). */
float *minnow_session_input(minnow_session *session, int32_t index);
/** Where to write input `index` in its own element type (any dtype; room for max_batch samples). */
void *minnow_session_input_data(minnow_session *session, int32_t index);
/** Copies `count` floats (whole samples) into a float32 input `index`; 0 or -1. */
int32_t minnow_session_set_input(minnow_session *session, int32_t index, const float *data, int64_t count);
/** Sequence lengths the model accepts (converted with --max-seq): writes up to `capacity`,
 *  ascending; returns how many there are (0 for a fixed-length model) or -1. */
int32_t minnow_model_sequence_lengths(const minnow_model *model, int64_t *lengths, int32_t capacity);
/** Switches the session to inputs of `length` along the sequence axis; 0 or -1. Inputs and
 *  outputs then have that length's shapes (write inputs after switching). No heap allocation. */
int32_t minnow_session_set_sequence_length(minnow_session *session, int64_t length);
/** Shapes at the session's current sequence length (as minnow_model_input_shape). */
int32_t minnow_session_input_shape(const minnow_session *session, int32_t index, int64_t *dims, int32_t capacity);
int32_t minnow_session_output_shape(const minnow_session *session, int32_t index, int64_t *dims, int32_t capacity);
/** Runs the first `batch` samples; 0 or -1. No heap allocation. */
int32_t minnow_session_run(minnow_session *session, int32_t batch);
/** Output `index` of the last run (fp32, row-major), valid until the next run. */
const float *minnow_session_output(const minnow_session *session, int32_t index);
/** Output `index` of the last run in its own element type (any dtype). */
const void *minnow_session_output_data(const minnow_session *session, int32_t index);

/* For the Swift implementation only. */
void minnow_internal_set_error(const char *message);

#ifdef __cplusplus
}
#endif
#endif
