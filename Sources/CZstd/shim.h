#ifndef MINNOW_CZSTD_SHIM_H
#define MINNOW_CZSTD_SHIM_H
// Static-linking-only API gives ZSTD_initStaticDCtx / ZSTD_estimateDCtxSize (allocation-free contexts).
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#endif
