/* Helpers shared by drivers/decode_*.c and drivers/relay*.c only: little-endian reads and
 * writes, and the reason formatter. Not part of the decoder API (drivers/decode.h). */
#ifndef ENGAGED_DECODE_INT_H
#define ENGAGED_DECODE_INT_H

#include <stddef.h>
#include <stdint.h>

static inline uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t get_le24(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes the reason into why (DEC_WHY_MAX bytes, may be NULL) and returns err (negative). */
int dec_fail(char *why, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copies s[0..n) into out (at most cap bytes, then a NUL), replacing what dec_text_ok would
 * refuse by '?', one '?' per offending byte or character, and stopping before a character
 * that would not fit. Returns DEC_TEXT_* flags. */
int dec_text_sanitise(const uint8_t *s, size_t n, char *out, size_t cap);

#endif
