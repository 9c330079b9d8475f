// Declarations only (fuzzer_driver.h); the definitions come from libFuzzer.
