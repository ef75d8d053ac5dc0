/* C helpers of the Cython rollup engine: byte loads, hashing, UTF-8 checks and the
   constants the wire walk needs. Declared for Cython in core/_rollup.pxd; everything here
   is static inline, so this header is all there is of it. */
#ifndef UPT_ROLLUP_WIRE_H
#define UPT_ROLLUP_WIRE_H

#include <string.h>
#include <stdint.h>
#if defined(__GNUC__) || defined(__clang__)
#  define UPT_LIKELY(x) __builtin_expect(!!(x), 1)
#  define UPT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#  define UPT_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#  define UPT_PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1, 3)
#else
#  define UPT_LIKELY(x) (x)
#  define UPT_UNLIKELY(x) (x)
#  define UPT_PREFETCH(p) ((void)(p))
#  define UPT_PREFETCH_W(p) ((void)(p))
#endif

static inline uint32_t upt_be16(const unsigned char *p) {
    return ((uint32_t)p[0] << 8) | p[1];
}
static inline uint32_t upt_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t upt_be64(const unsigned char *p) {
    return ((uint64_t)upt_be32(p) << 32) | upt_be32(p + 4);
}
static inline double upt_f32(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    return (double)f;
}
static inline double upt_f64(uint64_t bits) {
    double d;
    memcpy(&d, &bits, 8);
    return d;
}
static inline uint64_t upt_load64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

#if defined(__GNUC__) || defined(__clang__)
#  define UPT_INLINE static inline __attribute__((always_inline))
#else
#  define UPT_INLINE static inline
#endif

UPT_INLINE uint32_t upt_load32(const unsigned char *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* 64x64 -> 128-bit multiply, folded: the mixing step of wyhash. */
UPT_INLINE uint64_t upt_mum(uint64_t a, uint64_t b) {
#if defined(__SIZEOF_INT128__)
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
    uint64_t ha = a >> 32, hb = b >> 32, la = (uint32_t)a, lb = (uint32_t)b;
    uint64_t rh = ha * hb, rm0 = ha * lb, rm1 = hb * la, rl = la * lb;
    uint64_t t = rl + (rm0 << 32), c = t < rl, lo, hi;
    lo = t + (rm1 << 32);
    c += lo < t;
    hi = rh + (rm0 >> 32) + (rm1 >> 32) + c;
    return lo ^ hi;
#endif
}

/* A seeded 64-bit hash in the manner of wyhash: 16 bytes per 128-bit multiply, short
   keys and tails read as (overlapping) in-bounds words, so nothing past the key is
   touched. Not cryptographic: the per-rollup random seed only makes collisions hard to
   aim at. Every byte of the key is read at least once, and *acc collects the OR of all
   that was read: pass one learns whether an id is ASCII from the same loads. */
#define UPT_K0 0xA0761D6478BD642FULL
#define UPT_K1 0xE7037ED1A0B428DBULL
#define UPT_K2 0x8EBC6AF09C88C6E3ULL
UPT_INLINE uint64_t upt_hash_acc(const unsigned char *p, size_t n, uint64_t seed,
                                 uint64_t *acc) {
    uint64_t a, b, w0, w1, all = 0;
    seed ^= UPT_K0;
    if (n <= 16) {
        if (n >= 8) {
            a = upt_load64(p);
            b = upt_load64(p + n - 8);
        } else if (n >= 4) {
            a = upt_load32(p);
            b = upt_load32(p + n - 4);
        } else if (n) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = n;
        while (i > 16) {
            w0 = upt_load64(p);
            w1 = upt_load64(p + 8);
            all |= w0 | w1;
            seed = upt_mum(w0 ^ UPT_K1, w1 ^ seed);
            p += 16;
            i -= 16;
        }
        a = upt_load64(p + i - 16);
        b = upt_load64(p + i - 8);
    }
    *acc = all | a | b;
    return upt_mum(UPT_K1 ^ n, upt_mum(a ^ UPT_K1, b ^ seed ^ UPT_K2));
}

UPT_INLINE uint64_t upt_hash(const unsigned char *p, size_t n, uint64_t seed) {
    uint64_t acc;
    return upt_hash_acc(p, n, seed, &acc);
}

/* Whether the OR of a key's bytes (as upt_hash_acc collects it) is all ASCII. */
#define UPT_ASCII(acc) (((acc) & 0x8080808080808080ULL) == 0)

/* nearbyint() (round half to even) for |x| < 2**51 without a libm call: adding and
   taking away 1.5 * 2**52 leaves x rounded in the default rounding mode. Strict IEEE
   arithmetic forbids folding the two away (so: never build with -ffast-math). */
UPT_INLINE double upt_round_even(double x) {
    return (x + 6755399441055744.0) - 6755399441055744.0;
}

/* floor() of a finite x in [0, 2**63) without a libm call: truncation is floor there. */
UPT_INLINE double upt_floor_pos(double x) {
    return (double)(int64_t)x;
}

/* Equality of two byte strings of length n, inline (keys are short). */
UPT_INLINE int upt_eq(const unsigned char *a, const unsigned char *b, size_t n) {
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 < n; i += 8)
            if (upt_load64(a + i) != upt_load64(b + i)) return 0;
        return upt_load64(a + n - 8) == upt_load64(b + n - 8);
    }
    if (n >= 4)
        return upt_load32(a) == upt_load32(b) && upt_load32(a + n - 4) == upt_load32(b + n - 4);
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* Strict UTF-8, exactly what bytes.decode('utf-8') accepts: no overlong forms, no
   surrogates, nothing above U+10FFFF, no truncated sequence. */
UPT_INLINE int upt_utf8_ok(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i + 8 <= n && !(upt_load64(s + i) & 0x8080808080808080ULL))
        i += 8;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        if (c < 0xC2) return 0;
        if (c < 0xE0) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
            continue;
        }
        if (c < 0xF0) {
            unsigned lo = 0x80, hi = 0xBF;
            if (c == 0xE0) lo = 0xA0;        /* overlong */
            else if (c == 0xED) hi = 0x9F;   /* surrogates */
            if (i + 2 >= n || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            i += 3;
            continue;
        }
        if (c < 0xF5) {
            unsigned lo = 0x80, hi = 0xBF;
            if (c == 0xF0) lo = 0x90;        /* overlong */
            else if (c == 0xF4) hi = 0x8F;   /* above U+10FFFF */
            if (i + 3 >= n || s[i + 1] < lo || s[i + 1] > hi
                || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            i += 4;
            continue;
        }
        return 0;
    }
    return 1;
}

#define UPT_INT64_MAX ((int64_t)INT64_MAX)
#define UPT_INT32_MIN ((int64_t)INT32_MIN)
#define UPT_INT32_MAX ((int64_t)INT32_MAX)
#define UPT_UINT32_MAX ((int64_t)UINT32_MAX)
#define UPT_MASK32 0xFFFFFFFFULL
#define UPT_MASK34 0x3FFFFFFFFULL
#define UPT_MS_THRESHOLD 100000000000ULL
#define UPT_SEC_CLAMP 9223372035ULL
#define UPT_MS_CLAMP 9223372036853ULL
/* time units: core/times.py is their source; core.rollup checks these against it */
#define UPT_S_PER_DAY 86400LL
#define UPT_NS_PER_DAY 86400000000000LL
#define UPT_NS_PER_S 1000000000LL
#define UPT_NS_PER_MS 1000000LL
#define UPT_MS_PER_DAY 86400000LL

/* Decimal text of an unsigned 64-bit integer; returns its length (at most 20). */
static inline int upt_utoa(uint64_t v, unsigned char *out) {
    unsigned char tmp[20];
    int n = 0, i;
    do { tmp[n++] = (unsigned char)('0' + v % 10); v /= 10; } while (v);
    for (i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

#endif /* UPT_ROLLUP_WIRE_H */
