# The msgpack walker and pass one of decode(): judging every frame of a batch without
# touching the rollup. Everything here runs without the GIL and allocates nothing but the
# caller's Scratch. It mirrors read_value / skip_items / read_scalar / time_ns / _judge of
# core/_rollup_py.py decision for decision; keep the two in step. The C it calls (byte loads,
# the hash, UTF-8 checks) is in _rollup_wire.h, declared in _rollup.pxd.

# value kinds, as in _rollup_py.py
cdef enum:
    NIL = 0
    BOOL = 1
    INT = 2
    FLOAT = 3
    STR = 4
    BIN = 5
    EXT = 6
    ARRAY = 7
    MAP = 8

# pass one's outcome; each nonzero code is one exception of decode() (see _raise_error)
cdef enum:
    E_OK = 0
    E_TRUNC
    E_RESERVED
    E_NOT_MAP
    E_TOO_MANY
    E_TRAILING
    E_VERSION
    E_GW_MISSING
    E_GW_BAD
    E_SEQ
    E_FRAMES_MISSING
    E_FRAMES_TYPE
    E_NOMEM

# reject numbers and warning bits (core.errors tables; REJECT_NUMBER and WARNING_BIT below
# show them to core.rollup, which checks them against core.errors)
cdef enum:
    R_NOT_FRAME = 1
    R_DEV_MISSING = 2
    R_DEV_TYPE = 3
    R_DEV_EMPTY = 4
    R_DEV_LONG = 5
    R_TS_MISSING = 6
    R_TS_TYPE = 7
    R_TS_INVALID = 8
    R_TS_FUTURE = 9
    R_TS_OLD = 10
    R_TS_CLOSED = 11
    R_CAP = 12
    W_STATUS = 1
    W_BATTERY = 2
    W_RSSI = 4
    W_FW = 8

REJECT_NUMBER = {
    "not_a_frame": R_NOT_FRAME,
    "device_missing": R_DEV_MISSING,
    "device_type": R_DEV_TYPE,
    "device_empty": R_DEV_EMPTY,
    "device_too_long": R_DEV_LONG,
    "ts_missing": R_TS_MISSING,
    "ts_type": R_TS_TYPE,
    "ts_invalid": R_TS_INVALID,
    "ts_future": R_TS_FUTURE,
    "ts_too_old": R_TS_OLD,
    "ts_closed_month": R_TS_CLOSED,
    "device_cap": R_CAP,
}
WARNING_BIT = {"status": W_STATUS, "battery": W_BATTERY, "rssi": W_RSSI, "firmware": W_FW}

cdef enum:
    MAX_DEVICE_LEN = 128
    MAX_GATEWAY_LEN = 64
    MAX_FW_LEN = 32
    MAX_FIRMWARE = 65535
    BATTERY_NONE_C = -1
    RSSI_NONE_C = 1


# map-form frame keys: field * 2 + (1 if the short name)
cdef enum:
    K_NONE = -1
    K_SHORT = 1


cdef inline int read_value(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *ppos,
                           Val *v) noexcept nogil:
    """Read one value's head at ``ppos[0]`` into ``v`` and advance past it.

    The heads a telemetry frame is made of are read here, inline; the rest (and every error)
    by read_value_slow."""
    cdef Py_ssize_t pos = ppos[0]
    cdef Py_ssize_t left = end - pos
    cdef unsigned int b
    cdef Py_ssize_t n
    if UPT_LIKELY(left > 0):
        b = buf[pos]
        if b <= 0x7F:  # positive fixint
            v.kind = INT
            v.neg = 0
            v.u = b
            ppos[0] = pos + 1
            return E_OK
        if b - 0xA0u <= 0x1Fu:  # fixstr
            n = b & 0x1F
            if UPT_LIKELY(n < left):
                v.kind = STR
                v.off = pos + 1
                v.len = n
                ppos[0] = pos + 1 + n
                return E_OK
        elif b >= 0xE0:  # negative fixint
            v.kind = INT
            v.neg = 1
            v.u = <uint64_t>(<int64_t>b - 0x100)
            ppos[0] = pos + 1
            return E_OK
        elif b == 0xCE and left > 4:  # uint32 (seconds)
            v.kind = INT
            v.neg = 0
            v.u = upt_be32(buf + pos + 1)
            ppos[0] = pos + 5
            return E_OK
        elif b == 0xD0 and left > 1:  # int8 (rssi)
            v.kind = INT
            v.neg = buf[pos + 1] >= 0x80
            v.u = <uint64_t>(<int64_t>(<signed char>buf[pos + 1]))
            ppos[0] = pos + 2
            return E_OK
        elif b == 0xCB and left > 8:  # float64
            v.kind = FLOAT
            v.f = upt_f64(upt_be64(buf + pos + 1))
            ppos[0] = pos + 9
            return E_OK
        elif b - 0x80u <= 0x1Fu:  # fixmap, fixarray
            v.kind = MAP if b < 0x90 else ARRAY
            v.u = b & 0x0F
            ppos[0] = pos + 1
            return E_OK
    return read_value_slow(buf, end, ppos, v)


cdef int read_value_slow(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *ppos,
                         Val *v) noexcept nogil:
    """read_value() for every head: the reference walk of _rollup_py.read_value."""
    cdef Py_ssize_t pos = ppos[0]
    cdef Py_ssize_t n
    cdef unsigned int b
    cdef int64_t sv
    if UPT_UNLIKELY(pos >= end):
        return E_TRUNC
    b = buf[pos]
    pos += 1
    if b <= 0x7F:
        v.kind = INT
        v.neg = 0
        v.u = b
    elif b >= 0xE0:
        v.kind = INT
        v.neg = 1
        v.u = <uint64_t>(<int64_t>b - 0x100)
    elif b >= 0xA0 and b <= 0xBF:
        n = b & 0x1F
        if UPT_UNLIKELY(n > end - pos):
            return E_TRUNC
        v.kind = STR
        v.off = pos
        v.len = n
        pos += n
    elif b >= 0x90 and b <= 0x9F:
        v.kind = ARRAY
        v.u = b & 0x0F
    elif b >= 0x80 and b <= 0x8F:
        v.kind = MAP
        v.u = b & 0x0F
    elif b == 0xC0:
        v.kind = NIL
    elif b == 0xC2 or b == 0xC3:
        v.kind = BOOL
        v.u = b == 0xC3
    elif b == 0xC1:
        return E_RESERVED
    elif b == 0xCA or b == 0xCB:
        n = 4 if b == 0xCA else 8
        if n > end - pos:
            return E_TRUNC
        v.kind = FLOAT
        v.f = upt_f32(upt_be32(buf + pos)) if n == 4 else upt_f64(upt_be64(buf + pos))
        pos += n
    elif b >= 0xCC and b <= 0xCF:  # uint 8/16/32/64
        n = 1 << (b - 0xCC)
        if n > end - pos:
            return E_TRUNC
        v.kind = INT
        v.neg = 0
        if n == 1:
            v.u = buf[pos]
        elif n == 2:
            v.u = upt_be16(buf + pos)
        elif n == 4:
            v.u = upt_be32(buf + pos)
        else:
            v.u = upt_be64(buf + pos)
        pos += n
    elif b >= 0xD0 and b <= 0xD3:  # int 8/16/32/64
        n = 1 << (b - 0xD0)
        if n > end - pos:
            return E_TRUNC
        if n == 1:
            sv = <signed char>buf[pos]
        elif n == 2:
            sv = <int16_t>upt_be16(buf + pos)
        elif n == 4:
            sv = <int32_t>upt_be32(buf + pos)
        else:
            sv = <int64_t>upt_be64(buf + pos)
        v.kind = INT
        v.neg = sv < 0
        v.u = <uint64_t>sv
        pos += n
    elif b >= 0xD4 and b <= 0xD8:  # fixext 1/2/4/8/16
        n = 1 << (b - 0xD4)
        if n + 1 > end - pos:
            return E_TRUNC
        v.kind = EXT
        v.ext_type = <signed char>buf[pos]
        v.off = pos + 1
        v.len = n
        pos += n + 1
    else:
        # str/bin/ext 8/16/32, array/map 16/32: a big-endian size, then maybe a payload
        if b == 0xD9 or b == 0xC4 or b == 0xC7:
            n = 1
        elif b == 0xDA or b == 0xC5 or b == 0xC8 or b == 0xDC or b == 0xDE:
            n = 2
        else:  # 0xDB 0xC6 0xC9 0xDD 0xDF
            n = 4
        if n > end - pos:
            return E_TRUNC
        sv = buf[pos] if n == 1 else (upt_be16(buf + pos) if n == 2 else upt_be32(buf + pos))
        pos += n
        if b == 0xDC or b == 0xDD:
            v.kind = ARRAY
            v.u = <uint64_t>sv
        elif b == 0xDE or b == 0xDF:
            v.kind = MAP
            v.u = <uint64_t>sv
        elif b >= 0xC7 and b <= 0xC9:
            if sv + 1 > end - pos:
                return E_TRUNC
            v.kind = EXT
            v.ext_type = <signed char>buf[pos]
            v.off = pos + 1
            v.len = sv
            pos += sv + 1
        else:
            if sv > end - pos:
                return E_TRUNC
            v.kind = STR if b >= 0xD9 else BIN
            v.off = pos
            v.len = sv
            pos += sv
    ppos[0] = pos
    return E_OK


cdef int skip_items(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *ppos,
                    uint64_t n) noexcept nogil:
    """Skip ``n`` whole values. Iterative: nesting costs nothing but the counter, and every
    value takes at least one byte, so a header claiming more than the data holds fails."""
    cdef Val v
    cdef int rc
    while n:
        rc = read_value(buf, end, ppos, &v)
        if rc:
            return rc
        n -= 1
        if v.kind == ARRAY:
            n += v.u
        elif v.kind == MAP:
            n += 2 * v.u
    return E_OK


cdef inline int read_scalar(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *ppos,
                            Val *v) noexcept nogil:
    """Read one value; a container is skipped whole and left as kind ARRAY/MAP."""
    cdef int rc = read_value(buf, end, ppos, v)
    if UPT_UNLIKELY(rc):
        return rc
    if v.kind == ARRAY:
        return skip_items(buf, end, ppos, v.u)
    if v.kind == MAP:
        return skip_items(buf, end, ppos, 2 * v.u)
    return E_OK


cdef inline int64_t time_ns(const unsigned char *buf, const Val *v) noexcept nogil:
    """A wire timestamp as ns since the epoch; -1 if of the wrong type, -2 if invalid."""
    cdef double x, whole, frac
    cdef uint64_t raw, nsec
    cdef int64_t sec
    if v.kind == INT:
        if v.neg:
            return -2
        if v.u >= UPT_MS_THRESHOLD:
            return UPT_INT64_MAX if v.u > UPT_MS_CLAMP else <int64_t>v.u * UPT_NS_PER_MS
        return UPT_INT64_MAX if v.u > UPT_SEC_CLAMP else <int64_t>v.u * UPT_NS_PER_S
    if v.kind == FLOAT:
        x = v.f
        if isnan(x) or isinf(x) or x < 0:
            return -2
        # x >= 0 from here, so floor is truncation; the clamps are exact doubles, so these
        # compare as Python's int and float do
        if x >= 1e11:
            if x >= <double>UPT_MS_CLAMP + 1.0:
                return UPT_INT64_MAX
            whole = upt_floor_pos(x)
            frac = x - whole
            return <int64_t>whole * UPT_NS_PER_MS + <int64_t>(frac * 1e6)
        if x >= <double>UPT_SEC_CLAMP + 1.0:
            return UPT_INT64_MAX
        whole = upt_floor_pos(x)
        frac = x - whole
        return <int64_t>whole * UPT_NS_PER_S + <int64_t>(frac * 1e9)
    if v.kind == EXT:
        if v.ext_type != -1:
            return -1
        if v.len == 4:
            return <int64_t>upt_be32(buf + v.off) * UPT_NS_PER_S
        if v.len == 8:
            raw = upt_be64(buf + v.off)
            nsec = raw >> 34
            sec = <int64_t>(raw & UPT_MASK34)
        elif v.len == 12:
            nsec = upt_be32(buf + v.off)
            sec = <int64_t>upt_be64(buf + v.off + 4)
        else:
            return -1
        if sec < 0 or nsec > <uint64_t>(UPT_NS_PER_S - 1):
            return -2
        if <uint64_t>sec > UPT_SEC_CLAMP:
            return UPT_INT64_MAX
        return sec * UPT_NS_PER_S + <int64_t>nsec
    return -1


cdef inline bint whole_number(const Val *v, uint64_t *out) noexcept nogil:
    """RollupPy's whole_number: an int >= 0, or a float whose value is a whole number below
    2**64 (-0.0 is 0; NaN and infinities are not); false otherwise."""
    cdef double x
    if v.kind == INT:
        if v.neg:
            return False
        out[0] = v.u
        return True
    if v.kind == FLOAT:
        x = v.f
        if not (x >= 0.0 and x < 18446744073709551616.0):
            return False
        if x < 4503599627370496.0 and upt_floor_pos(x) != x:  # from 2**52 on all are whole
            return False
        out[0] = <uint64_t>x
        return True
    return False


cdef inline bint number(const Val *v, int low, int high, int16_t *out) noexcept nogil:
    """A battery/rssi value in tenths of its unit; false if not a number in [low, high]."""
    cdef int64_t s
    cdef double x
    if v.kind == INT:
        if v.neg:
            s = <int64_t>v.u
            if s < low or s > high:
                return False
        else:
            if v.u > <uint64_t>high or <int64_t>v.u < low:  # high >= 0 for both fields
                return False
            s = <int64_t>v.u
        out[0] = <int16_t>(s * 10)
        return True
    if v.kind == FLOAT:
        x = v.f
        if isnan(x) or not (low <= x <= high):
            return False
        out[0] = <int16_t>upt_round_even(x * 10.0)  # half to even, as round()
        return True
    return False


cdef inline int frame_key(const unsigned char *k, Py_ssize_t n) noexcept nogil:
    """The map-form frame key ``k``: field * 2 + K_SHORT if the short name, or K_NONE."""
    if n == 1:
        if k[0] == b'd':
            return 0 * 2 + K_SHORT
        if k[0] == b't':
            return 1 * 2 + K_SHORT
        if k[0] == b's':
            return 2 * 2 + K_SHORT
        if k[0] == b'b':
            return 3 * 2 + K_SHORT
        if k[0] == b'r':
            return 4 * 2 + K_SHORT
    elif n == 2:
        if k[0] == b't' and k[1] == b's':
            return 1 * 2
        if k[0] == b'f' and k[1] == b'w':
            return 5 * 2 + K_SHORT
    elif n == 4:
        if memcmp(k, b"rssi", 4) == 0:
            return 4 * 2
    elif n == 6:
        if memcmp(k, b"device", 6) == 0:
            return 0 * 2
        if memcmp(k, b"status", 6) == 0:
            return 2 * 2
    elif n == 7:
        if memcmp(k, b"battery", 7) == 0:
            return 3 * 2
    elif n == 8:
        if memcmp(k, b"firmware", 8) == 0:
            return 5 * 2
    return K_NONE


cdef int side_reserve(Scratch *sc, Py_ssize_t extra) noexcept nogil:
    cdef Py_ssize_t cap
    cdef unsigned char *p
    if sc.side_len + extra <= sc.side_cap:
        return E_OK
    cap = max(sc.side_cap * 2, sc.side_len + extra, 256)
    p = <unsigned char *>realloc(sc.side, cap)
    if p == NULL:
        return E_NOMEM
    sc.side = p
    sc.side_cap = cap
    return E_OK


cdef inline int judge(const unsigned char *buf, const Val *fields, unsigned int have,
                      const Limits *lim, Scratch *sc, Frame *fr, uint64_t dev_seed,
                      uint64_t fw_seed) noexcept nogil:
    """Judge one frame's fields (bit i of ``have``: field i present) into ``fr``."""
    cdef const Val *f
    cdef const unsigned char *key
    cdef int64_t t
    cdef unsigned int warn = 0
    cdef int16_t value
    cdef uint64_t whole
    fr.reason = 0
    fr.warn = 0
    fr.fw_len = 0
    # device
    f = &fields[0]
    if not (have & 1) or f.kind == NIL:
        fr.reason = R_DEV_MISSING
        return E_OK
    if f.kind == STR:
        if f.len == 0:
            fr.reason = R_DEV_EMPTY
            return E_OK
        if f.len > MAX_DEVICE_LEN:
            fr.reason = R_DEV_LONG
            return E_OK
        if not upt_utf8_ok(buf + f.off, f.len):
            fr.reason = R_DEV_TYPE
            return E_OK
        fr.dev_side = 0
        fr.dev_off = f.off
        fr.dev_len = <uint8_t>f.len
        key = buf + f.off
    elif whole_number(f, &whole):
        if side_reserve(sc, 20):
            return E_NOMEM
        fr.dev_side = 1
        fr.dev_off = sc.side_len
        fr.dev_len = <uint8_t>upt_utoa(whole, sc.side + sc.side_len)
        key = sc.side + sc.side_len
        sc.side_len += fr.dev_len
    else:
        fr.reason = R_DEV_TYPE
        return E_OK
    # timestamp
    f = &fields[1]
    if not (have & 2) or f.kind == NIL:
        fr.reason = R_TS_MISSING
        return E_OK
    t = time_ns(buf, f)
    if t < 0:
        fr.reason = R_TS_TYPE if t == -1 else R_TS_INVALID
        return E_OK
    if t > lim.future_max:
        fr.reason = R_TS_FUTURE
        return E_OK
    if t <= lim.old_max:
        fr.reason = R_TS_OLD
        return E_OK
    if t <= lim.closed_max:
        fr.reason = R_TS_CLOSED
        return E_OK
    fr.ts = t
    fr.dev_hash = upt_hash(key, fr.dev_len, dev_seed)
    # optional fields: a bad one is dropped with a warning, nil is absent
    fr.status = 0
    f = &fields[2]
    if (have & 4) and f.kind != NIL:
        if whole_number(f, &whole) and whole <= 255:
            fr.status = <uint8_t>whole
        else:
            warn |= W_STATUS
    fr.battery = BATTERY_NONE_C
    f = &fields[3]
    if (have & 8) and f.kind != NIL:
        if number(f, 0, 100, &value):
            fr.battery = value
        else:
            warn |= W_BATTERY
    fr.rssi = RSSI_NONE_C
    f = &fields[4]
    if (have & 16) and f.kind != NIL:
        if number(f, -200, 0, &value):
            fr.rssi = value
        else:
            warn |= W_RSSI
    f = &fields[5]
    if (have & 32) and f.kind != NIL:
        if (f.kind == STR and 0 < f.len <= MAX_FW_LEN
                and upt_utf8_ok(buf + f.off, f.len)):
            fr.fw_off = f.off
            fr.fw_len = <uint8_t>f.len
            fr.fw_hash = upt_hash(buf + f.off, f.len, fw_seed)
        else:
            warn |= W_FW
    fr.warn = <uint8_t>warn
    return E_OK


cdef enum:
    FAST_SPAN = 160  # more than the longest frame the fast path takes (1 + 5 * 2 + 2 + 128 + 9 + 3)


# The fast path of pass one: the usual frame, straight from the bytes. Each fast_* reads one
# field of the usual shape at ``pos`` and returns the position after it, or 0 if the field is
# of any other shape or would not be accepted cleanly; the frame is then left to the general
# walk, which gives the same verdict on every frame the fast path takes
# (tests/engine/test_differential.py). The caller guarantees FAST_SPAN bytes from the frame's start.

cdef inline Py_ssize_t fast_device(const unsigned char *buf, Py_ssize_t pos, Frame *fr,
                                   uint64_t dev_seed) noexcept nogil:
    """An ASCII device id, fixstr or str8 of 1..128 bytes (hashed on the way)."""
    cdef unsigned int b = buf[pos]
    cdef Py_ssize_t n, off
    cdef uint64_t acc
    if b - 0xA1u <= 0x1Eu:
        n = b & 0x1F
        off = pos + 1
    elif b == 0xD9 and buf[pos + 1] - 1u < <unsigned int>MAX_DEVICE_LEN:
        n = buf[pos + 1]
        off = pos + 2
    else:
        return 0
    fr.dev_hash = upt_hash_acc(buf + off, n, dev_seed, &acc)
    if not UPT_ASCII(acc):
        return 0
    fr.dev_off = off
    fr.dev_len = <uint8_t>n
    return off + n


cdef inline Py_ssize_t fast_ts(const unsigned char *buf, Py_ssize_t pos, const Limits *lim,
                               Frame *fr) noexcept nogil:
    """A uint32 (seconds) or uint64 (seconds or milliseconds) ts inside the window."""
    cdef unsigned int b = buf[pos]
    cdef uint64_t u
    cdef int64_t t
    if b == 0xCE:
        t = <int64_t>upt_be32(buf + pos + 1) * UPT_NS_PER_S
        pos += 5
    elif b == 0xCF:
        u = upt_be64(buf + pos + 1)
        if u >= UPT_MS_THRESHOLD:
            if u > UPT_MS_CLAMP:
                return 0
            t = <int64_t>u * UPT_NS_PER_MS
        else:
            if u > UPT_SEC_CLAMP:
                return 0
            t = <int64_t>u * UPT_NS_PER_S
        pos += 9
    else:
        return 0
    if t > lim.future_max or t <= lim.old_max or t <= lim.closed_max:
        return 0
    fr.ts = t
    return pos


cdef inline Py_ssize_t fast_status(const unsigned char *buf, Py_ssize_t pos,
                                   Frame *fr) noexcept nogil:
    """A positive fixint."""
    if buf[pos] > 0x7F:
        return 0
    fr.status = buf[pos]
    return pos + 1


cdef inline Py_ssize_t fast_battery(const unsigned char *buf, Py_ssize_t pos,
                                    Frame *fr) noexcept nogil:
    """A positive fixint 0..100, or nil."""
    cdef unsigned int b = buf[pos]
    if b <= 100:
        fr.battery = <int16_t>(b * 10)
    elif b != 0xC0:
        return 0
    return pos + 1


cdef inline Py_ssize_t fast_rssi(const unsigned char *buf, Py_ssize_t pos,
                                 Frame *fr) noexcept nogil:
    """A negative fixint, a negative int8, 0, or nil."""
    cdef unsigned int b = buf[pos]
    if b >= 0xE0:
        fr.rssi = <int16_t>((<int>b - 0x100) * 10)
        return pos + 1
    if b == 0xD0 and buf[pos + 1] >= 0x80:
        fr.rssi = <int16_t>((<int>buf[pos + 1] - 0x100) * 10)
        return pos + 2
    if b == 0:
        fr.rssi = 0
        return pos + 1
    if b == 0xC0:
        return pos + 1
    return 0


cdef inline void fast_done(Frame *fr) noexcept nogil:
    fr.reason = 0
    fr.warn = 0
    fr.fw_len = 0
    fr.dev_side = 0


cdef inline Py_ssize_t fast_compact(const unsigned char *buf, Py_ssize_t pos, const Limits *lim,
                                    Frame *fr, uint64_t dev_seed) noexcept nogil:
    """A compact frame of 2..5 items (``buf[pos]`` is 0x92..0x95)."""
    cdef unsigned int n_items = buf[pos] - 0x90u
    fr.status = 0
    fr.battery = BATTERY_NONE_C
    fr.rssi = RSSI_NONE_C
    pos = fast_device(buf, pos + 1, fr, dev_seed)
    if pos:
        pos = fast_ts(buf, pos, lim, fr)
    if pos and n_items >= 3:
        pos = fast_status(buf, pos, fr)
        if pos and n_items >= 4:
            pos = fast_battery(buf, pos, fr)
            if pos and n_items == 5:
                pos = fast_rssi(buf, pos, fr)
    if pos:
        fast_done(fr)
    return pos


cdef inline Py_ssize_t fast_map(const unsigned char *buf, Py_ssize_t pos, const Limits *lim,
                                Frame *fr, uint64_t dev_seed) noexcept nogil:
    """A map frame of 2..5 distinct one-letter keys d, t, s, b, r in any order (``buf[pos]``
    is 0x82..0x85)."""
    cdef unsigned int n_items = buf[pos] - 0x80u
    cdef unsigned int j, seen = 0, bit
    cdef unsigned char c
    fr.status = 0
    fr.battery = BATTERY_NONE_C
    fr.rssi = RSSI_NONE_C
    pos += 1
    for j in range(n_items):
        if buf[pos] != 0xA1:
            return 0
        c = buf[pos + 1]
        pos += 2
        if c == b'd':
            bit = 1
            pos = fast_device(buf, pos, fr, dev_seed)
        elif c == b't':
            bit = 2
            pos = fast_ts(buf, pos, lim, fr)
        elif c == b's':
            bit = 4
            pos = fast_status(buf, pos, fr)
        elif c == b'b':
            bit = 8
            pos = fast_battery(buf, pos, fr)
        elif c == b'r':
            bit = 16
            pos = fast_rssi(buf, pos, fr)
        else:
            return 0
        if pos == 0 or seen & bit:
            return 0
        seen |= bit
    if seen & 3 != 3:
        return 0
    fast_done(fr)
    return pos


cdef int read_frames(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *ppos,
                     uint64_t n, const Limits *lim, Scratch *sc, uint64_t dev_seed,
                     uint64_t fw_seed) noexcept nogil:
    """Pass one over the ``n`` frames of a ``frames`` array starting at ``ppos[0]``."""
    cdef Val fields[6]
    cdef Val shorts[6]
    cdef Val head, key, junk
    cdef Val *target
    cdef unsigned int have, have_short
    cdef uint64_t i, j
    cdef int rc, k
    cdef Frame *fr
    cdef Frame *p
    cdef Py_ssize_t cap, pos
    # every frame takes a byte at least: a count beyond the data ends in E_TRUNC before the
    # frame records run out
    cap = <Py_ssize_t>min(n, <uint64_t>(end - ppos[0]))
    if cap > sc.cap:
        p = <Frame *>realloc(sc.frames, cap * sizeof(Frame))
        if p == NULL:
            return E_NOMEM
        sc.frames = p
        sc.cap = cap
    sc.side_len = 0
    sc.n_frames = 0
    for i in range(n):
        fr = &sc.frames[i]
        pos = ppos[0]
        # the body about 35 frames ahead: the hardware's stream prefetcher falls behind once the
        # interner and the device states fill the L2 cache (prefetching past the end is harmless)
        UPT_PREFETCH(buf + pos + 1024)
        if end - pos >= FAST_SPAN and (buf[pos] & 0xEF) - 0x82u <= 3u:
            if buf[pos] >= 0x90:
                pos = fast_compact(buf, pos, lim, fr, dev_seed)
            else:
                pos = fast_map(buf, pos, lim, fr, dev_seed)
            if pos:
                ppos[0] = pos
                sc.n_frames = i + 1
                continue
        rc = read_value(buf, end, ppos, &head)
        if rc:
            return rc
        have = 0
        if head.kind == ARRAY:
            # compact form: [device, ts, status, battery, rssi], extra items ignored
            for j in range(head.u):
                if j < 5:
                    rc = read_scalar(buf, end, ppos, &fields[j])
                    have |= 1u << j
                else:
                    rc = read_scalar(buf, end, ppos, &junk)
                if rc:
                    return rc
        elif head.kind == MAP:
            have_short = 0
            for j in range(head.u):
                rc = read_scalar(buf, end, ppos, &key)
                if rc:
                    return rc
                k = frame_key(buf + key.off, key.len) if key.kind == STR else K_NONE
                if k == K_NONE:
                    target = &junk
                elif k & K_SHORT:
                    target = &shorts[k >> 1]
                    have_short |= 1u << (k >> 1)
                else:
                    target = &fields[k >> 1]
                    have |= 1u << (k >> 1)
                rc = read_scalar(buf, end, ppos, target)
                if rc:
                    return rc
            # the short key wins unless it is nil
            if have_short:
                for k in range(6):
                    if (have_short >> k) & 1 and shorts[k].kind != NIL:
                        fields[k] = shorts[k]
                        have |= 1u << k
        else:
            fr.reason = R_NOT_FRAME
            sc.n_frames = i + 1
            continue
        rc = judge(buf, fields, have, lim, sc, fr, dev_seed, fw_seed)
        if rc:
            return rc
        sc.n_frames = i + 1
    return E_OK


cdef int header_key(const unsigned char *k, Py_ssize_t n) noexcept nogil:
    """Which batch key ``k`` is: 0 v, 1 gateway, 2 seq, 3 sent_at, 4 frames, -1 other."""
    if n == 1 and k[0] == b'v':
        return 0
    if n == 7 and memcmp(k, b"gateway", 7) == 0:
        return 1
    if n == 3 and memcmp(k, b"seq", 3) == 0:
        return 2
    if n == 7 and memcmp(k, b"sent_at", 7) == 0:
        return 3
    if n == 6 and memcmp(k, b"frames", 6) == 0:
        return 4
    return -1


cdef int walk_batch(const unsigned char *buf, Py_ssize_t end, const Limits *lim,
                    Scratch *sc, Header *hd, uint64_t dev_seed, uint64_t fw_seed) noexcept nogil:
    """Pass one over a whole batch body, then its whole-batch checks, in RollupPy's order."""
    cdef Py_ssize_t pos = 0
    cdef Val top, key, junk
    cdef Val *target
    cdef uint64_t i, whole
    cdef int rc, which
    memset(hd, 0, sizeof(Header))
    hd.frames_kind = NIL
    rc = read_value(buf, end, &pos, &top)
    if rc:
        return rc
    if top.kind != MAP:
        return E_NOT_MAP
    for i in range(top.u):
        rc = read_scalar(buf, end, &pos, &key)
        if rc:
            return rc
        which = header_key(buf + key.off, key.len) if key.kind == STR else -1
        if which == 4:
            rc = read_value(buf, end, &pos, &junk)
            if rc:
                return rc
            hd.frames_kind = junk.kind
            if junk.kind == ARRAY:
                if <int64_t>junk.u > lim.max_frames:
                    hd.too_many = junk.u
                    return E_TOO_MANY
                rc = read_frames(buf, end, &pos, junk.u, lim, sc, dev_seed, fw_seed)
                if rc:
                    return rc
                hd.have_frames = 1
            else:
                hd.have_frames = 0
                if junk.kind == MAP:
                    rc = skip_items(buf, end, &pos, 2 * junk.u)
                    if rc:
                        return rc
            continue
        if which == 0:
            target = &hd.version
            hd.have_version = 1
        elif which == 1:
            target = &hd.gateway
            hd.have_gateway = 1
        elif which == 2:
            target = &hd.seq
            hd.have_seq = 1
        elif which == 3:
            target = &hd.sent
            hd.have_sent = 1
        else:
            target = &junk
        rc = read_scalar(buf, end, &pos, target)
        if rc:
            return rc
    if pos != end:
        return E_TRAILING
    if hd.have_version and not (whole_number(&hd.version, &whole) and whole == 1):
        return E_VERSION
    if not hd.have_gateway:
        return E_GW_MISSING
    if (hd.gateway.kind != STR or not 0 < hd.gateway.len <= MAX_GATEWAY_LEN
            or not upt_utf8_ok(buf + hd.gateway.off, hd.gateway.len)):
        return E_GW_BAD
    if hd.have_seq and hd.seq.kind != NIL and not whole_number(&hd.seq, &whole):
        return E_SEQ
    if hd.frames_kind == NIL and not hd.have_frames:
        return E_FRAMES_MISSING
    if not hd.have_frames:
        return E_FRAMES_TYPE
    return E_OK
