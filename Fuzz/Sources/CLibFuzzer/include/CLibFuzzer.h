// libFuzzer's driver, called from the executables' own `main` (SwiftPM renames an executable's entry point, so the
// `main` that libFuzzer brings cannot be the one that runs).
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
