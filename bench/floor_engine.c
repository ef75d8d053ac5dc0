/* The engine floor: decode + apply of compact frames in plain C, in several loop shapes.
 *
 * What it is for. The issue asks the Cython engine (core/_rollup.pyx) for 50M compact frames/s
 * (20 ns a frame) on one core at 100,000 devices. This file does the engine's work on the
 * bench's batches with nothing else around it (no Python, no numpy, no Batch objects), in the
 * loop shapes an engine could take, so that bench/floor_engine.py can time them in turns with
 * the engine and say how fast any such engine can go on this machine: the floor under the
 * engine's time, as bench/floor_server.py is the floor under the server's. It is built by
 * bench/floor_engine.py (the system C compiler, -O2, a shared library loaded with ctypes), which
 * first checks every shape's per-device results against RollupC's.
 *
 * The work, per batch body, as the engine does it:
 *   - the batch map (keys v, gateway, seq, frames) with the engine's general msgpack reader;
 *   - per frame: the fast path for the usual compact frame, straight from the bytes (id
 *     fixstr/str8 hashed with the engine's wyhash-like hash, the ASCII check from the same
 *     loads; ts uint32/uint64, seconds or milliseconds; fixint status and battery, negative
 *     fixint/int8 rssi, nils), the time window judged there; anything else takes the general
 *     reader (frame_slow);
 *   - the id's lookup in an open-addressing table of the engine's layout (64-bit slots: tag
 *     and index + 1, keys in one arena, full key compare) to a dense device index;
 *   - the columns of the batch (dev, ts ns, status, battery, rssi, fw) and each frame's
 *     verdict (reason, warnings);
 *   - apply_frames of core/_rollup_state.pxi: the same 60-byte DevState, the same rules
 *     (first/last/min, last-wins on ties, the coverage run or an interval, fault slots, the
 *     day's row leaving the state on a new day or a counter overflow, late frames as records).
 *
 * The shapes (--variants), all over one interner and one state, as one engine holds:
 *   fused    one loop: each frame is parsed, looked up, written and applied before the next;
 *            no lookahead (only the body is prefetched, 1 KiB ahead, as in the engine)
 *   two      loop 1 parses and looks up (lookups 8 accepted frames behind the parse, whose
 *            slot it prefetched) into the columns; loop 2 applies the columns, prefetching the
 *            state 16 frames ahead: the shape the architecture allows, since apply must follow
 *            the durable commit, and the commit needs the decoded columns
 *   three    the engine's shape: pass one parses every frame into a record, pass two looks the
 *            ids up into the columns (slots prefetched 16 ahead), then apply as in "two"
 *   grouped  one loop over groups of 16 frames: parse 16 (prefetching their slots), look up
 *            16 (prefetching their states), write and apply 16
 * fused and grouped keep the columns and the state behind restrict pointers (a uint8_t store
 * may alias anything, so through the context every store would force reloads) and apply from
 * whole seconds (no division of the ns time); two and three apply from the ns column, as the
 * engine's apply does.
 *
 * What it leaves out (so it is a floor: the engine must do all this and more):
 *   - compact frames only: a map frame is walked and rejected as not a frame;
 *   - no firmware: compact frames carry none, the fw column is all 0 and apply neither reads
 *     it nor compares firmware names on a tie (the engine's fw_after);
 *   - no admission: the table is built before the first batch with every id of the fleet,
 *     numbered as the engine numbered them; an id it lacks is counted as unknown and its frame
 *     rejected (the engine would admit it; the check requires that none occur);
 *   - no Python: no Batch object, no numpy columns, no error list, no lock, no call per batch
 *     (the engine's costs about 1.3 ns a frame);
 *   - the tail frames of a body, fewer than FAST_SPAN bytes from its end, take the general
 *     reader, as in the engine (about 5 frames of a 1,000-frame body);
 *   - no drain: floor_export reads the live state for the check only, and refuses when
 *     anything went to the day records (a second day, a late frame, a counter overflow);
 *   - batch limits: at most MAX_FRAMES frames, no closed-before time.
 *
 * Needs GCC or Clang (__uint128_t, __builtin_prefetch, __builtin_expect).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/_rollup_wire.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#define PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1, 3)
#define INL static inline __attribute__((always_inline))
#define NOINL static __attribute__((noinline))
#define EXPORT __attribute__((visibility("default")))

/* ---- loads and the id hash (as the engine's) ------------------------------------------------ */
INL uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
INL uint32_t be32(const uint8_t *p) { uint32_t w; memcpy(&w, p, 4); return __builtin_bswap32(w); }
INL uint64_t be64(const uint8_t *p) { uint64_t w; memcpy(&w, p, 8); return __builtin_bswap64(w); }
INL uint64_t ld64(const uint8_t *p) { uint64_t w; memcpy(&w, p, 8); return w; }
INL uint32_t ld32(const uint8_t *p) { uint32_t w; memcpy(&w, p, 4); return w; }

/* the id hash is the engine's own (upt_hash_acc: wyhash-like; the OR of every loaded word goes
   to *acc, so that the caller can tell an ASCII id from the same loads) */
#define ASCII(acc) (((acc) & 0x8080808080808080ULL) == 0)

INL int keq(const uint8_t *a, const uint8_t *b, size_t n) {
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 < n; i += 8)
            if (ld64(a + i) != ld64(b + i)) return 0;
        return ld64(a + n - 8) == ld64(b + n - 8);
    }
    if (n >= 4) return ld32(a) == ld32(b) && ld32(a + n - 4) == ld32(b + n - 4);
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static int utf8_ok(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i + 8 <= n && !(ld64(s + i) & 0x8080808080808080ULL)) i += 8;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        if (c < 0xC2) return 0;
        if (c < 0xE0) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2; continue;
        }
        if (c < 0xF0) {
            unsigned lo = 0x80, hi = 0xBF;
            if (c == 0xE0) lo = 0xA0; else if (c == 0xED) hi = 0x9F;
            if (i + 2 >= n || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xC0) != 0x80) return 0;
            i += 3; continue;
        }
        if (c < 0xF5) {
            unsigned lo = 0x80, hi = 0xBF;
            if (c == 0xF0) lo = 0x90; else if (c == 0xF4) hi = 0x8F;
            if (i + 3 >= n || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xC0) != 0x80
                || (s[i + 3] & 0xC0) != 0x80) return 0;
            i += 4; continue;
        }
        return 0;
    }
    return 1;
}

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define NS_PER_DAY 86400000000000LL
#define MS_PER_DAY 86400000LL
#define MS_THRESHOLD 100000000000ULL
#define SEC_CLAMP 9223372035ULL
#define MS_CLAMP 9223372036853ULL
#define BATT_NONE (-1)
#define RSSI_NONE 1
#define MAX_DEV_LEN 128
#define MAX_FRAMES 100000
#define UNKNOWN_DEV 0xFFFFFFFFu
enum { NIL, BOOL, INT, FLOAT, STR, BIN, EXT, ARRAY, MAP };
enum { R_OK, R_NOT_FRAME, R_DEV_MISSING, R_DEV_TYPE, R_DEV_EMPTY, R_DEV_LONG, R_TS_MISSING,
       R_TS_TYPE, R_TS_INVALID, R_TS_FUTURE, R_TS_OLD, R_TS_CLOSED, R_UNKNOWN_DEV };
enum { W_STATUS = 1, W_BATTERY = 2, W_RSSI = 4 };
/* errors of a batch (floor_run returns them negated) */
enum { E_OK, E_TRUNC, E_RESERVED, E_NOT_MAP, E_TRAILING, E_VERSION, E_GW, E_SEQ, E_FRAMES,
       E_NOMEM, E_VARIANT };

/* ---- the id table (the engine's layout: 64-bit slots tag | index + 1, keys in an arena) ---- */
typedef struct {
    uint64_t *slots;
    size_t mask, count;
    uint8_t *arena;
    size_t *offs;
    uint64_t seed;
} Interner;

INL int64_t ifind(const Interner *it, uint64_t h, const uint8_t *key, size_t n) {
    size_t i = h & it->mask;
    uint64_t tag = h >> 32;
    for (;;) {
        uint64_t s = it->slots[i];
        if (!s) return -1;
        if ((s >> 32) == tag) {
            size_t idx = (uint32_t)s - 1;
            if (it->offs[idx + 1] - it->offs[idx] == n && keq(it->arena + it->offs[idx], key, n))
                return (int64_t)idx;
        }
        i = (i + 1) & it->mask;
    }
}

/* every id at once, numbered in the given order: keys[offs[i]:offs[i + 1]] is id i */
static int intern_all(Interner *it, const uint8_t *keys, const uint32_t *offs, size_t n,
                      uint64_t seed) {
    size_t size = 1024;
    while (size < 2 * n) size *= 2;
    it->slots = calloc(size, 8);
    it->offs = malloc((n + 1) * sizeof(size_t));
    it->arena = malloc((size_t)offs[n] + 16);
    if (!it->slots || !it->offs || !it->arena) return E_NOMEM;
    it->mask = size - 1;
    it->seed = seed;
    memcpy(it->arena, keys, offs[n]);
    for (size_t i = 0; i <= n; i++) it->offs[i] = offs[i];
    for (size_t i = 0; i < n; i++) {
        uint64_t acc, h = upt_hash_acc(keys + offs[i], offs[i + 1] - offs[i], seed, &acc);
        size_t j = h & it->mask;
        while (it->slots[j]) j = (j + 1) & it->mask;
        it->slots[j] = ((h >> 32) << 32) | (i + 1);
    }
    it->count = n;
    return E_OK;
}

/* ---- live state: the engine's DevState (60 bytes) and overflow vectors ------------------- */
typedef struct {
    int32_t day, run_a;
    uint32_t run_n, hb_s, frames, fault_frames;
    int32_t rssi_sum, first_ms, last_ms, batt_ms, rssi_ms, fw_ms;
    uint16_t rssi_n;
    int16_t batt_last, batt_min, rssi_last;
    uint16_t fw_last;
    uint8_t last_status, _pad;
} DevState;
_Static_assert(sizeof(DevState) == 60, "DevState is 60 bytes as in the engine");

typedef struct {
    int64_t rssi_sum;
    uint32_t frames, fault_frames, rssi_n;
    int32_t first_ms, last_ms, batt_ms, rssi_ms, fw_ms;
    int16_t batt_last, batt_min, rssi_last;
    uint16_t fw_last;
    uint8_t last_status;
} StatsRow;
typedef struct { uint32_t dev; int64_t a, b; } Interval;
typedef struct { uint32_t dev; int64_t slot; } Fault;
typedef struct { uint32_t dev; int32_t day; StatsRow row; } StatsRec;
typedef struct {
    Interval *iv; size_t n_iv, cap_iv;
    Fault *faults; size_t n_faults, cap_faults;
    StatsRec *recs; size_t n_recs, cap_recs;
} Overflow;

NOINL int grow(void **v, size_t *cap, size_t item) {
    size_t n = *cap ? *cap * 2 : 256;
    void *p = realloc(*v, n * item);
    if (!p) return E_NOMEM;
    *v = p;
    *cap = n;
    return E_OK;
}
INL int push_interval(Overflow *ov, uint32_t dev, int64_t a, int64_t b) {
    if (ov->n_iv == ov->cap_iv && grow((void **)&ov->iv, &ov->cap_iv, sizeof(Interval)))
        return E_NOMEM;
    ov->iv[ov->n_iv++] = (Interval){dev, a, b};
    return E_OK;
}
INL int push_fault(Overflow *ov, uint32_t dev, int64_t slot) {
    if (ov->n_faults == ov->cap_faults
        && grow((void **)&ov->faults, &ov->cap_faults, sizeof(Fault)))
        return E_NOMEM;
    ov->faults[ov->n_faults++] = (Fault){dev, slot};
    return E_OK;
}
INL StatsRow *push_record(Overflow *ov, uint32_t dev, int32_t day) {
    if (ov->n_recs == ov->cap_recs && grow((void **)&ov->recs, &ov->cap_recs, sizeof(StatsRec)))
        return NULL;
    ov->recs[ov->n_recs].dev = dev;
    ov->recs[ov->n_recs].day = day;
    return &ov->recs[ov->n_recs++].row;
}
INL void row_reset(DevState *st) {
    st->frames = 0; st->fault_frames = 0; st->rssi_sum = 0; st->rssi_n = 0;
    st->first_ms = st->last_ms = st->batt_ms = st->rssi_ms = st->fw_ms = -1;
    st->batt_last = st->batt_min = -1; st->rssi_last = RSSI_NONE; st->fw_last = 0;
    st->last_status = 0;
}
INL void row_export(const DevState *st, StatsRow *r) {
    r->rssi_sum = st->rssi_sum; r->frames = st->frames; r->fault_frames = st->fault_frames;
    r->rssi_n = st->rssi_n; r->first_ms = st->first_ms; r->last_ms = st->last_ms;
    r->batt_ms = st->batt_ms; r->rssi_ms = st->rssi_ms; r->fw_ms = st->fw_ms;
    r->batt_last = st->batt_last; r->batt_min = st->batt_min; r->rssi_last = st->rssi_last;
    r->fw_last = st->fw_last; r->last_status = st->last_status;
}
INL void row_empty(StatsRow *r) {
    memset(r, 0, sizeof *r);
    r->first_ms = r->last_ms = r->batt_ms = r->rssi_ms = r->fw_ms = -1;
    r->batt_last = r->batt_min = -1; r->rssi_last = RSSI_NONE;
}

/* one accepted frame into the day's row (the device is on the frame's day) */
INL void row_add(DevState *st, int64_t ms, int s, int16_t b, int16_t r) {
    st->frames += 1;
    if (s) st->fault_frames += 1;
    if (st->first_ms < 0 || ms < st->first_ms) st->first_ms = (int32_t)ms;
    if (ms > st->last_ms || (ms == st->last_ms && s > st->last_status)) {
        st->last_ms = (int32_t)ms; st->last_status = (uint8_t)s;
    }
    if (b != BATT_NONE) {
        if (st->batt_min < 0 || b < st->batt_min) st->batt_min = b;
        if (ms > st->batt_ms || (ms == st->batt_ms && b > st->batt_last)) {
            st->batt_ms = (int32_t)ms; st->batt_last = b;
        }
    }
    if (r != RSSI_NONE) {
        st->rssi_n += 1; st->rssi_sum += r;
        if (ms > st->rssi_ms || (ms == st->rssi_ms && r > st->rssi_last)) {
            st->rssi_ms = (int32_t)ms; st->rssi_last = r;
        }
    }
}

/* slots [slot_a, slot_b) covered: grow the device's run, or push an interval */
INL int cover(DevState *st, Overflow *ov, uint32_t dev, int64_t spd, int64_t slot_a,
              int64_t slot_b) {
    int64_t base = (int64_t)st->day * spd, a = slot_a - base, b = slot_b - base, ra, rb;
    if (st->run_n) {
        ra = st->run_a; rb = ra + st->run_n;
        if (a <= rb && b >= ra) {
            if (a >= ra && b <= rb) return E_OK;
            a = a < ra ? a : ra;
            b = b > rb ? b : rb;
            if (a >= INT32_MIN && b - a <= (int64_t)UINT32_MAX) {
                st->run_a = (int32_t)a; st->run_n = (uint32_t)(b - a);
                return E_OK;
            }
            return push_interval(ov, dev, slot_a, slot_b);
        }
        if (a < ra) return push_interval(ov, dev, slot_a, slot_b);
        if (push_interval(ov, dev, base + ra, base + rb)) return E_NOMEM;
        st->run_n = 0;
    }
    if (a >= INT32_MIN && a <= INT32_MAX && b - a <= (int64_t)UINT32_MAX) {
        st->run_a = (int32_t)a; st->run_n = (uint32_t)(b - a);
        return E_OK;
    }
    return push_interval(ov, dev, slot_a, slot_b);
}

static int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if (a % b < 0) q--;
    return q;
}

typedef struct {
    DevState *states;
    Overflow ov;
    int64_t slot_ns, spd;
    uint64_t magic;   /* floor(x / slot_s) == (x * magic) >> 34 for x < 86,400 */
} Live;

/* apply_frames of core/_rollup_state.pxi for one frame at time t (ns), without firmware */
INL int apply_one(Live *L, uint32_t d, int64_t t, int s, int16_t b, int16_t r) {
    DevState *st = &L->states[d];
    Overflow *ov = &L->ov;
    const int64_t spd = L->spd;
    const uint64_t magic = L->magic;
    int64_t day, slot, slot_e = 0, ms;
    if (LIKELY(t >= 0)) {
        uint64_t ut = (uint64_t)t, sec = ut / (uint64_t)NS_PER_S;
        uint32_t sub = (uint32_t)(ut - sec * (uint64_t)NS_PER_S);
        uint64_t uday = sec / 86400, sod = sec - uday * 86400;
        day = (int64_t)uday;
        slot = day * spd + (int64_t)((sod * magic) >> 34);
        ms = (int64_t)(sod * 1000 + sub / 1000000u);
        if (s == 0) {
            uint64_t esec = sec + st->hb_s - (sub == 0);
            uday = esec / 86400;
            slot_e = (int64_t)uday * spd + (int64_t)(((esec - uday * 86400) * magic) >> 34);
        }
    } else {
        slot = floordiv(t, L->slot_ns);
        day = floordiv(t, NS_PER_DAY);
        ms = floordiv(t, NS_PER_MS) - day * MS_PER_DAY;
        if (s == 0) slot_e = floordiv(t + (int64_t)st->hb_s * NS_PER_S - 1, L->slot_ns);
    }
    int late = 0;
    StatsRow *rec;
    if (st->frames == 0) {
        row_reset(st);
        st->day = (int32_t)day;
        st->run_n = 0;
    } else if (day != st->day) {
        if (day > st->day) {
            rec = push_record(ov, d, st->day);
            if (!rec) return E_NOMEM;
            row_export(st, rec);
            if (st->run_n) {
                int64_t rebased = st->run_a + (int64_t)(st->day - day) * spd;
                if (rebased < INT32_MIN) {
                    int64_t base = (int64_t)st->day * spd;
                    if (push_interval(ov, d, base + st->run_a, base + st->run_a + st->run_n))
                        return E_NOMEM;
                    st->run_n = 0;
                } else {
                    st->run_a = (int32_t)rebased;
                }
            }
            row_reset(st);
            st->day = (int32_t)day;
        } else {
            rec = push_record(ov, d, (int32_t)day);
            if (!rec) return E_NOMEM;
            row_empty(rec);
            rec->frames = 1; rec->fault_frames = s != 0;
            rec->first_ms = rec->last_ms = (int32_t)ms; rec->last_status = (uint8_t)s;
            if (b != BATT_NONE) { rec->batt_min = rec->batt_last = b; rec->batt_ms = (int32_t)ms; }
            if (r != RSSI_NONE) {
                rec->rssi_n = 1; rec->rssi_sum = r; rec->rssi_last = r; rec->rssi_ms = (int32_t)ms;
            }
            late = 1;
        }
    }
    if (!late) {
        if (UNLIKELY(st->frames == 0xFFFFFFFFu || (r != RSSI_NONE && st->rssi_n == 0xFFFF))) {
            rec = push_record(ov, d, st->day);
            if (!rec) return E_NOMEM;
            row_export(st, rec);
            row_reset(st);
        }
        row_add(st, ms, s, b, r);
    }
    if (s == 0) return cover(st, ov, d, spd, slot, slot_e + 1);
    return push_fault(ov, d, slot);
}

/* apply_one for a time given as whole seconds + ns (every accepted frame: its ts is never
   negative), with the usual case (same day, no counter at its limit) inline */
INL int apply_sec(Live *L, uint32_t d, uint64_t sec, uint32_t sub, int s, int16_t b, int16_t r) {
    DevState *st = &L->states[d];
    const int64_t spd = L->spd;
    const uint64_t magic = L->magic;
    uint64_t uday = sec / 86400, sod = sec - uday * 86400;
    int64_t day = (int64_t)uday;
    int64_t slot = day * spd + (int64_t)((sod * magic) >> 34);
    int64_t ms = (int64_t)(sod * 1000 + sub / 1000000u);
    if (UNLIKELY(st->frames == 0 || day != st->day || st->frames == 0xFFFFFFFFu
                 || (r != RSSI_NONE && st->rssi_n == 0xFFFF)))
        return apply_one(L, d, (int64_t)(sec * NS_PER_S + sub), s, b, r);
    row_add(st, ms, s, b, r);
    if (s == 0) {
        uint64_t esec = sec + st->hb_s - (sub == 0);
        uint64_t eday = esec / 86400;
        int64_t slot_e = (int64_t)eday * spd + (int64_t)(((esec - eday * 86400) * magic) >> 34);
        return cover(st, &L->ov, d, spd, slot, slot_e + 1);
    }
    return push_fault(&L->ov, d, slot);
}

/* ---- msgpack: the general reader (the batch map, and frames off the fast path) ------------ */
typedef struct { int kind, neg, ext_type; uint64_t u; double f; size_t off, len; } Val;

static int skip_items(const uint8_t *buf, size_t end, size_t *ppos, uint64_t n);

static int read_value(const uint8_t *buf, size_t end, size_t *ppos, Val *v) {
    size_t pos = *ppos;
    if (pos >= end) return E_TRUNC;
    unsigned b = buf[pos++];
    size_t need = 0, n = 0;
    v->neg = 0;
#define NEED(k) do { if (end - pos < (k)) return E_TRUNC; } while (0)
    if (b <= 0x7F) { v->kind = INT; v->u = b; }
    else if (b >= 0xE0) { v->kind = INT; v->neg = 1; v->u = (uint64_t)(int64_t)(int8_t)b; }
    else if (b <= 0x8F) { v->kind = MAP; v->u = b & 0xF; }
    else if (b <= 0x9F) { v->kind = ARRAY; v->u = b & 0xF; }
    else if (b <= 0xBF) {
        n = b & 0x1F; NEED(n);
        v->kind = STR; v->off = pos; v->len = n; pos += n;
    }
    else switch (b) {
    case 0xC0: v->kind = NIL; break;
    case 0xC2: case 0xC3: v->kind = BOOL; v->u = b & 1; break;
    case 0xC4: case 0xC5: case 0xC6: case 0xD9: case 0xDA: case 0xDB:
        need = (b == 0xC4 || b == 0xD9) ? 1 : (b == 0xC5 || b == 0xDA) ? 2 : 4;
        NEED(need);
        n = need == 1 ? buf[pos] : need == 2 ? be16(buf + pos) : be32(buf + pos);
        pos += need; NEED(n);
        v->kind = b >= 0xD9 ? STR : BIN; v->off = pos; v->len = n; pos += n; break;
    case 0xC7: case 0xC8: case 0xC9:
        need = b == 0xC7 ? 1 : b == 0xC8 ? 2 : 4;
        NEED(need + 1);
        n = need == 1 ? buf[pos] : need == 2 ? be16(buf + pos) : be32(buf + pos);
        pos += need;
        v->ext_type = (int8_t)buf[pos++]; NEED(n);
        v->kind = EXT; v->off = pos; v->len = n; pos += n; break;
    case 0xD4: case 0xD5: case 0xD6: case 0xD7: case 0xD8:
        n = (size_t)1 << (b - 0xD4); NEED(n + 1);
        v->ext_type = (int8_t)buf[pos++]; v->kind = EXT; v->off = pos; v->len = n; pos += n;
        break;
    case 0xCA: NEED(4); {
        uint32_t w = be32(buf + pos); float f; memcpy(&f, &w, 4);
        v->kind = FLOAT; v->f = f; pos += 4;
    } break;
    case 0xCB: NEED(8); {
        uint64_t w = be64(buf + pos); memcpy(&v->f, &w, 8);
        v->kind = FLOAT; pos += 8;
    } break;
    case 0xCC: NEED(1); v->kind = INT; v->u = buf[pos]; pos += 1; break;
    case 0xCD: NEED(2); v->kind = INT; v->u = be16(buf + pos); pos += 2; break;
    case 0xCE: NEED(4); v->kind = INT; v->u = be32(buf + pos); pos += 4; break;
    case 0xCF: NEED(8); v->kind = INT; v->u = be64(buf + pos); pos += 8; break;
    case 0xD0: case 0xD1: case 0xD2: case 0xD3: {
        int64_t s;
        n = (size_t)1 << (b - 0xD0); NEED(n);
        s = n == 1 ? (int8_t)buf[pos] : n == 2 ? (int16_t)be16(buf + pos)
            : n == 4 ? (int32_t)be32(buf + pos) : (int64_t)be64(buf + pos);
        v->kind = INT; v->u = (uint64_t)s; v->neg = s < 0; pos += n;
    } break;
    case 0xDC: NEED(2); v->kind = ARRAY; v->u = be16(buf + pos); pos += 2; break;
    case 0xDD: NEED(4); v->kind = ARRAY; v->u = be32(buf + pos); pos += 4; break;
    case 0xDE: NEED(2); v->kind = MAP; v->u = be16(buf + pos); pos += 2; break;
    case 0xDF: NEED(4); v->kind = MAP; v->u = be32(buf + pos); pos += 4; break;
    default: return E_RESERVED; /* 0xC1 */
    }
#undef NEED
    *ppos = pos;
    return E_OK;
}

static int skip_items(const uint8_t *buf, size_t end, size_t *ppos, uint64_t n) {
    Val v;
    while (n) {
        int rc = read_value(buf, end, ppos, &v);
        if (rc) return rc;
        n--;
        if (v.kind == ARRAY) n += v.u;
        else if (v.kind == MAP) n += 2 * v.u;
    }
    return E_OK;
}

static int read_scalar(const uint8_t *buf, size_t end, size_t *ppos, Val *v) {
    int rc = read_value(buf, end, ppos, v);
    if (rc) return rc;
    if (v->kind == ARRAY) return skip_items(buf, end, ppos, v->u);
    if (v->kind == MAP) return skip_items(buf, end, ppos, 2 * v->u);
    return E_OK;
}

/* a wire time in ns: -1 not a time, -2 invalid, INT64_MAX past the clamp */
static int64_t time_ns(const uint8_t *buf, const Val *v) {
    if (v->kind == INT) {
        if (v->neg) return -2;
        if (v->u >= MS_THRESHOLD) return v->u > MS_CLAMP ? INT64_MAX : (int64_t)v->u * NS_PER_MS;
        return v->u > SEC_CLAMP ? INT64_MAX : (int64_t)v->u * NS_PER_S;
    }
    if (v->kind == FLOAT) {
        double x = v->f;
        if (isnan(x) || isinf(x) || x < 0) return -2;
        if (x >= 1e11) {
            if (x >= (double)MS_CLAMP + 1.0) return INT64_MAX;
            double w = (double)(int64_t)x;
            return (int64_t)w * NS_PER_MS + (int64_t)((x - w) * 1e6);
        }
        if (x >= (double)SEC_CLAMP + 1.0) return INT64_MAX;
        double w = (double)(int64_t)x;
        return (int64_t)w * NS_PER_S + (int64_t)((x - w) * 1e9);
    }
    if (v->kind == EXT) {
        uint64_t raw, nsec;
        int64_t sec;
        if (v->ext_type != -1) return -1;
        if (v->len == 4) return (int64_t)be32(buf + v->off) * NS_PER_S;
        if (v->len == 8) {
            raw = be64(buf + v->off); nsec = raw >> 34; sec = (int64_t)(raw & 0x3FFFFFFFFULL);
        } else if (v->len == 12) {
            nsec = be32(buf + v->off); sec = (int64_t)be64(buf + v->off + 4);
        } else {
            return -1;
        }
        if (sec < 0 || nsec > 999999999ULL) return -2;
        if ((uint64_t)sec > SEC_CLAMP) return INT64_MAX;
        return sec * NS_PER_S + (int64_t)nsec;
    }
    return -1;
}

static int whole_number(const Val *v, uint64_t *out) {
    if (v->kind == INT) {
        if (v->neg) return 0;
        *out = v->u;
        return 1;
    }
    if (v->kind == FLOAT) {
        double x = v->f;
        if (!(x >= 0.0 && x < 18446744073709551616.0)) return 0;
        if (x < 4503599627370496.0 && (double)(int64_t)x != x) return 0;
        *out = (uint64_t)x;
        return 1;
    }
    return 0;
}

/* a battery or rssi reading in [low, high], stored in tenths */
static int number(const Val *v, int low, int high, int16_t *out) {
    if (v->kind == INT) {
        int64_t s;
        if (v->neg) {
            s = (int64_t)v->u;
            if (s < low || s > high) return 0;
        } else {
            if (v->u > (uint64_t)high || (int64_t)v->u < low) return 0;
            s = (int64_t)v->u;
        }
        *out = (int16_t)(s * 10);
        return 1;
    }
    if (v->kind == FLOAT) {
        double x = v->f;
        if (isnan(x) || !(low <= x && x <= high)) return 0;
        volatile double k = 6755399441055744.0;  /* round half to even, as the engine */
        *out = (int16_t)((x * 10.0 + k) - k);
        return 1;
    }
    return 0;
}

/* ---- one frame ------------------------------------------------------------------------------ */
typedef struct {
    int64_t future_max, old_max, closed_max;
    uint64_t seed;
} Limits;

/* what parsing leaves of one frame */
typedef struct {
    int64_t ts;
    uint64_t sec;      /* ts = sec * 1e9 + sub (accepted frames have ts >= 0) */
    uint32_t sub;
    uint64_t hash;
    const uint8_t *key;
    uint8_t len, reason, warn, status;
    int16_t battery, rssi;
} Parsed;

/* integer ids written out in decimal (the keys of frames off the fast path point here) */
typedef struct { uint8_t *side; size_t side_len; long n_slow; } Side;

/* any frame: the general walk. Returns the position after the frame, 0 if malformed. */
NOINL size_t frame_slow(const uint8_t *buf, size_t end, size_t pos, const Limits *lim,
                        Parsed *fr, Side *sd) {
    Val head, fields[5], junk;
    unsigned have = 0;
    sd->n_slow++;
    fr->hash = 0;
    if (read_value(buf, end, &pos, &head)) return 0;
    fr->reason = 0;
    fr->warn = 0;
    if (head.kind == ARRAY) {
        for (uint64_t j = 0; j < head.u; j++) {
            if (read_scalar(buf, end, &pos, j < 5 ? &fields[j] : &junk)) return 0;
            if (j < 5) have |= 1u << j;
        }
    } else {
        /* map frames are not part of this floor: walked and rejected as not a frame */
        if (head.kind == MAP && skip_items(buf, end, &pos, 2 * head.u)) return 0;
        fr->reason = R_NOT_FRAME;
        return pos;
    }
    Val *f = &fields[0];
    uint64_t whole;
    if (!(have & 1) || f->kind == NIL) { fr->reason = R_DEV_MISSING; return pos; }
    if (f->kind == STR) {
        if (f->len == 0) { fr->reason = R_DEV_EMPTY; return pos; }
        if (f->len > MAX_DEV_LEN) { fr->reason = R_DEV_LONG; return pos; }
        if (!utf8_ok(buf + f->off, f->len)) { fr->reason = R_DEV_TYPE; return pos; }
        fr->key = buf + f->off;
        fr->len = (uint8_t)f->len;
    } else if (whole_number(f, &whole)) {
        uint8_t tmp[20];
        int n = 0;
        do { tmp[n++] = (uint8_t)('0' + whole % 10); whole /= 10; } while (whole);
        uint8_t *out = sd->side + sd->side_len;
        for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
        sd->side_len += n;
        fr->key = out;
        fr->len = (uint8_t)n;
    } else {
        fr->reason = R_DEV_TYPE;
        return pos;
    }
    f = &fields[1];
    if (!(have & 2) || f->kind == NIL) { fr->reason = R_TS_MISSING; return pos; }
    int64_t t = time_ns(buf, f);
    if (t < 0) { fr->reason = t == -1 ? R_TS_TYPE : R_TS_INVALID; return pos; }
    if (t > lim->future_max) { fr->reason = R_TS_FUTURE; return pos; }
    if (t <= lim->old_max) { fr->reason = R_TS_OLD; return pos; }
    if (t <= lim->closed_max) { fr->reason = R_TS_CLOSED; return pos; }
    fr->ts = t;
    fr->sec = (uint64_t)t / NS_PER_S;
    fr->sub = (uint32_t)((uint64_t)t % NS_PER_S);
    uint64_t acc;
    fr->hash = upt_hash_acc(fr->key, fr->len, lim->seed, &acc);
    unsigned warn = 0;
    int16_t value;
    fr->status = 0;
    f = &fields[2];
    if ((have & 4) && f->kind != NIL) {
        if (whole_number(f, &whole) && whole <= 255) fr->status = (uint8_t)whole;
        else warn |= W_STATUS;
    }
    fr->battery = BATT_NONE;
    f = &fields[3];
    if ((have & 8) && f->kind != NIL) {
        if (number(f, 0, 100, &value)) fr->battery = value;
        else warn |= W_BATTERY;
    }
    fr->rssi = RSSI_NONE;
    f = &fields[4];
    if ((have & 16) && f->kind != NIL) {
        if (number(f, -200, 0, &value)) fr->rssi = value;
        else warn |= W_RSSI;
    }
    fr->warn = (uint8_t)warn;
    return pos;
}

/* more than the longest frame the fast path takes, as in the engine */
#define FAST_SPAN 160

/* The usual compact frame straight from the bytes: 0x92..0x95, an ASCII fixstr/str8 id,
   a uint32/uint64 ts, fixint status, fixint battery or nil, negative fixint/int8/0 rssi or nil.
   A ts outside the window is judged here too (the frame is still walked to its end).
   Anything else goes to frame_slow. Returns the position after the frame, 0 if malformed. */
INL size_t frame_fast(const uint8_t *buf, size_t end, size_t pos, const Limits *lim, Parsed *fr,
                      Side *sd) {
    const uint8_t *p = buf + pos;
    unsigned b0 = p[0];
    if (UNLIKELY(b0 - 0x92u > 3u || end - pos < FAST_SPAN))
        return frame_slow(buf, end, pos, lim, fr, sd);
    unsigned n_items = b0 - 0x90u;
    unsigned c = p[1];
    size_t n, off;
    if (LIKELY(c - 0xA1u <= 0x1Eu)) { n = c & 0x1F; off = 2; }
    else if (c == 0xD9 && p[2] - 1u < MAX_DEV_LEN) { n = p[2]; off = 3; }
    else return frame_slow(buf, end, pos, lim, fr, sd);
    uint64_t acc;
    fr->hash = upt_hash_acc(p + off, n, lim->seed, &acc);
    if (UNLIKELY(!ASCII(acc))) return frame_slow(buf, end, pos, lim, fr, sd);
    fr->key = p + off;
    fr->len = (uint8_t)n;
    const uint8_t *q = p + off + n;
    int64_t t;
    unsigned tb = q[0];
    if (LIKELY(tb == 0xCE)) {
        uint32_t u = be32(q + 1);
        fr->sec = u; fr->sub = 0; t = (int64_t)u * NS_PER_S;
        q += 5;
    } else if (tb == 0xCF) {
        uint64_t u = be64(q + 1);
        if (u >= MS_THRESHOLD) {
            if (u > MS_CLAMP) return frame_slow(buf, end, pos, lim, fr, sd);
            t = (int64_t)u * NS_PER_MS;
            fr->sec = u / 1000; fr->sub = (uint32_t)(u % 1000) * 1000000u;
        } else {
            if (u > SEC_CLAMP) return frame_slow(buf, end, pos, lim, fr, sd);
            t = (int64_t)u * NS_PER_S; fr->sec = u; fr->sub = 0;
        }
        q += 9;
    } else {
        return frame_slow(buf, end, pos, lim, fr, sd);
    }
    fr->ts = t;
    unsigned reason = 0;
    if (UNLIKELY(t > lim->future_max)) reason = R_TS_FUTURE;
    else if (UNLIKELY(t <= lim->old_max)) reason = R_TS_OLD;
    else if (UNLIKELY(t <= lim->closed_max)) reason = R_TS_CLOSED;
    fr->status = 0;
    fr->battery = BATT_NONE;
    fr->rssi = RSSI_NONE;
    if (n_items >= 3) {
        unsigned s = q[0];
        if (UNLIKELY(s > 0x7F)) return frame_slow(buf, end, pos, lim, fr, sd);
        fr->status = (uint8_t)s;
        q += 1;
        if (n_items >= 4) {
            unsigned bb = q[0];
            if (LIKELY(bb <= 100)) fr->battery = (int16_t)(bb * 10);
            else if (bb != 0xC0) return frame_slow(buf, end, pos, lim, fr, sd);
            q += 1;
            if (n_items == 5) {
                unsigned r = q[0];
                if (r >= 0xE0) { fr->rssi = (int16_t)(((int)r - 0x100) * 10); q += 1; }
                else if (r == 0xD0 && q[1] >= 0x80) {
                    fr->rssi = (int16_t)(((int)q[1] - 0x100) * 10); q += 2;
                }
                else if (r == 0) { fr->rssi = 0; q += 1; }
                else if (r == 0xC0) q += 1;
                else return frame_slow(buf, end, pos, lim, fr, sd);
            }
        }
    }
    fr->reason = (uint8_t)reason;
    fr->warn = 0;
    return (size_t)(q - buf);
}

/* ---- the floor: one id table, one state, the batches, the columns of one batch ------------- */
typedef struct { uint8_t *p; size_t len; int64_t now_ns; } Body;

typedef struct {
    Interner devs;
    Live live;
    Limits lim;
    Side side;
    Body *bodies;
    size_t n_bodies, cap_bodies;
    /* the columns of one batch (accepted frames) and each frame's verdict */
    uint8_t *reasons, *warn;
    uint32_t *cdev;
    int64_t *cts;
    uint8_t *cstatus;
    int16_t *cbatt, *crssi;
    uint16_t *cfw;
    /* "two": the keys waiting for their lookup; "three": pass one's records */
    uint64_t *khash;
    const uint8_t **kptr;
    uint8_t *klen;
    Parsed *recs;
    /* totals since the last floor_run began */
    long accepted, rejected, warnings, unknown, n_frames;
    uint64_t gw_len_sum, seq_sum;
} Floor;

enum { V_FUSED, V_TWO, V_THREE, V_GROUPED, N_VARIANTS };

#define LOOKUP_LAG 8   /* "two": lookups this many accepted frames behind the parse */
#define AHEAD 16       /* slot / state prefetch distance of the column loops */
#define GROUP 16       /* "grouped": frames per group */

INL void prefetch_state(const Live *L, uint32_t d) {
    PREFETCH_W(&L->states[d]);
    PREFETCH_W((const char *)&L->states[d] + sizeof(DevState) - 1);
}

/* fused (group 0) and grouped (group 1): one loop over the frames. The columns and the state
   are reached through restrict locals. */
INL int frames_one_loop(Floor *restrict F, const uint8_t *restrict buf, size_t end, size_t *ppos,
                        uint64_t n, int group) {
    size_t pos = *ppos;
    long k = 0, rej = 0, wn = 0, unk = 0;
    Live *restrict L = &F->live;
    const Interner it = F->devs;
    const Limits lim = F->lim;
    uint8_t *restrict reasons = F->reasons, *restrict warn = F->warn;
    uint8_t *restrict cstatus = F->cstatus;
    uint32_t *restrict cdev = F->cdev;
    int64_t *restrict cts = F->cts;
    int16_t *restrict cbatt = F->cbatt, *restrict crssi = F->crssi;
    uint16_t *restrict cfw = F->cfw;
    if (!group) {
        for (uint64_t i = 0; i < n; i++) {
            Parsed fr;
            PREFETCH(buf + pos + 1024);
            pos = frame_fast(buf, end, pos, &lim, &fr, &F->side);
            if (UNLIKELY(!pos)) return E_TRUNC;
            unsigned reason = fr.reason;
            int64_t idx = -1;
            if (LIKELY(!reason)) {
                idx = ifind(&it, fr.hash, fr.key, fr.len);
                if (UNLIKELY(idx < 0)) { reason = R_UNKNOWN_DEV; unk++; }
            }
            reasons[i] = (uint8_t)reason;
            if (UNLIKELY(reason)) { warn[i] = 0; rej++; continue; }
            warn[i] = fr.warn;
            if (UNLIKELY(fr.warn)) wn += __builtin_popcount(fr.warn);
            cdev[k] = (uint32_t)idx; cts[k] = fr.ts; cstatus[k] = fr.status;
            cbatt[k] = fr.battery; crssi[k] = fr.rssi; cfw[k] = 0;
            k++;
            if (UNLIKELY(apply_sec(L, (uint32_t)idx, fr.sec, fr.sub, fr.status, fr.battery,
                                   fr.rssi)))
                return E_NOMEM;
        }
    } else {
        Parsed fr[GROUP];
        int64_t idx[GROUP];
        uint64_t i = 0;
        while (i < n) {
            unsigned m = n - i < GROUP ? (unsigned)(n - i) : GROUP;
            for (unsigned g = 0; g < m; g++) {
                PREFETCH(buf + pos + 1024);
                pos = frame_fast(buf, end, pos, &lim, &fr[g], &F->side);
                if (UNLIKELY(!pos)) return E_TRUNC;
                PREFETCH(&it.slots[fr[g].hash & it.mask]);
            }
            for (unsigned g = 0; g < m; g++) {
                idx[g] = -1;
                if (LIKELY(!fr[g].reason)) {
                    idx[g] = ifind(&it, fr[g].hash, fr[g].key, fr[g].len);
                    if (LIKELY(idx[g] >= 0)) prefetch_state(L, (uint32_t)idx[g]);
                }
            }
            for (unsigned g = 0; g < m; g++, i++) {
                unsigned reason = fr[g].reason;
                if (LIKELY(!reason) && UNLIKELY(idx[g] < 0)) { reason = R_UNKNOWN_DEV; unk++; }
                reasons[i] = (uint8_t)reason;
                if (UNLIKELY(reason)) { warn[i] = 0; rej++; continue; }
                warn[i] = fr[g].warn;
                if (UNLIKELY(fr[g].warn)) wn += __builtin_popcount(fr[g].warn);
                cdev[k] = (uint32_t)idx[g]; cts[k] = fr[g].ts; cstatus[k] = fr[g].status;
                cbatt[k] = fr[g].battery; crssi[k] = fr[g].rssi; cfw[k] = 0;
                k++;
                if (UNLIKELY(apply_sec(L, (uint32_t)idx[g], fr[g].sec, fr[g].sub, fr[g].status,
                                       fr[g].battery, fr[g].rssi)))
                    return E_NOMEM;
            }
        }
    }
    F->accepted += k; F->rejected += rej; F->warnings += wn; F->unknown += unk;
    *ppos = pos;
    return E_OK;
}

/* the apply loop of "two" and "three" (the engine's): the columns, states prefetched ahead */
INL int apply_columns(Floor *F, long k) {
    Live *L = &F->live;
    for (long j = 0; j < k; j++) {
        if (j + AHEAD < k && F->cdev[j + AHEAD] != UNKNOWN_DEV)
            prefetch_state(L, F->cdev[j + AHEAD]);
        uint32_t d = F->cdev[j];
        if (UNLIKELY(d == UNKNOWN_DEV)) continue;
        if (apply_one(L, d, F->cts[j], F->cstatus[j], F->cbatt[j], F->crssi[j])) return E_NOMEM;
    }
    return E_OK;
}

/* "two": the lookup of accepted frame j (a column index), its state prefetched. An unknown id
   is counted and left out of apply (its frame's verdict stays 0: the column does not know
   which frame it came from; the check requires that no id is unknown). */
INL void lookup_column(Floor *F, long j) {
    int64_t idx = ifind(&F->devs, F->khash[j], F->kptr[j], F->klen[j]);
    if (UNLIKELY(idx < 0)) {
        F->unknown++; F->accepted--; F->rejected++;
        idx = UNKNOWN_DEV;
    } else {
        prefetch_state(&F->live, (uint32_t)idx);
    }
    F->cdev[j] = (uint32_t)idx;
}

INL int frames_two(Floor *F, const uint8_t *buf, size_t end, size_t *ppos, uint64_t n) {
    size_t pos = *ppos;
    long k = 0, rej = 0, wn = 0;
    Parsed fr;
    for (uint64_t i = 0; i < n; i++) {
        PREFETCH(buf + pos + 1024);
        pos = frame_fast(buf, end, pos, &F->lim, &fr, &F->side);
        if (UNLIKELY(!pos)) return E_TRUNC;
        unsigned reason = fr.reason;
        F->reasons[i] = (uint8_t)reason;
        if (UNLIKELY(reason)) { F->warn[i] = 0; rej++; continue; }
        F->warn[i] = fr.warn;
        if (UNLIKELY(fr.warn)) wn += __builtin_popcount(fr.warn);
        F->khash[k] = fr.hash; F->kptr[k] = fr.key; F->klen[k] = fr.len;
        PREFETCH(&F->devs.slots[fr.hash & F->devs.mask]);
        F->cts[k] = fr.ts; F->cstatus[k] = fr.status;
        F->cbatt[k] = fr.battery; F->crssi[k] = fr.rssi; F->cfw[k] = 0;
        if (k >= LOOKUP_LAG) lookup_column(F, k - LOOKUP_LAG);
        k++;
    }
    for (long j = k - LOOKUP_LAG < 0 ? 0 : k - LOOKUP_LAG; j < k; j++) lookup_column(F, j);
    F->accepted += k; F->rejected += rej; F->warnings += wn;
    *ppos = pos;
    return apply_columns(F, k);
}

/* "three", the engine's shape: pass one to records, pass two lookups to columns, apply */
INL int frames_three(Floor *F, const uint8_t *buf, size_t end, size_t *ppos, uint64_t n) {
    size_t pos = *ppos;
    Parsed *R = F->recs;
    for (uint64_t i = 0; i < n; i++) {
        PREFETCH(buf + pos + 1024);
        pos = frame_fast(buf, end, pos, &F->lim, &R[i], &F->side);
        if (UNLIKELY(!pos)) return E_TRUNC;
    }
    long k = 0, rej = 0, wn = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (i + AHEAD < n && R[i + AHEAD].reason == 0)
            PREFETCH(&F->devs.slots[R[i + AHEAD].hash & F->devs.mask]);
        const Parsed *fr = &R[i];
        unsigned reason = fr->reason;
        int64_t idx = -1;
        if (!reason) {
            idx = ifind(&F->devs, fr->hash, fr->key, fr->len);
            if (UNLIKELY(idx < 0)) { reason = R_UNKNOWN_DEV; F->unknown++; }
        }
        F->reasons[i] = (uint8_t)reason;
        if (reason) { F->warn[i] = 0; rej++; continue; }
        F->warn[i] = fr->warn;
        if (UNLIKELY(fr->warn)) wn += __builtin_popcount(fr->warn);
        F->cdev[k] = (uint32_t)idx; F->cts[k] = fr->ts; F->cstatus[k] = fr->status;
        F->cbatt[k] = fr->battery; F->crssi[k] = fr->rssi; F->cfw[k] = 0;
        k++;
    }
    F->accepted += k; F->rejected += rej; F->warnings += wn;
    *ppos = pos;
    return apply_columns(F, k);
}

INL int key_is(const uint8_t *k, size_t n, const char *s, size_t m) {
    return n == m && memcmp(k, s, m) == 0;
}

/* one batch body: the batch map, its keys, the frames array in the variant's shape */
INL int do_batch(Floor *F, const Body *B, int variant) {
    const uint8_t *buf = B->p;
    size_t end = B->len, pos = 0;
    Val top, key, v;
    int rc, have_gw = 0, have_frames = 0;
    F->lim.future_max = B->now_ns + 300 * NS_PER_S;
    F->lim.old_max = B->now_ns - 7 * 86400 * NS_PER_S - 1;
    F->lim.closed_max = -1;
    F->side.side_len = 0;
    if ((rc = read_value(buf, end, &pos, &top))) return rc;
    if (top.kind != MAP) return E_NOT_MAP;
    for (uint64_t i = 0; i < top.u; i++) {
        if ((rc = read_scalar(buf, end, &pos, &key))) return rc;
        const uint8_t *k = key.kind == STR ? buf + key.off : buf;
        size_t kl = key.kind == STR ? key.len : 0;
        if (key_is(k, kl, "frames", 6)) {
            if ((rc = read_value(buf, end, &pos, &v))) return rc;
            if (v.kind == ARRAY) {
                if (v.u > MAX_FRAMES) return E_FRAMES;
                F->n_frames += v.u;
                switch (variant) {
                case V_FUSED: rc = frames_one_loop(F, buf, end, &pos, v.u, 0); break;
                case V_TWO: rc = frames_two(F, buf, end, &pos, v.u); break;
                case V_THREE: rc = frames_three(F, buf, end, &pos, v.u); break;
                case V_GROUPED: rc = frames_one_loop(F, buf, end, &pos, v.u, 1); break;
                default: rc = E_VARIANT;
                }
                if (rc) return rc;
                have_frames = 1;
            } else {
                have_frames = 0;
                if (v.kind == MAP && (rc = skip_items(buf, end, &pos, 2 * v.u))) return rc;
            }
            continue;
        }
        if ((rc = read_scalar(buf, end, &pos, &v))) return rc;
        if (key_is(k, kl, "v", 1)) {
            uint64_t w;
            if (!(whole_number(&v, &w) && w == 1)) return E_VERSION;
        } else if (key_is(k, kl, "gateway", 7)) {
            if (v.kind != STR || v.len == 0 || v.len > 64 || !utf8_ok(buf + v.off, v.len))
                return E_GW;
            have_gw = 1;
            F->gw_len_sum += v.len;
        } else if (key_is(k, kl, "seq", 3)) {
            uint64_t w;
            if (v.kind != NIL) {
                if (!whole_number(&v, &w)) return E_SEQ;
                F->seq_sum += w;
            }
        }
    }
    if (pos != end) return E_TRAILING;
    if (!have_gw) return E_GW;
    if (!have_frames) return E_FRAMES;
    return E_OK;
}

/* ---- entry points (bench/floor_engine.py) --------------------------------------------------- */

EXPORT void floor_close(Floor *F);

/* A floor over n ids (id i is keys[offs[i]:offs[i + 1]]), every device on heartbeat_s, slots
   of slot_s seconds (a divisor of a day). NULL if out of memory or slot_s is not such. */
EXPORT Floor *floor_open(size_t n, const uint8_t *keys, const uint32_t *offs, int slot_s,
                         int heartbeat_s) {
    if (slot_s <= 0 || 86400 % slot_s || heartbeat_s <= 0 || n >= UNKNOWN_DEV) return NULL;
    Floor *F = calloc(1, sizeof *F);
    if (!F) return NULL;
    int ok = intern_all(&F->devs, keys, offs, n, 0x9E3779B97F4A7C15ULL) == E_OK;
    F->lim.seed = F->devs.seed;
    F->live.states = calloc(n ? n : 1, sizeof(DevState));
    F->live.slot_ns = (int64_t)slot_s * NS_PER_S;
    F->live.spd = 86400 / slot_s;
    F->live.magic = ((1ULL << 34) + (uint64_t)slot_s - 1) / (uint64_t)slot_s;
    for (uint64_t x = 0; x < 86400; x++)  /* as the engine checks its reciprocal */
        if (((x * F->live.magic) >> 34) != x / (uint64_t)slot_s) ok = 0;
    if (F->live.states)
        for (size_t i = 0; i < n; i++) F->live.states[i].hb_s = (uint32_t)heartbeat_s;
    F->side.side = malloc(MAX_FRAMES * 20 + 64);
    F->reasons = malloc(MAX_FRAMES);
    F->warn = malloc(MAX_FRAMES);
    F->cdev = malloc(MAX_FRAMES * sizeof(uint32_t));
    F->cts = malloc(MAX_FRAMES * sizeof(int64_t));
    F->cstatus = malloc(MAX_FRAMES);
    F->cbatt = malloc(MAX_FRAMES * sizeof(int16_t));
    F->crssi = malloc(MAX_FRAMES * sizeof(int16_t));
    F->cfw = malloc(MAX_FRAMES * sizeof(uint16_t));
    F->khash = malloc(MAX_FRAMES * sizeof(uint64_t));
    F->kptr = malloc(MAX_FRAMES * sizeof(const uint8_t *));
    F->klen = malloc(MAX_FRAMES);
    F->recs = malloc(MAX_FRAMES * sizeof(Parsed));
    if (!ok || !F->live.states || !F->side.side || !F->reasons || !F->warn || !F->cdev || !F->cts
        || !F->cstatus || !F->cbatt || !F->crssi || !F->cfw || !F->khash || !F->kptr || !F->klen
        || !F->recs) {
        floor_close(F);
        return NULL;
    }
    return F;
}

EXPORT void floor_close(Floor *F) {
    if (!F) return;
    for (size_t i = 0; i < F->n_bodies; i++) free(F->bodies[i].p);
    free(F->bodies);
    free(F->devs.slots); free(F->devs.offs); free(F->devs.arena);
    free(F->live.states);
    free(F->live.ov.iv); free(F->live.ov.faults); free(F->live.ov.recs);
    free(F->side.side); free(F->reasons); free(F->warn); free(F->cdev); free(F->cts);
    free(F->cstatus); free(F->cbatt); free(F->crssi); free(F->cfw); free(F->khash);
    free(F->kptr); free(F->klen); free(F->recs);
    free(F);
}

/* Keep a copy of a batch body (each in its own buffer, as Python bytes are) to be decoded at
   server time now_ns. Returns its index, -1 if out of memory. */
EXPORT long floor_add_batch(Floor *F, const uint8_t *body, size_t len, int64_t now_ns) {
    if (F->n_bodies == F->cap_bodies && grow((void **)&F->bodies, &F->cap_bodies, sizeof(Body)))
        return -1;
    uint8_t *p = malloc(len ? len : 1);
    if (!p) return -1;
    memcpy(p, body, len);
    F->bodies[F->n_bodies] = (Body){p, len, now_ns};
    return (long)F->n_bodies++;
}

/* An empty state: every device without frames, the overflow vectors empty. */
EXPORT void floor_reset(Floor *F) {
    for (size_t i = 0; i < F->devs.count; i++) {
        F->live.states[i].frames = 0;
        F->live.states[i].run_n = 0;
    }
    F->live.ov.n_iv = F->live.ov.n_faults = F->live.ov.n_recs = 0;
}

/* Forget the coverage intervals and fault slots pushed so far (between timed repeats, so that
   the vectors do not grow without end; the engine's bench never drains either, but runs far
   fewer frames). */
EXPORT void floor_forget(Floor *F) { F->live.ov.n_iv = F->live.ov.n_faults = 0; }

/* Decode and apply batches [first, last) `passes` times in the variant's shape. Returns the
   frames accepted, or minus a batch error (E_*). */
EXPORT long floor_run(Floor *F, int variant, size_t first, size_t last, int passes) {
    if (variant < 0 || variant >= N_VARIANTS) return -E_VARIANT;
    if (last > F->n_bodies) last = F->n_bodies;
    F->accepted = F->rejected = F->warnings = F->unknown = F->n_frames = 0;
    F->side.n_slow = 0;
    for (int p = 0; p < passes; p++)
        for (size_t i = first; i < last; i++) {
            int rc = do_batch(F, &F->bodies[i], variant);
            if (rc) return -rc;
        }
    return F->accepted;
}

/* Counters of the last floor_run and sizes of the state. */
EXPORT long floor_stat(const Floor *F, int which) {
    switch (which) {
    case 0: return F->accepted;
    case 1: return F->rejected;
    case 2: return F->warnings;
    case 3: return F->unknown;
    case 4: return F->n_frames;
    case 5: return F->side.n_slow;
    case 6: return (long)F->live.ov.n_faults;
    case 7: return (long)F->live.ov.n_iv;
    case 8: return (long)F->live.ov.n_recs;
    default: return -1;
    }
}

/* bit i of a packed row (bit i & 7 of byte i >> 3, as DayDelta's bitmaps); 0 if i is not in
   the day */
INL int set_bit(uint8_t *row, int64_t i, int64_t spd) {
    if (i < 0 || i >= spd) return 0;
    row[i >> 3] |= (uint8_t)(1u << (i & 7));
    return 1;
}

#define N_FIELDS 15

/* The live state, for the check: per device (the table's order) N_FIELDS int64 (day, then the
   counters of STATS_DTYPE: rssi_sum, frames, fault_frames, rssi_n, first_ms, last_ms,
   batt_ms, rssi_ms, fw_ms, batt_last, batt_min, rssi_last, fw_last, last_status), all 0 for
   a device without frames, and its coverage and fault bitmaps of the day (width bytes a row,
   zeroed by the caller). Returns 0; 1 if rows went to the day records (a drain would merge
   them: the check does not); 2 if a bit falls outside the device's day; 3 if width is short. */
EXPORT int floor_export(const Floor *F, int64_t *rows, uint8_t *cov, uint8_t *fault,
                        size_t width) {
    const Live *L = &F->live;
    const int64_t spd = L->spd;
    if (width * 8 < (size_t)spd) return 3;
    if (L->ov.n_recs) return 1;
    for (size_t i = 0; i < F->devs.count; i++) {
        const DevState *s = &L->states[i];
        int64_t *o = rows + N_FIELDS * i;
        if (!s->frames) {
            memset(o, 0, N_FIELDS * sizeof(int64_t));
            continue;
        }
        o[0] = s->day; o[1] = s->rssi_sum; o[2] = s->frames; o[3] = s->fault_frames;
        o[4] = s->rssi_n; o[5] = s->first_ms; o[6] = s->last_ms; o[7] = s->batt_ms;
        o[8] = s->rssi_ms; o[9] = s->fw_ms; o[10] = s->batt_last; o[11] = s->batt_min;
        o[12] = s->rssi_last; o[13] = s->fw_last; o[14] = s->last_status;
        for (int64_t j = s->run_a; j < (int64_t)s->run_a + s->run_n; j++)
            if (!set_bit(cov + width * i, j, spd)) return 2;
    }
    for (size_t j = 0; j < L->ov.n_iv; j++) {
        const Interval *v = &L->ov.iv[j];
        int64_t base = (int64_t)L->states[v->dev].day * spd;
        for (int64_t x = v->a; x < v->b; x++)
            if (!set_bit(cov + width * v->dev, x - base, spd)) return 2;
    }
    for (size_t j = 0; j < L->ov.n_faults; j++) {
        const Fault *f = &L->ov.faults[j];
        int64_t base = (int64_t)L->states[f->dev].day * spd;
        if (!set_bit(fault + width * f->dev, f->slot - base, spd)) return 2;
    }
    return 0;
}

/* n rounds of 4 dependent adds (one a cycle): timed by the caller, the core's clock now */
EXPORT uint64_t floor_spin(uint64_t n) {
    uint64_t x = 0;
    for (uint64_t i = 0; i < n; i++) {
        x += 1; __asm__ volatile("" : "+r"(x));
        x += 1; __asm__ volatile("" : "+r"(x));
        x += 1; __asm__ volatile("" : "+r"(x));
        x += 1; __asm__ volatile("" : "+r"(x));
    }
    return x;
}
