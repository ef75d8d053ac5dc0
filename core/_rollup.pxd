# cython: language_level=3
"""C-level declarations of the Cython rollup engine (see _rollup.pyx)."""

from cpython.pythread cimport PyThread_type_lock
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t


# --- C helpers -------------------------------------------------------------------------------

# Byte loads, the hash, UTF-8 checks and the wire constants, in C (core/_rollup_wire.h).
cdef extern from "_rollup_wire.h":
    bint UPT_LIKELY(bint) noexcept nogil
    bint UPT_UNLIKELY(bint) noexcept nogil
    void UPT_PREFETCH(const void *) noexcept nogil
    void UPT_PREFETCH_W(const void *) noexcept nogil
    uint32_t upt_be16(const unsigned char *) noexcept nogil
    uint32_t upt_be32(const unsigned char *) noexcept nogil
    uint64_t upt_be64(const unsigned char *) noexcept nogil
    uint64_t upt_load64(const unsigned char *) noexcept nogil
    double upt_f32(uint32_t) noexcept nogil
    double upt_f64(uint64_t) noexcept nogil
    uint64_t upt_hash(const unsigned char *, size_t, uint64_t) noexcept nogil
    uint64_t upt_hash_acc(const unsigned char *, size_t, uint64_t, uint64_t *) noexcept nogil
    bint UPT_ASCII(uint64_t) noexcept nogil
    bint upt_utf8_ok(const unsigned char *, size_t) noexcept nogil
    bint upt_eq(const unsigned char *, const unsigned char *, size_t) noexcept nogil
    double upt_round_even(double) noexcept nogil
    double upt_floor_pos(double) noexcept nogil
    int upt_utoa(uint64_t, unsigned char *) noexcept nogil
    const int64_t UPT_INT64_MAX, UPT_INT32_MIN, UPT_INT32_MAX, UPT_UINT32_MAX
    const uint64_t UPT_MASK32, UPT_MASK34, UPT_MS_THRESHOLD, UPT_SEC_CLAMP, UPT_MS_CLAMP
    const int64_t UPT_S_PER_DAY, UPT_NS_PER_DAY, UPT_NS_PER_S, UPT_NS_PER_MS, UPT_MS_PER_DAY


# --- wire ------------------------------------------------------------------------------------

# One msgpack value head, as read by read_value(). Scalars and str/bin/ext payloads are
# consumed; for arrays and maps only the header is, and ``u`` is the item count.
ctypedef struct Val:
    int kind            # NIL .. MAP, the kinds of _rollup_py.py
    int neg             # INT: the value is negative and ``u`` holds it as two's complement
    int ext_type        # EXT: the signed type byte
    uint64_t u          # INT/BOOL value, ARRAY/MAP item count
    double f            # FLOAT value (float32 widened exactly)
    Py_ssize_t off      # STR/BIN/EXT payload offset into the body
    Py_ssize_t len      # STR/BIN/EXT payload length


# The verdict of pass one on one frame. Nothing in it points at Python objects: the device
# key is (offset, length) into the body, or into the side buffer for an integer device id.
ctypedef struct Frame:
    int64_t ts
    uint64_t dev_hash
    uint64_t fw_hash
    Py_ssize_t dev_off
    Py_ssize_t fw_off
    int16_t battery
    int16_t rssi
    uint8_t reason
    uint8_t warn
    uint8_t status
    uint8_t dev_side    # the key is in the side buffer (decimal text of an integer id)
    uint8_t dev_len     # 1..128
    uint8_t fw_len      # 0 (none) or 1..32


# Limits of one decode call, every bound clamped into int64 so that comparisons with a
# timestamp in [0, INT64_MAX] give what Python's unbounded integers give.
ctypedef struct Limits:
    int64_t max_frames      # -1 .. 2**40
    int64_t future_max      # a ts above this is in the future
    int64_t old_max         # a ts at or below this is older than the backfill window
    int64_t closed_max      # a ts at or below this falls in a closed month


# Pass one's scratch: the frame records and the side buffer, owned by one decode call.
ctypedef struct Scratch:
    Frame *frames
    Py_ssize_t n_frames
    Py_ssize_t cap
    unsigned char *side
    Py_ssize_t side_len
    Py_ssize_t side_cap


# The batch map's header fields, as pass one leaves them.
ctypedef struct Header:
    int have_version
    int have_gateway
    int have_seq
    int have_sent
    int have_frames         # a ``frames`` array was read (the last ``frames`` key wins)
    int frames_kind         # kind of the last ``frames`` value (NIL if none)
    uint64_t too_many       # frame count of a refused ``frames`` array
    Val version
    Val gateway
    Val seq
    Val sent


# --- interning -------------------------------------------------------------------------------

# Byte strings to dense indexes: an open-addressing (linear probing) table of 64-bit slots
# (high 32 bits of the key's hash, index + 1; 0 is empty), keys back to back in an arena.
ctypedef struct Interner:
    uint64_t *slots
    size_t mask
    size_t count
    unsigned char *arena
    size_t arena_len
    size_t arena_cap
    size_t *offs            # key i is arena[offs[i]:offs[i + 1]]
    size_t offs_cap
    uint64_t seed


# --- live state ------------------------------------------------------------------------------

# A stats row exactly as core.dayblock.STATS_DTYPE lays it out (checked at import).
cdef packed struct StatsRow:
    int64_t rssi_sum
    uint32_t frames
    uint32_t fault_frames
    uint32_t rssi_n
    int32_t first_ms
    int32_t last_ms
    int32_t batt_ms
    int32_t rssi_ms
    int32_t fw_ms
    int16_t batt_last
    int16_t batt_min
    int16_t rssi_last
    uint16_t fw_last
    uint8_t last_status


# The hot state of one device: 60 bytes, its heartbeat included (under a cache line).
# ``frames == 0`` means the device holds nothing.
# The stats row is the one of day ``day``; the coverage run is the slots
# [day * slots_per_day + run_a, ... + run_n), kept relative to that day so it fits 32 bits.
# What does not fit here goes to the overflow vectors and is merged by drain().
ctypedef struct DevState:
    int32_t day
    int32_t run_a
    uint32_t run_n
    uint32_t hb_s           # heartbeat, seconds
    uint32_t frames
    uint32_t fault_frames
    int32_t rssi_sum        # flushed before it can overflow (rssi_n is at most 65,535)
    int32_t first_ms
    int32_t last_ms
    int32_t batt_ms
    int32_t rssi_ms
    int32_t fw_ms
    uint16_t rssi_n
    int16_t batt_last
    int16_t batt_min
    int16_t rssi_last
    uint16_t fw_last
    uint8_t last_status
    uint8_t _pad


ctypedef struct Interval:   # covered slots [a, b) of one device, absolute slot numbers
    uint32_t dev
    int64_t a
    int64_t b


ctypedef struct Fault:      # one fault slot of one device, absolute slot number
    uint32_t dev
    int64_t slot


ctypedef struct StatsRec:   # a stats row of one device-day that left (or never was in) the hot row
    uint32_t dev
    int32_t day
    StatsRow row


ctypedef struct Overflow:
    Interval *iv
    size_t n_iv
    size_t cap_iv
    Fault *faults
    size_t n_faults
    size_t cap_faults
    StatsRec *recs
    size_t n_recs
    size_t cap_recs


cdef class RollupC:
    cdef readonly int64_t slot_s
    cdef readonly int64_t slot_ns
    cdef readonly int64_t slots_per_day
    cdef readonly int64_t default_heartbeat_s
    cdef public int64_t device_cap
    cdef uint64_t _slot_magic       # floor(x / slot_s) == (x * magic) >> 34 for x < 86,400
    cdef PyThread_type_lock _lock
    cdef Interner _devices
    cdef Interner _firmware
    cdef DevState *_state
    cdef size_t _state_cap
    cdef Overflow _over
    cdef int _apply_locked(self, const uint32_t *pdev, const int64_t *pts,
                           const uint8_t *pstatus, const int16_t *pbattery,
                           const int16_t *prssi, const uint16_t *pfw,
                           Py_ssize_t n) noexcept nogil

    cdef _setup(self, int64_t slot_s, int64_t heartbeat_s, int64_t device_cap)
    cdef void _release_all(self) noexcept
    cdef void _acquire(self) noexcept
    cdef void _release(self) noexcept
    cdef list _names(self, Interner *it, start)
    cdef Py_ssize_t _dev_slot(self, dev) except -1
