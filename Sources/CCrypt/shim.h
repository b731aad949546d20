#ifndef CCRYPT_SHIM_H
#define CCRYPT_SHIM_H
/* libxcrypt: crypt_rn verifies bcrypt ($2y$, $2b$) hashes without global state. */
#include <crypt.h>
#endif
