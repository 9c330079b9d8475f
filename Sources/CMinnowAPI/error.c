// The per-thread error message behind minnow_last_error().
#include "minnow.h"
#include <string.h>

static __thread char last_error[1024];

const char *minnow_last_error(void) { return last_error; }

void minnow_internal_set_error(const char *message) {
    strncpy(last_error, message ? message : "", sizeof(last_error) - 1);
    last_error[sizeof(last_error) - 1] = 0;
}
