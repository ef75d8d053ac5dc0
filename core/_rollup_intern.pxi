# Interning byte strings (device ids, firmware strings) to dense indexes without Python
# objects: an open-addressing table with linear probing whose 64-bit slots hold the high half
# of the key's hash and the index + 1, so a probe compares the hash before touching the key
# bytes in the arena. The table is kept at most half full and doubles when it would not be.
# Callers hold the rollup's lock (or own the interner outright).

cdef enum:
    INTERNER_MIN_SLOTS = 1024


cdef int interner_init(Interner *it, uint64_t seed) noexcept nogil:
    memset(it, 0, sizeof(Interner))
    it.seed = seed
    it.slots = <uint64_t *>calloc(INTERNER_MIN_SLOTS, sizeof(uint64_t))
    it.offs = <size_t *>malloc(64 * sizeof(size_t))
    if it.slots == NULL or it.offs == NULL:
        return E_NOMEM
    it.mask = INTERNER_MIN_SLOTS - 1
    it.offs_cap = 64
    it.offs[0] = 0
    return E_OK


cdef void interner_free(Interner *it) noexcept nogil:
    free(it.slots)
    free(it.arena)
    free(it.offs)
    it.slots = NULL
    it.arena = NULL
    it.offs = NULL
    it.count = 0


cdef inline Py_ssize_t interner_find(const Interner *it, uint64_t h, const unsigned char *key,
                                     size_t n) noexcept nogil:
    """The index of ``key`` (hashed ``h`` with the interner's seed), or -1."""
    cdef size_t i = h & it.mask
    cdef uint64_t tag = h >> 32
    cdef uint64_t s
    cdef size_t idx
    while True:
        s = it.slots[i]
        if s == 0:
            return -1
        if (s >> 32) == tag:
            idx = <size_t>(s & UPT_MASK32) - 1
            if (it.offs[idx + 1] - it.offs[idx] == n
                    and upt_eq(it.arena + it.offs[idx], key, n)):
                return <Py_ssize_t>idx
        i = (i + 1) & it.mask


cdef inline void interner_prefetch(const Interner *it, uint64_t h) noexcept nogil:
    UPT_PREFETCH(&it.slots[h & it.mask])


cdef inline void _interner_place(uint64_t *slots, size_t mask, uint64_t h,
                                 size_t idx) noexcept nogil:
    cdef size_t i = h & mask
    while slots[i] != 0:
        i = (i + 1) & mask
    slots[i] = ((h >> 32) << 32) | (<uint64_t>idx + 1)


cdef int _interner_grow(Interner *it) noexcept nogil:
    cdef size_t size = (it.mask + 1) * 2
    cdef size_t idx
    cdef uint64_t *slots = <uint64_t *>calloc(size, sizeof(uint64_t))
    if slots == NULL:
        return E_NOMEM
    for idx in range(it.count):
        _interner_place(slots, size - 1,
                        upt_hash(it.arena + it.offs[idx], it.offs[idx + 1] - it.offs[idx],
                                 it.seed),
                        idx)
    free(it.slots)
    it.slots = slots
    it.mask = size - 1
    return E_OK


cdef Py_ssize_t interner_add(Interner *it, uint64_t h, const unsigned char *key,
                             size_t n) noexcept nogil:
    """Append ``key`` (known absent) and return its index, or -1 if out of memory."""
    cdef size_t cap
    cdef unsigned char *arena
    cdef size_t *offs
    if it.count >= UPT_MASK32 - 1:
        return -1
    if (it.count + 1) * 2 > it.mask + 1:
        if _interner_grow(it):
            return -1
    if it.arena_len + n > it.arena_cap:
        cap = max(it.arena_cap * 2, it.arena_len + n, <size_t>4096)
        arena = <unsigned char *>realloc(it.arena, cap)
        if arena == NULL:
            return -1
        it.arena = arena
        it.arena_cap = cap
    if it.count + 2 > it.offs_cap:
        cap = it.offs_cap * 2
        offs = <size_t *>realloc(it.offs, cap * sizeof(size_t))
        if offs == NULL:
            return -1
        it.offs = offs
        it.offs_cap = cap
    memcpy(it.arena + it.arena_len, key, n)
    it.arena_len += n
    it.offs[it.count + 1] = it.arena_len
    _interner_place(it.slots, it.mask, h, it.count)
    it.count += 1
    return <Py_ssize_t>(it.count - 1)


cdef inline bytes interner_key(const Interner *it, size_t idx):
    return PyBytes_FromStringAndSize(<const char *>it.arena + it.offs[idx],
                                     it.offs[idx + 1] - it.offs[idx])


cdef inline int key_cmp(const Interner *it, size_t a, size_t b) noexcept nogil:
    """Compare keys ``a`` and ``b`` as Python compares bytes: -1, 0 or 1."""
    cdef size_t la = it.offs[a + 1] - it.offs[a]
    cdef size_t lb = it.offs[b + 1] - it.offs[b]
    cdef int c = memcmp(it.arena + it.offs[a], it.arena + it.offs[b], min(la, lb))
    if c:
        return -1 if c < 0 else 1
    return (la > lb) - (la < lb)
