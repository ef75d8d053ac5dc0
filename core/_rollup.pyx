# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False, cdivision=True
"""The Cython rollup engine: the fast twin of :class:`core._rollup_py.RollupPy`.

It makes exactly RollupPy's decisions on any input (tests/engine/test_differential.py holds it to
that); RollupPy is the specification, read it first. What differs is how:

* ``decode`` walks the msgpack bytes with C pointers. Pass one (``_rollup_wire.pxi``) judges
  every frame into a C record without creating a Python object and without touching the
  rollup, with the GIL released, so several threads may decode for one tenant at once.
  Pass two interns device ids and firmware strings in C hash tables (``_rollup_intern.pxi``)
  and fills the numpy columns, under the rollup's lock, still without the GIL.
* ``apply`` keeps one compact :c:type:`DevState` per device (60 bytes: the current coverage
  run and the stats row of the device's latest day); anything else (a new run after a gap, a
  fault slot, a late frame, a finished day) goes to overflow vectors (``_rollup_state.pxi``).
* ``drain`` turns runs and overflow into per-day bitmaps and stats rows, merged by the rules
  of RollupPy.apply.

Locking: the per-rollup lock guards the interners, the device state and the overflow. It is
only ever waited for with the GIL released, and whoever holds it never waits for the GIL, so
the two cannot deadlock.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.pythread cimport PyThread_acquire_lock, PyThread_allocate_lock
from cpython.pythread cimport NOWAIT_LOCK, PyThread_free_lock, PyThread_release_lock, WAIT_LOCK
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport isinf, isnan
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

cimport numpy as cnp

import os
import sys

import numpy as np

from core.batch import NEW_DEVICE, Batch, admit_into
from core.dayblock import STATS_DTYPE, DayDelta
from core.errors import MalformedBatch, TooManyFrames, UnsupportedVersion

cnp.import_array()

include "_rollup_wire.pxi"
include "_rollup_intern.pxi"
include "_rollup_state.pxi"

__all__ = ["RollupC", "ENGINE"]

ENGINE = "c"


def _check_layout():
    """Refuse to load if the C stats row is not STATS_DTYPE byte for byte (the engine then
    falls back to RollupPy, see core/rollup.py)."""
    cdef StatsRow r
    cdef char *base = <char *>&r
    offsets = {
        "rssi_sum": <char *>&r.rssi_sum - base,
        "frames": <char *>&r.frames - base,
        "fault_frames": <char *>&r.fault_frames - base,
        "rssi_n": <char *>&r.rssi_n - base,
        "first_ms": <char *>&r.first_ms - base,
        "last_ms": <char *>&r.last_ms - base,
        "batt_ms": <char *>&r.batt_ms - base,
        "rssi_ms": <char *>&r.rssi_ms - base,
        "fw_ms": <char *>&r.fw_ms - base,
        "batt_last": <char *>&r.batt_last - base,
        "batt_min": <char *>&r.batt_min - base,
        "rssi_last": <char *>&r.rssi_last - base,
        "fw_last": <char *>&r.fw_last - base,
        "last_status": <char *>&r.last_status - base,
    }
    fields = STATS_DTYPE.fields
    if (
        sys.byteorder != "little"
        or STATS_DTYPE.itemsize != sizeof(StatsRow)
        or set(fields) != set(offsets)
        or any(fields[name][1] != off for name, off in offsets.items())
    ):
        raise ImportError("core._rollup: the C stats row does not match STATS_DTYPE")


_check_layout()

#: The time units of the C code (_rollup_wire.h), by their names in core.times: core.rollup
#: checks them against it before it uses this engine.
TIME_UNITS = {
    "S_PER_DAY": UPT_S_PER_DAY,
    "NS_PER_S": UPT_NS_PER_S,
    "NS_PER_MS": UPT_NS_PER_MS,
    "MS_PER_DAY": UPT_MS_PER_DAY,
    "NS_PER_DAY": UPT_NS_PER_DAY,
    "MS_THRESHOLD": UPT_MS_THRESHOLD,
}

_ERRORS = {
    E_TRUNC: (MalformedBatch, "not valid msgpack: data ends inside a value"),
    E_RESERVED: (MalformedBatch, "not valid msgpack: reserved byte 0xc1"),
    E_NOT_MAP: (MalformedBatch, "batch is not a msgpack map"),
    E_TRAILING: (MalformedBatch, "not valid msgpack: bytes after the batch map"),
    E_VERSION: (UnsupportedVersion, "unsupported format version: only v=1 is understood"),
    E_GW_MISSING: (MalformedBatch, "gateway missing"),
    E_GW_BAD: (MalformedBatch, "gateway must be a UTF-8 string of 1..64 bytes"),
    E_SEQ: (MalformedBatch, "seq must be an unsigned 64-bit integer"),
    E_FRAMES_MISSING: (MalformedBatch, "frames missing"),
    E_FRAMES_TYPE: (MalformedBatch, "frames must be an array"),
}

cdef enum:
    APPLY_NOGIL_MIN = 20000  # frames: smaller batches are applied holding the GIL (apply())

cdef Py_ssize_t NEW_DEVICE_C = NEW_DEVICE  # the dev column's flag of a new device


cdef object _INT64_MAX = 2**63 - 1
cdef object _NS_PER_S = UPT_NS_PER_S
cdef object _MAX_HEARTBEAT_S = 2**32 - 1


cdef inline int64_t _clamp(object x, int64_t low) except? -3:
    """``x`` (a Python int) clamped into [low, INT64_MAX]."""
    if x < low:
        return low
    if x > _INT64_MAX:
        return UPT_INT64_MAX
    return x


cdef inline cnp.ndarray _empty(Py_ssize_t n, int typenum):
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    return cnp.PyArray_EMPTY(1, dims, typenum, 0)


cdef inline cnp.ndarray _column(object x, int typenum):
    """``x`` as a C-contiguous, aligned, native-order array of type ``typenum``."""
    if (cnp.PyArray_Check(x) and cnp.PyArray_TYPE(x) == typenum
            and cnp.PyArray_ISCARRAY_RO(x) and cnp.PyArray_ISNOTSWAPPED(x)):
        return x
    return np.ascontiguousarray(x, dtype=cnp.PyArray_DescrFromType(typenum))


cdef int _state_reserve(DevState **states, size_t *cap, size_t need) noexcept nogil:
    cdef size_t n
    cdef DevState *p
    if need <= cap[0]:
        return E_OK
    n = max(cap[0] * 2, need, <size_t>1024)
    p = <DevState *>realloc(states[0], n * sizeof(DevState))
    if p == NULL:
        return E_NOMEM
    memset(p + cap[0], 0, (n - cap[0]) * sizeof(DevState))
    states[0] = p
    cap[0] = n
    return E_OK


cdef Py_ssize_t _add_device(Interner *devs, DevState **states, size_t *cap, uint64_t h,
                            const unsigned char *key, size_t n, uint32_t hb_s) noexcept nogil:
    """Intern a new device id (known absent) with a fresh state; -1 if out of memory."""
    cdef Py_ssize_t idx
    if _state_reserve(states, cap, devs.count + 1):
        return -1
    idx = interner_add(devs, h, key, n)
    if idx >= 0:
        memset(&states[0][idx], 0, sizeof(DevState))
        states[0][idx].hb_s = hb_s
    return idx


cdef int _intern_frames(const Interner *devs, Interner *fresh, Interner *fws,
                        const unsigned char *body, const Scratch *sc, uint8_t *reasons,
                        uint8_t *warn, uint32_t *cdev, int64_t *cts, uint8_t *cstatus,
                        int16_t *cbatt, int16_t *crssi, uint16_t *cfw) noexcept nogil:
    """Pass two, under the lock: look up device ids, intern firmware, fill the columns. An id
    the rollup does not know is numbered in ``fresh`` (the batch's new devices, interned when
    the batch is admitted) and its frames get ``NEW_DEVICE | number``."""
    cdef Py_ssize_t i, k = 0, n = sc.n_frames
    cdef Py_ssize_t idx, fwi
    cdef const Frame *fr
    cdef const unsigned char *key
    cdef unsigned int reason, mask
    for i in range(n):
        if i + 16 < n and sc.frames[i + 16].reason == 0:
            interner_prefetch(devs, sc.frames[i + 16].dev_hash)
        fr = &sc.frames[i]
        reason = fr.reason
        if reason == 0:
            key = body + fr.dev_off
            if fr.dev_side:
                key = sc.side + fr.dev_off
            idx = interner_find(devs, fr.dev_hash, key, fr.dev_len)
            if idx < 0:
                if fresh.slots == NULL and interner_init(fresh, devs.seed):
                    return E_NOMEM
                idx = interner_find(fresh, fr.dev_hash, key, fr.dev_len)
                if idx < 0:
                    idx = interner_add(fresh, fr.dev_hash, key, fr.dev_len)
                    if idx < 0:
                        return E_NOMEM
                idx |= NEW_DEVICE_C
        if reason:
            reasons[i] = <uint8_t>reason
            warn[i] = 0
            continue
        mask = fr.warn
        fwi = 0
        if fr.fw_len:
            fwi = interner_find(fws, fr.fw_hash, body + fr.fw_off, fr.fw_len)
            if fwi < 0:
                if fws.count >= MAX_FIRMWARE:
                    mask |= W_FW
                else:
                    fwi = interner_add(fws, fr.fw_hash, body + fr.fw_off, fr.fw_len)
                    if fwi < 0:
                        return E_NOMEM
            fwi += 1  # firmware ids count from 1; -1 (dropped) becomes FW_NONE
        reasons[i] = 0
        warn[i] = <uint8_t>mask
        cdev[k] = <uint32_t>idx
        cts[k] = fr.ts
        cstatus[k] = fr.status
        cbatt[k] = fr.battery
        crssi[k] = fr.rssi
        cfw[k] = <uint16_t>fwi
        k += 1
    return E_OK


cdef int _check_ids(const uint32_t *dev, const uint16_t *fw, Py_ssize_t n, size_t n_dev,
                    size_t n_fw) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if dev[i] >= n_dev or fw[i] > n_fw:
            return 1
    return 0


cdef class RollupC:
    """One tenant's rollup: its device and firmware ids, heartbeats, and live day state.

    ``decode`` turns a batch body into a :class:`~core.batch.Batch`; ``apply`` folds a decoded
    batch into the live state; ``drain`` hands over and clears what was applied, per UTC day.
    Same API and results as :class:`core._rollup_py.RollupPy`.
    """

    engine = ENGINE

    def __cinit__(self, *args, **kwargs):
        # a usable (empty, default) rollup even if __init__ is never run
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()
        self._setup(60, 60, 0)

    def __init__(self, slot_s: int = 60, heartbeat_s: int = 60, device_cap: int = 0) -> None:
        if slot_s <= 0 or UPT_S_PER_DAY % slot_s:
            raise ValueError("slot_s must divide a day (86,400 s)")
        if heartbeat_s <= 0:
            raise ValueError("heartbeat_s must be positive")
        if heartbeat_s > _MAX_HEARTBEAT_S:
            raise ValueError("heartbeat_s must be at most 4,294,967,295")
        self._setup(slot_s, heartbeat_s, device_cap)

    cdef _setup(self, int64_t slot_s, int64_t heartbeat_s, int64_t device_cap):
        """(Re)initialise: empty interners and state."""
        cdef uint64_t x
        self._release_all()
        self.slot_s = slot_s
        self.slot_ns = slot_s * UPT_NS_PER_S
        self.slots_per_day = UPT_S_PER_DAY // slot_s
        self.default_heartbeat_s = heartbeat_s
        self.device_cap = device_cap
        # floor(x / slot_s) for a second of the day x: a multiply and a shift (exact, since
        # x and slot_s are below 2**17; checked all the same)
        self._slot_magic = ((<uint64_t>1 << 34) + <uint64_t>slot_s - 1) // <uint64_t>slot_s
        for x in range(<uint64_t>UPT_S_PER_DAY):
            if (x * self._slot_magic) >> 34 != x // <uint64_t>slot_s:
                raise AssertionError("slot reciprocal is not exact")
        seeds = os.urandom(16)
        if (interner_init(&self._devices, int.from_bytes(seeds[:8], "little"))
                or interner_init(&self._firmware, int.from_bytes(seeds[8:], "little"))):
            raise MemoryError()

    cdef void _release_all(self) noexcept:
        interner_free(&self._devices)
        interner_free(&self._firmware)
        free(self._state)
        self._state = NULL
        self._state_cap = 0
        overflow_free(&self._over)

    def __dealloc__(self):
        self._release_all()
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    cdef void _acquire(self) noexcept:
        """Take the lock; if it is busy, wait for it without the GIL (letting the GIL go when
        the lock is free would only cost a wait to get it back)."""
        if PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            return
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)

    cdef void _release(self) noexcept:
        PyThread_release_lock(self._lock)

    # --- ids -------------------------------------------------------------------------------

    @property
    def n_devices(self) -> int:
        return self._devices.count

    def device_ids(self, start: int = 0) -> list[str]:
        return self._names(&self._devices, start)

    def device_index(self, device_id: str) -> int:
        cdef bytes key = device_id.encode()
        cdef Py_ssize_t idx
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(key)
        cdef size_t n = PyBytes_GET_SIZE(key)
        self._acquire()
        idx = interner_find(&self._devices, upt_hash(p, n, self._devices.seed), p, n)
        self._release()
        return idx

    def add_device(self, device_id: str) -> int:
        """Intern one id (registration, or loading stored ids); returns its index."""
        cdef bytes key = device_id.encode()
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(key)
        cdef size_t n = PyBytes_GET_SIZE(key)
        cdef uint64_t h = upt_hash(p, n, self._devices.seed)
        cdef Py_ssize_t idx
        self._acquire()
        try:
            idx = interner_find(&self._devices, h, p, n)
            if idx < 0:
                if not 0 < n <= MAX_DEVICE_LEN:
                    raise ValueError("device id must be 1..128 bytes of UTF-8")
                idx = _add_device(&self._devices, &self._state, &self._state_cap, h, p, n,
                                  <uint32_t>self.default_heartbeat_s)
                if idx < 0:
                    raise MemoryError()
        finally:
            self._release()
        return idx

    @property
    def n_firmware(self) -> int:
        return self._firmware.count

    def firmware_ids(self, start: int = 0) -> list[str]:
        """Firmware strings by id, from id ``start + 1``."""
        return self._names(&self._firmware, start)

    def add_firmware(self, firmware: str) -> int:
        """Intern one firmware string (loading stored ids); returns its id, from 1."""
        cdef bytes key = firmware.encode()
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(key)
        cdef size_t n = PyBytes_GET_SIZE(key)
        cdef uint64_t h = upt_hash(p, n, self._firmware.seed)
        cdef Py_ssize_t idx
        self._acquire()
        try:
            idx = interner_find(&self._firmware, h, p, n)
            if idx < 0:
                if not 0 < n <= MAX_FW_LEN:
                    raise ValueError("firmware must be 1..32 bytes of UTF-8")
                if self._firmware.count >= MAX_FIRMWARE:
                    raise ValueError("a rollup holds at most 65,535 firmware strings")
                idx = interner_add(&self._firmware, h, p, n)
                if idx < 0:
                    raise MemoryError()
        finally:
            self._release()
        return idx + 1

    cdef list _names(self, Interner *it, start):
        cdef Py_ssize_t i
        self._acquire()
        try:
            span = range(it.count)[start:]  # list slicing semantics, negative starts included
            return [
                PyUnicode_DecodeUTF8(<const char *>it.arena + it.offs[i],
                                     it.offs[i + 1] - it.offs[i], NULL)
                for i in range(<Py_ssize_t>span.start, <Py_ssize_t>span.stop)
            ]
        finally:
            self._release()

    cdef Py_ssize_t _dev_slot(self, dev) except -1:
        """``dev`` as an index into the device list, as list indexing takes it."""
        cdef Py_ssize_t n = self._devices.count
        cdef Py_ssize_t i = dev
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("list index out of range")
        return i

    def set_heartbeat(self, dev: int, heartbeat_s: int) -> None:
        if heartbeat_s <= 0:
            raise ValueError("heartbeat_s must be positive")
        if heartbeat_s > _MAX_HEARTBEAT_S:
            raise ValueError("heartbeat_s must be at most 4,294,967,295")
        self._acquire()
        try:
            self._state[self._dev_slot(dev)].hb_s = heartbeat_s
        finally:
            self._release()

    def heartbeat_s(self, dev: int) -> int:
        self._acquire()
        try:
            return self._state[self._dev_slot(dev)].hb_s
        finally:
            self._release()

    # --- decoding --------------------------------------------------------------------------

    def decode(
        self,
        body,
        now_ns: int,
        *,
        max_frames: int = 100_000,
        max_future_skew_s: int = 300,
        max_backfill_s: int = 7 * 86_400,
        closed_before_ns: int = 0,
    ):
        """Decode and judge one batch body; raise a ``BatchError`` if it is refused whole."""
        cdef bytes buf = body if PyBytes_CheckExact(body) else bytes(body)
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t end = PyBytes_GET_SIZE(buf)
        cdef Limits lim
        cdef Scratch sc
        cdef Header hd
        cdef Interner fresh
        cdef uint64_t whole
        cdef int rc
        cdef Py_ssize_t i, n_ok = 0
        cdef uint64_t dev_seed = self._devices.seed
        cdef uint64_t fw_seed = self._firmware.seed
        cdef int64_t t
        cdef cnp.ndarray reasons, warn, dev, ts, status, battery, rssi, fw
        lim.max_frames = _clamp(max_frames, -1) if max_frames < (1 << 40) else (1 << 40)
        lim.future_max = _clamp(now_ns + max_future_skew_s * _NS_PER_S, -1)
        lim.old_max = _clamp(now_ns - max_backfill_s * _NS_PER_S - 1, -1)
        lim.closed_max = _clamp(closed_before_ns - 1, -1)
        memset(&sc, 0, sizeof(Scratch))
        memset(&fresh, 0, sizeof(Interner))
        try:
            with nogil:
                rc = walk_batch(p, end, &lim, &sc, &hd, dev_seed, fw_seed)
                if rc == E_OK:
                    for i in range(sc.n_frames):
                        n_ok += sc.frames[i].reason == 0
            if rc:
                if rc == E_TOO_MANY:
                    raise TooManyFrames(
                        f"batch holds {hd.too_many} frames, more than the limit of {max_frames}"
                    )
                if rc == E_NOMEM:
                    raise MemoryError()
                cls, message = _ERRORS[rc]
                raise cls(message)
            reasons = _empty(sc.n_frames, cnp.NPY_UINT8)
            warn = _empty(sc.n_frames, cnp.NPY_UINT8)
            dev = _empty(n_ok, cnp.NPY_UINT32)
            ts = _empty(n_ok, cnp.NPY_INT64)
            status = _empty(n_ok, cnp.NPY_UINT8)
            battery = _empty(n_ok, cnp.NPY_INT16)
            rssi = _empty(n_ok, cnp.NPY_INT16)
            fw = _empty(n_ok, cnp.NPY_UINT16)
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)
                rc = _intern_frames(
                    &self._devices, &fresh, &self._firmware, p, &sc,
                    <uint8_t *>cnp.PyArray_DATA(reasons), <uint8_t *>cnp.PyArray_DATA(warn),
                    <uint32_t *>cnp.PyArray_DATA(dev), <int64_t *>cnp.PyArray_DATA(ts),
                    <uint8_t *>cnp.PyArray_DATA(status), <int16_t *>cnp.PyArray_DATA(battery),
                    <int16_t *>cnp.PyArray_DATA(rssi), <uint16_t *>cnp.PyArray_DATA(fw),
                )
                PyThread_release_lock(self._lock)
            if rc:
                raise MemoryError()
            new_ids = [interner_key(&fresh, i).decode() for i in range(<Py_ssize_t>fresh.count)]
        finally:
            free(sc.frames)
            free(sc.side)
            interner_free(&fresh)
        seq = None
        if hd.have_seq and hd.seq.kind != NIL and whole_number(&hd.seq, &whole):
            seq = whole
        sent_at_ns = None
        if hd.have_sent:
            t = time_ns(p, &hd.sent)
            if t >= 0:
                sent_at_ns = t
        return Batch(
            PyUnicode_DecodeUTF8(<const char *>p + hd.gateway.off, hd.gateway.len, NULL),
            seq,
            sent_at_ns,
            reasons,
            warn,
            dev,
            ts,
            status,
            battery,
            rssi,
            fw,
            new_ids,
        )

    def admit(self, batch):
        """Intern the batch's new devices now (frames over the device cap are rejected): for
        a rollup used without a store, whose commit admits them instead."""
        return admit_into(self, batch)

    # --- live state ------------------------------------------------------------------------

    def apply(self, batch) -> None:
        """Fold the accepted frames of a decoded batch into the live state (admitting its new
        devices first if nobody has)."""
        if batch.new_ids:
            batch = self.admit(batch)
        cdef cnp.ndarray dev = _column(batch.dev, cnp.NPY_UINT32)
        cdef cnp.ndarray ts = _column(batch.ts, cnp.NPY_INT64)
        cdef cnp.ndarray status = _column(batch.status, cnp.NPY_UINT8)
        cdef cnp.ndarray battery = _column(batch.battery, cnp.NPY_INT16)
        cdef cnp.ndarray rssi = _column(batch.rssi, cnp.NPY_INT16)
        cdef cnp.ndarray fw = _column(batch.fw, cnp.NPY_UINT16)
        cdef Py_ssize_t n = min(dev.shape[0], ts.shape[0], status.shape[0], battery.shape[0],
                                rssi.shape[0], fw.shape[0])
        cdef const uint32_t *pdev = <const uint32_t *>cnp.PyArray_DATA(dev)
        cdef const int64_t *pts = <const int64_t *>cnp.PyArray_DATA(ts)
        cdef const uint8_t *pstatus = <const uint8_t *>cnp.PyArray_DATA(status)
        cdef const int16_t *pbattery = <const int16_t *>cnp.PyArray_DATA(battery)
        cdef const int16_t *prssi = <const int16_t *>cnp.PyArray_DATA(rssi)
        cdef const uint16_t *pfw = <const uint16_t *>cnp.PyArray_DATA(fw)
        cdef int rc
        # A batch of ordinary size folds in within microseconds: letting the GIL go for that
        # would cost the caller a wait for it afterwards (up to the switch interval while the
        # event loop runs), so a small batch keeps the GIL if the rollup's lock is free
        if n < APPLY_NOGIL_MIN and PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            rc = self._apply_locked(pdev, pts, pstatus, pbattery, prssi, pfw, n)
            PyThread_release_lock(self._lock)
        else:
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)
                rc = self._apply_locked(pdev, pts, pstatus, pbattery, prssi, pfw, n)
                PyThread_release_lock(self._lock)
        if rc == -1:
            raise IndexError("batch refers to a device or firmware id this rollup does not hold")
        if rc:
            raise MemoryError()

    cdef int _apply_locked(self, const uint32_t *pdev, const int64_t *pts,
                           const uint8_t *pstatus, const int16_t *pbattery,
                           const int16_t *prssi, const uint16_t *pfw,
                           Py_ssize_t n) noexcept nogil:
        """apply() with the rollup's lock held: -1 for unknown ids, else apply_frames's code."""
        if _check_ids(pdev, pfw, n, self._devices.count, self._firmware.count):
            return -1
        return apply_frames(self._state, &self._over, &self._firmware, self.slot_ns,
                            self.slots_per_day, self._slot_magic, pdev, pts, pstatus,
                            pbattery, prssi, pfw, n)

    @property
    def pending_days(self) -> int:
        """Device-days held in the live state."""
        cdef Touched tc
        cdef int rc
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)
            rc = touched_keys(&tc, self._state, self._devices.count, &self._over,
                              self.slots_per_day)
            PyThread_release_lock(self._lock)
        m = tc.m
        touched_free(&tc)
        if rc:
            raise MemoryError()
        return m

    def drain(self) -> list:
        """Hand over the live state, one :class:`DayDelta` per day in day order, and clear it."""
        cdef Touched tc
        cdef int rc = E_OK
        cdef size_t i, n_dev, n_span
        cdef int32_t d
        cdef DayOut *out
        cdef Py_ssize_t k
        cdef Py_ssize_t width = (self.slots_per_day + 7) // 8
        memset(&tc, 0, sizeof(Touched))
        self._acquire()
        try:
            n_dev = self._devices.count
            with nogil:
                rc = touched_keys(&tc, self._state, n_dev, &self._over, self.slots_per_day)
                if rc == E_OK and tc.m:
                    rc = touched_layout(&tc, n_dev)
            if rc:
                raise MemoryError()
            deltas = []
            if tc.m:
                tc.width = width
                n_span = <size_t>(tc.dmax - tc.dmin + 1)
                for i in range(n_span):
                    d = tc.day_index[i]
                    if d < 0:
                        continue
                    out = &tc.days[d]
                    k = <Py_ssize_t>out.n
                    dev = np.empty(k, np.uint32)
                    cov = np.zeros((k, width), np.uint8)
                    fault = np.zeros((k, width), np.uint8)
                    stats = np.empty(k, STATS_DTYPE)
                    out.dev = <uint32_t *>cnp.PyArray_DATA(dev)
                    out.cov = <uint8_t *>cnp.PyArray_DATA(cov)
                    out.fault = <uint8_t *>cnp.PyArray_DATA(fault)
                    out.stats = <StatsRow *>cnp.PyArray_DATA(stats)
                    deltas.append(DayDelta(tc.dmin + <int64_t>i, dev, cov, fault, stats))
                with nogil:
                    touched_fill(&tc, self._state, n_dev, &self._over, &self._firmware)
            with nogil:
                for i in range(n_dev):
                    self._state[i].frames = 0
                    self._state[i].run_n = 0
                overflow_clear(&self._over)
            return deltas
        finally:
            touched_free(&tc)
            self._release()

    def fw_rank(self):
        """Rank of each firmware id (index) by its string; id 0 (none) ranks lowest."""
        cdef size_t i
        self._acquire()
        try:
            names = [b""] + [interner_key(&self._firmware, i) for i in range(self._firmware.count)]
        finally:
            self._release()
        order = sorted(range(len(names)), key=names.__getitem__)
        rank = np.empty(len(names), np.int64)
        rank[order] = np.arange(len(names))
        return rank
