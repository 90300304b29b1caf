/* The one UTF-8 decoder of the library, shared by the expression module (forward, lossy) and
 * the AD connector's DN scope test (backward, exact). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The code point that starts at p (left > 0 bytes there): its length in bytes with *cp, or 0
 * when p does not start a valid, shortest-form sequence of a scalar value. */
size_t utf8_decode(const unsigned char *p, size_t left, uint32_t *cp);
