// libFuzzer's driver, from libclang_rt.fuzzer_no_main (linked into the fuzz executables only).
// Our fuzz targets keep a normal main and hand control to it, so they build in the same tree
// as the tests and the CLI.
#ifndef MINNOW_FUZZER_DRIVER_H
#define MINNOW_FUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
#endif
