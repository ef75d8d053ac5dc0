# Live per-device-day state: apply() folds frames into each device's hot state (DevState),
# and whatever does not fit there goes to the overflow vectors; drain() turns both into
# per-day bitmaps and stats rows with the merge rules of RollupPy.apply. Callers hold the
# rollup's lock; nothing here needs the GIL.


cdef inline int64_t floordiv(int64_t a, int64_t b) noexcept nogil:
    """Python's ``a // b`` for ``b > 0``."""
    cdef int64_t q = a // b  # cdivision: truncates
    if a % b < 0:
        q -= 1
    return q


# --- overflow vectors ------------------------------------------------------------------------

cdef int _grow(void **vec, size_t *cap, size_t item) noexcept nogil:
    cdef size_t n = cap[0] * 2 if cap[0] else 256
    cdef void *p = realloc(vec[0], n * item)
    if p == NULL:
        return E_NOMEM
    vec[0] = p
    cap[0] = n
    return E_OK


cdef inline int push_interval(Overflow *ov, uint32_t dev, int64_t a, int64_t b) noexcept nogil:
    if ov.n_iv == ov.cap_iv and _grow(<void **>&ov.iv, &ov.cap_iv, sizeof(Interval)):
        return E_NOMEM
    ov.iv[ov.n_iv].dev = dev
    ov.iv[ov.n_iv].a = a
    ov.iv[ov.n_iv].b = b
    ov.n_iv += 1
    return E_OK


cdef inline int push_fault(Overflow *ov, uint32_t dev, int64_t slot) noexcept nogil:
    if ov.n_faults == ov.cap_faults and _grow(<void **>&ov.faults, &ov.cap_faults, sizeof(Fault)):
        return E_NOMEM
    ov.faults[ov.n_faults].dev = dev
    ov.faults[ov.n_faults].slot = slot
    ov.n_faults += 1
    return E_OK


cdef inline StatsRow *push_record(Overflow *ov, uint32_t dev, int32_t day) noexcept nogil:
    """Append a stats record for (dev, day); the caller fills its row. NULL if no memory."""
    if ov.n_recs == ov.cap_recs and _grow(<void **>&ov.recs, &ov.cap_recs, sizeof(StatsRec)):
        return NULL
    ov.recs[ov.n_recs].dev = dev
    ov.recs[ov.n_recs].day = day
    ov.n_recs += 1
    return &ov.recs[ov.n_recs - 1].row


cdef void overflow_clear(Overflow *ov) noexcept nogil:
    """Empty the vectors; keep modest buffers for the next round, free big ones."""
    ov.n_iv = ov.n_faults = ov.n_recs = 0
    if ov.cap_iv > 65536:
        free(ov.iv)
        ov.iv = NULL
        ov.cap_iv = 0
    if ov.cap_faults > 65536:
        free(ov.faults)
        ov.faults = NULL
        ov.cap_faults = 0
    if ov.cap_recs > 65536:
        free(ov.recs)
        ov.recs = NULL
        ov.cap_recs = 0


cdef void overflow_free(Overflow *ov) noexcept nogil:
    free(ov.iv)
    free(ov.faults)
    free(ov.recs)
    memset(ov, 0, sizeof(Overflow))


# --- stats rows ------------------------------------------------------------------------------

cdef inline void row_reset(DevState *st) noexcept nogil:
    st.frames = 0
    st.fault_frames = 0
    st.rssi_sum = 0
    st.rssi_n = 0
    st.first_ms = -1
    st.last_ms = -1
    st.batt_ms = -1
    st.rssi_ms = -1
    st.fw_ms = -1
    st.batt_last = -1
    st.batt_min = -1
    st.rssi_last = RSSI_NONE_C
    st.fw_last = 0
    st.last_status = 0


cdef inline void row_empty(StatsRow *r) noexcept nogil:
    r.rssi_sum = 0
    r.frames = 0
    r.fault_frames = 0
    r.rssi_n = 0
    r.first_ms = -1
    r.last_ms = -1
    r.batt_ms = -1
    r.rssi_ms = -1
    r.fw_ms = -1
    r.batt_last = -1
    r.batt_min = -1
    r.rssi_last = RSSI_NONE_C
    r.fw_last = 0
    r.last_status = 0


cdef inline void row_export(const DevState *st, StatsRow *r) noexcept nogil:
    r.rssi_sum = st.rssi_sum
    r.frames = st.frames
    r.fault_frames = st.fault_frames
    r.rssi_n = st.rssi_n
    r.first_ms = st.first_ms
    r.last_ms = st.last_ms
    r.batt_ms = st.batt_ms
    r.rssi_ms = st.rssi_ms
    r.fw_ms = st.fw_ms
    r.batt_last = st.batt_last
    r.batt_min = st.batt_min
    r.rssi_last = st.rssi_last
    r.fw_last = st.fw_last
    r.last_status = st.last_status


cdef inline bint fw_after(const Interner *fwi, uint32_t a, uint32_t b) noexcept nogil:
    """Whether firmware ``a``'s string sorts after ``b``'s (id 0 is the empty string)."""
    if a == b or a == 0:
        return False
    if b == 0:
        return fwi.offs[a] != fwi.offs[a - 1]
    return key_cmp(fwi, a - 1, b - 1) > 0


cdef inline void merge_row(StatsRow *a, const StatsRow *b, const Interner *fwi) noexcept nogil:
    """Fold row ``b`` into ``a``: RollupPy.apply's rules (core.dayblock.merge_stats)."""
    a.rssi_sum += b.rssi_sum
    a.frames += b.frames
    a.fault_frames += b.fault_frames
    a.rssi_n += b.rssi_n
    if a.first_ms < 0 or (b.first_ms >= 0 and b.first_ms < a.first_ms):
        a.first_ms = b.first_ms
    if b.last_ms > a.last_ms or (b.last_ms == a.last_ms and b.last_status > a.last_status):
        a.last_ms = b.last_ms
        a.last_status = b.last_status
    if b.batt_ms > a.batt_ms or (b.batt_ms == a.batt_ms and b.batt_last > a.batt_last):
        a.batt_ms = b.batt_ms
        a.batt_last = b.batt_last
    if a.batt_min < 0 or (b.batt_min >= 0 and b.batt_min < a.batt_min):
        a.batt_min = b.batt_min
    if b.rssi_ms > a.rssi_ms or (b.rssi_ms == a.rssi_ms and b.rssi_last > a.rssi_last):
        a.rssi_ms = b.rssi_ms
        a.rssi_last = b.rssi_last
    if b.fw_ms > a.fw_ms or (b.fw_ms == a.fw_ms and fw_after(fwi, b.fw_last, a.fw_last)):
        a.fw_ms = b.fw_ms
        a.fw_last = b.fw_last


# --- apply -----------------------------------------------------------------------------------

cdef inline int cover(DevState *st, Overflow *ov, uint32_t dev, int64_t spd,
                      int64_t slot_a, int64_t slot_b) noexcept nogil:
    """Mark slots [slot_a, slot_b) covered: extend the device's run, or overflow."""
    cdef int64_t base = <int64_t>st.day * spd
    cdef int64_t a = slot_a - base
    cdef int64_t b = slot_b - base
    cdef int64_t ra, rb
    if st.run_n:
        ra = st.run_a
        rb = ra + st.run_n
        if a <= rb and b >= ra:  # touches the run
            if a >= ra and b <= rb:
                return E_OK
            a = min(a, ra)
            b = max(b, rb)
            if a >= UPT_INT32_MIN and b - a <= UPT_UINT32_MAX:
                st.run_a = <int32_t>a
                st.run_n = <uint32_t>(b - a)
                return E_OK
            return push_interval(ov, dev, slot_a, slot_b)
        if a < ra:  # an older gap: the run stays the frontier
            return push_interval(ov, dev, slot_a, slot_b)
        if push_interval(ov, dev, base + ra, base + rb):  # a newer gap starts a new run
            return E_NOMEM
        st.run_n = 0
    if UPT_INT32_MIN <= a <= UPT_INT32_MAX and b - a <= UPT_UINT32_MAX:
        st.run_a = <int32_t>a
        st.run_n = <uint32_t>(b - a)
        return E_OK
    return push_interval(ov, dev, slot_a, slot_b)


cdef int apply_frames(DevState *states, Overflow *ov, const Interner *fwi, int64_t slot_ns,
                      int64_t spd, uint64_t magic, const uint32_t *dev, const int64_t *ts,
                      const uint8_t *status, const int16_t *battery, const int16_t *rssi,
                      const uint16_t *fw, Py_ssize_t n) noexcept nogil:
    """Fold ``n`` accepted frames into the live state. Device/firmware ids are checked."""
    cdef Py_ssize_t i
    cdef DevState *st
    cdef StatsRow *rec
    cdef uint32_t d
    cdef int64_t t, day, slot, slot_e, ms, rebased
    cdef uint64_t ut, sec, esec, uday, sod
    cdef uint32_t sub
    cdef int s
    cdef int16_t b, r
    cdef uint16_t f
    cdef int rc
    cdef bint late
    for i in range(n):
        if i + 16 < n:  # both lines of a state that straddles two
            UPT_PREFETCH_W(&states[dev[i + 16]])
            UPT_PREFETCH_W(<char *>&states[dev[i + 16]] + sizeof(DevState) - 1)
        d = dev[i]
        st = &states[d]
        t = ts[i]
        s = status[i]
        slot_e = 0
        if UPT_LIKELY(t >= 0):
            # whole seconds first, then everything from them: constant divisors compile to
            # multiplications, and the slot comes from the second of the day by the
            # precomputed reciprocal of slot_s
            ut = <uint64_t>t
            sec = ut // <uint64_t>UPT_NS_PER_S  # below 2**34
            sub = <uint32_t>(ut - sec * <uint64_t>UPT_NS_PER_S)
            uday = sec // <uint64_t>86_400
            sod = sec - uday * <uint64_t>86_400
            day = <int64_t>uday
            slot = day * spd + <int64_t>((sod * magic) >> 34)
            ms = <int64_t>(sod * <uint64_t>1000 + sub // <uint32_t>1_000_000)
            if s == 0:
                # the covered span ends at t + heartbeat - 1 ns: in second sec + hb - 1 if t
                # is a whole second, else in second sec + hb
                esec = sec + st.hb_s - (sub == 0)
                uday = esec // <uint64_t>86_400
                slot_e = (<int64_t>uday * spd
                          + <int64_t>(((esec - uday * <uint64_t>86_400) * magic) >> 34))
        else:  # only hand-made batches have times before 1970
            slot = floordiv(t, slot_ns)
            day = floordiv(t, UPT_NS_PER_DAY)
            ms = floordiv(t, UPT_NS_PER_MS) - day * UPT_MS_PER_DAY
            if s == 0:
                slot_e = floordiv(t + <int64_t>st.hb_s * UPT_NS_PER_S - 1, slot_ns)
        b = battery[i]
        r = rssi[i]
        f = fw[i]
        late = False
        if st.frames == 0:  # the device held nothing
            row_reset(st)
            st.day = <int32_t>day
            st.run_n = 0
        elif day != st.day:
            if day > st.day:  # a new day: the old row leaves the hot state
                rec = push_record(ov, d, st.day)
                if rec == NULL:
                    return E_NOMEM
                row_export(st, rec)
                if st.run_n:  # keep the run, relative to the new day if it still fits
                    rebased = st.run_a + (st.day - day) * spd
                    if rebased < UPT_INT32_MIN:
                        if push_interval(ov, d, st.day * spd + st.run_a,
                                         st.day * spd + st.run_a + st.run_n):
                            return E_NOMEM
                        st.run_n = 0
                    else:
                        st.run_a = <int32_t>rebased
                row_reset(st)
                st.day = <int32_t>day
            else:  # a late frame for an older day: a record of its own
                rec = push_record(ov, d, <int32_t>day)
                if rec == NULL:
                    return E_NOMEM
                row_empty(rec)
                rec.frames = 1
                rec.fault_frames = s != 0
                rec.first_ms = rec.last_ms = <int32_t>ms
                rec.last_status = <uint8_t>s
                if b != BATTERY_NONE_C:
                    rec.batt_min = rec.batt_last = b
                    rec.batt_ms = <int32_t>ms
                if r != RSSI_NONE_C:
                    rec.rssi_n = 1
                    rec.rssi_sum = r
                    rec.rssi_last = r
                    rec.rssi_ms = <int32_t>ms
                if f != 0:
                    rec.fw_last = f
                    rec.fw_ms = <int32_t>ms
                late = True
        if not late:
            if UPT_UNLIKELY(st.frames == UPT_MASK32 or (r != RSSI_NONE_C and st.rssi_n == 0xFFFF)):
                # a counter would overflow: the row so far leaves the hot state
                rec = push_record(ov, d, st.day)
                if rec == NULL:
                    return E_NOMEM
                row_export(st, rec)
                row_reset(st)
            st.frames += 1
            if s:
                st.fault_frames += 1
            if st.first_ms < 0 or ms < st.first_ms:
                st.first_ms = <int32_t>ms
            if ms > st.last_ms or (ms == st.last_ms and s > st.last_status):
                st.last_ms = <int32_t>ms
                st.last_status = <uint8_t>s
            if b != BATTERY_NONE_C:
                if st.batt_min < 0 or b < st.batt_min:
                    st.batt_min = b
                if ms > st.batt_ms or (ms == st.batt_ms and b > st.batt_last):
                    st.batt_ms = <int32_t>ms
                    st.batt_last = b
            if r != RSSI_NONE_C:
                st.rssi_n += 1
                st.rssi_sum += r
                if ms > st.rssi_ms or (ms == st.rssi_ms and r > st.rssi_last):
                    st.rssi_ms = <int32_t>ms
                    st.rssi_last = r
            if f != 0:
                if ms > st.fw_ms or (ms == st.fw_ms and fw_after(fwi, f, st.fw_last)):
                    st.fw_ms = <int32_t>ms
                    st.fw_last = f
        # coverage, or a fault slot
        if s == 0:
            rc = cover(st, ov, d, spd, slot, slot_e + 1)
        else:
            rc = push_fault(ov, d, slot)
        if rc:
            return rc
    return E_OK


# --- drain -----------------------------------------------------------------------------------

ctypedef struct DayOut:
    size_t n                # devices touched that day
    uint32_t *dev
    uint8_t *cov
    uint8_t *fault
    StatsRow *stats


# What drain() and pending_days work from: every (device, day) the state touches, as sorted
# unique keys dev << 32 | (day - dmin), and where each one lands in the output.
ctypedef struct Touched:
    uint64_t *keys
    size_t m
    int64_t dmin
    int64_t dmax
    size_t *dev_first       # first key index of each device
    size_t *entry_row       # row of each key within its day's arrays
    int32_t *day_index      # index into ``days`` of each day - dmin, -1 if untouched
    DayOut *days
    size_t n_days
    size_t width            # bytes per bitmap row
    int64_t spd


cdef void touched_free(Touched *tc) noexcept nogil:
    free(tc.keys)
    free(tc.dev_first)
    free(tc.entry_row)
    free(tc.day_index)
    free(tc.days)
    memset(tc, 0, sizeof(Touched))


cdef inline void _span(int64_t *lo, int64_t *hi, int64_t day) noexcept nogil:
    if day < lo[0]:
        lo[0] = day
    if day > hi[0]:
        hi[0] = day


cdef void _radix_sort(uint64_t *keys, uint64_t *tmp, size_t n) noexcept nogil:
    """LSD radix sort, a byte at a time; bytes on which all keys agree cost one counting pass."""
    cdef size_t count[256]
    cdef size_t i, total, c
    cdef int shift, k
    cdef uint64_t *src = keys
    cdef uint64_t *dst = tmp
    cdef uint64_t *swap
    for shift in range(0, 64, 8):
        memset(count, 0, sizeof(count))
        for i in range(n):
            count[(src[i] >> shift) & 0xFF] += 1
        if count[(src[0] >> shift) & 0xFF] == n:
            continue
        total = 0
        for k in range(256):
            c = count[k]
            count[k] = total
            total += c
        for i in range(n):
            k = (src[i] >> shift) & 0xFF
            dst[count[k]] = src[i]
            count[k] += 1
        swap = src
        src = dst
        dst = swap
    if src != keys:
        memcpy(keys, src, n * sizeof(uint64_t))


cdef int touched_keys(Touched *tc, const DevState *states, size_t n_dev, const Overflow *ov,
                      int64_t spd) noexcept nogil:
    """Collect, sort and deduplicate the (device, day) keys of the live state."""
    cdef size_t i, n = 0, j
    cdef int64_t lo = UPT_INT64_MAX, hi = -UPT_INT64_MAX, a, b, day
    cdef const DevState *st
    cdef uint64_t *keys
    cdef uint64_t *tmp
    memset(tc, 0, sizeof(Touched))
    tc.spd = spd
    # first pass: how many keys, over which days
    for i in range(n_dev):
        st = &states[i]
        if st.frames:
            n += 1
            _span(&lo, &hi, st.day)
            if st.run_n:
                a = <int64_t>st.day * spd + st.run_a
                b = a + st.run_n
                _span(&lo, &hi, floordiv(a, spd))
                _span(&lo, &hi, floordiv(b - 1, spd))
                n += floordiv(b - 1, spd) - floordiv(a, spd) + 1
    for i in range(ov.n_recs):
        n += 1
        _span(&lo, &hi, ov.recs[i].day)
    for i in range(ov.n_faults):
        n += 1
        _span(&lo, &hi, floordiv(ov.faults[i].slot, spd))
    for i in range(ov.n_iv):
        a = floordiv(ov.iv[i].a, spd)
        b = floordiv(ov.iv[i].b - 1, spd)
        _span(&lo, &hi, a)
        _span(&lo, &hi, b)
        n += b - a + 1
    if n == 0:
        return E_OK
    tc.dmin = lo
    tc.dmax = hi
    keys = <uint64_t *>malloc(n * sizeof(uint64_t))
    tmp = <uint64_t *>malloc(n * sizeof(uint64_t))
    if keys == NULL or tmp == NULL:
        free(keys)
        free(tmp)
        return E_NOMEM
    # second pass: the keys
    j = 0
    for i in range(n_dev):
        st = &states[i]
        if st.frames:
            keys[j] = (<uint64_t>i << 32) | <uint64_t>(st.day - lo)
            j += 1
            if st.run_n:
                a = <int64_t>st.day * spd + st.run_a
                b = a + st.run_n
                for day in range(floordiv(a, spd), floordiv(b - 1, spd) + 1):
                    keys[j] = (<uint64_t>i << 32) | <uint64_t>(day - lo)
                    j += 1
    for i in range(ov.n_recs):
        keys[j] = (<uint64_t>ov.recs[i].dev << 32) | <uint64_t>(ov.recs[i].day - lo)
        j += 1
    for i in range(ov.n_faults):
        keys[j] = (<uint64_t>ov.faults[i].dev << 32) | <uint64_t>(
            floordiv(ov.faults[i].slot, spd) - lo)
        j += 1
    for i in range(ov.n_iv):
        for day in range(floordiv(ov.iv[i].a, spd), floordiv(ov.iv[i].b - 1, spd) + 1):
            keys[j] = (<uint64_t>ov.iv[i].dev << 32) | <uint64_t>(day - lo)
            j += 1
    _radix_sort(keys, tmp, n)
    free(tmp)
    j = 1
    for i in range(1, n):
        if keys[i] != keys[j - 1]:
            keys[j] = keys[i]
            j += 1
    tc.keys = keys
    tc.m = j
    return E_OK


cdef int touched_layout(Touched *tc, size_t n_dev) noexcept nogil:
    """Index the keys by device, count them by day and give each its row in its day."""
    cdef size_t e, n_span = <size_t>(tc.dmax - tc.dmin + 1)
    cdef size_t *fill
    cdef uint32_t dayoff
    tc.dev_first = <size_t *>malloc((n_dev + 1) * sizeof(size_t))
    tc.entry_row = <size_t *>malloc(tc.m * sizeof(size_t))
    tc.day_index = <int32_t *>malloc(n_span * sizeof(int32_t))
    fill = <size_t *>calloc(n_span, sizeof(size_t))
    if tc.dev_first == NULL or tc.entry_row == NULL or tc.day_index == NULL or fill == NULL:
        free(fill)
        return E_NOMEM
    e = tc.m
    while e:
        e -= 1
        tc.dev_first[tc.keys[e] >> 32] = e
    for e in range(tc.m):
        dayoff = <uint32_t>(tc.keys[e] & UPT_MASK32)
        tc.entry_row[e] = fill[dayoff]
        fill[dayoff] += 1
    tc.n_days = 0
    for e in range(n_span):
        if fill[e]:
            tc.day_index[e] = <int32_t>tc.n_days
            tc.n_days += 1
        else:
            tc.day_index[e] = -1
    tc.days = <DayOut *>calloc(tc.n_days, sizeof(DayOut))
    if tc.days == NULL:
        free(fill)
        return E_NOMEM
    for e in range(n_span):
        if fill[e]:
            tc.days[tc.day_index[e]].n = fill[e]
    free(fill)
    return E_OK


cdef inline size_t _entry(const Touched *tc, uint32_t dev, int64_t day) noexcept nogil:
    cdef uint64_t key = (<uint64_t>dev << 32) | <uint64_t>(day - tc.dmin)
    cdef size_t e = tc.dev_first[dev]
    while tc.keys[e] != key:
        e += 1
    return e


cdef inline uint8_t *_bitmap_row(const Touched *tc, uint32_t dev, int64_t day,
                                 bint fault) noexcept nogil:
    cdef size_t e = _entry(tc, dev, day)
    cdef const DayOut *out = &tc.days[tc.day_index[day - tc.dmin]]
    return (out.fault if fault else out.cov) + tc.entry_row[e] * tc.width


cdef inline StatsRow *_stats_row(const Touched *tc, uint32_t dev, int64_t day) noexcept nogil:
    cdef size_t e = _entry(tc, dev, day)
    return &tc.days[tc.day_index[day - tc.dmin]].stats[tc.entry_row[e]]


cdef inline void set_bits(uint8_t *row, int64_t i, int64_t j) noexcept nogil:
    """Set bits [i, j) of a packed row (bit k is bit k & 7 of byte k >> 3)."""
    while i < j and (i & 7):
        row[i >> 3] |= 1 << (i & 7)
        i += 1
    if j - i >= 8:
        memset(row + (i >> 3), 0xFF, <size_t>((j - i) >> 3))
        i += (j - i) & ~7
    while i < j:
        row[i >> 3] |= 1 << (i & 7)
        i += 1


cdef void _cover_out(const Touched *tc, uint32_t dev, int64_t a, int64_t b) noexcept nogil:
    cdef int64_t spd = tc.spd
    cdef int64_t day = floordiv(a, spd)
    cdef int64_t seg
    while a < b:
        seg = min(b, (day + 1) * spd)
        set_bits(_bitmap_row(tc, dev, day, False), a - day * spd, seg - day * spd)
        a = seg
        day += 1


cdef void touched_fill(Touched *tc, const DevState *states, size_t n_dev, const Overflow *ov,
                       const Interner *fwi) noexcept nogil:
    """Write devices, bitmaps and merged stats rows into the output arrays."""
    cdef size_t e, i
    cdef int64_t day, a, spd = tc.spd
    cdef const DayOut *out
    cdef const DevState *st
    cdef StatsRow row
    cdef StatsRow *dst
    for e in range(tc.m):
        out = &tc.days[tc.day_index[tc.keys[e] & UPT_MASK32]]
        out.dev[tc.entry_row[e]] = <uint32_t>(tc.keys[e] >> 32)
        row_empty(&out.stats[tc.entry_row[e]])
    for i in range(n_dev):
        st = &states[i]
        if st.frames:
            row_export(st, &row)
            merge_row(_stats_row(tc, <uint32_t>i, st.day), &row, fwi)
            if st.run_n:
                a = <int64_t>st.day * spd + st.run_a
                _cover_out(tc, <uint32_t>i, a, a + st.run_n)
    for i in range(ov.n_recs):
        merge_row(_stats_row(tc, ov.recs[i].dev, ov.recs[i].day), &ov.recs[i].row, fwi)
    for i in range(ov.n_iv):
        _cover_out(tc, ov.iv[i].dev, ov.iv[i].a, ov.iv[i].b)
    for i in range(ov.n_faults):
        day = floordiv(ov.faults[i].slot, spd)
        a = ov.faults[i].slot - day * spd
        _bitmap_row(tc, ov.faults[i].dev, day, True)[a >> 3] |= 1 << (a & 7)
