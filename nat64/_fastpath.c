/*
 * Native twin of nat64.fastpath.FastPath.from_v6 / from_v4.
 *
 * Why it exists: the established-flow fast path is the translator's per-packet cost, and in CPython its
 * few dozen bytecodes cost several microseconds, more than the kernel spends moving the packet. This
 * module does the same steps in C on the same Python objects: it looks the flow template up in the
 * FastPath's own dicts, checks the packet exactly as fastpath.py does, updates the session, the shared
 * IPv4 identification counter and the pending counts, and builds the translated packet.
 *
 * fastpath.py stays the reference: it documents each step, runs where this module was not built, and the
 * tests run every case through both and compare the results byte for byte. Learning, expiry, and every
 * packet this returns None for, stay in Python.
 *
 * Per-packet cost: the pump (the builtin backend's datapath loop) runs without the GIL and touches no
 * Python object for a packet of a flow it has met in the same call. Before, it held the GIL throughout
 * and updated the Python objects for every packet (the session's counts and lifetime, the IPv4
 * identification, the pending counts: a dozen attribute reads and writes, an int or float made for
 * each): 0.7 us of the 1.1 us of user time a translated packet cost, where Tayga spends 0.3-0.5 us; and
 * each packet that woke the datapath had to take the GIL first, waiting whenever the daemon's event loop
 * held it. Now a Batch reads what the packets depend on once (MTUs, timeouts, the
 * identification), keeps the flows it has met (templates checked and copied), counts in C, and writes
 * everything back with the same results when the call returns (batch_close), or when its slots are full.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define TCP_SYN_FIN_RST 0x07
#define DF_ABOVE 1260   /* RFC 7915 5.1: DF only on IPv4 packets above 1260 bytes */
#define IPV4_DF 0x4000
#define MAX_PACKET 65575 /* an IPv6 header and the largest payload length */

static PyObject *s_removed, *s_state, *s_expires, *s_table, *s_timeouts, *s_udp, *s_tcp_established,
    *s_ipv4_mtu, *s_ipv6_mtu, *s_ident, *s_packets_6to4, *s_bytes_6to4, *s_packets_4to6, *s_bytes_4to6;

#define SLOTS 64 /* flows a batch keeps (a power of two): more interleaved flows flush the counts more often */
#define PROBES 4

/* A flow template met in this batch, checked and copied, with the counts not yet written back. Read and
 * written without the GIL: nothing here is a Python object but flow, which only the GIL holder touches. */
typedef struct {
    PyObject *flow;             /* the Flow6/Flow4 (strong), NULL for a free slot; its session is flow[0] */
    unsigned char key[38];      /* IPv6 packet[6:44] or IPv4 packet[12:24] */
    unsigned char ap[36];       /* flow[4]: addresses and ports of the translated packet */
    int v6, udp;
    long long a, head_sum, delta; /* ttl_proto (Flow6) or proto (Flow4); see fastpath.py */
    long long packets, bytes;
    double now;                 /* the time of the last packet counted */
} Slot;

/* What the packets of one call share (see the header comment). */
typedef struct {
    int open;
    PyObject *life_udp, *life_tcp; /* nat.table.timeouts.udp / .tcp_established (strong) */
    long long ident, ident0, mtu4, mtu6;
    long long pending[4];          /* as FastPath.pending */
    Slot slot[SLOTS];
} Batch;

typedef struct {
    PyObject_HEAD
    PyObject *v6;          /* dict: IPv6 packet[6:44] -> Flow6 */
    PyObject *v4;          /* dict: IPv4 packet[12:24] -> Flow4 */
    PyObject *nat;         /* the Nat64 whose fast path this is */
    PyObject *pending;     /* list: UDP 6to4, TCP 6to4, UDP 4to6, TCP 4to6 not yet in the counters */
    PyObject *established; /* TcpState.ESTABLISHED */
    int pumping;           /* a pump runs (maybe without the GIL): its batch and buffers are taken */
    int lone;              /* the last wake-up brought one packet: read one per wake-up (see pump) */
    unsigned wakes;
    Batch batch;           /* the pump's; open only while it runs */
    Batch batch1;          /* from_v6/from_v4's (a batch of one packet) */
    unsigned char in[MAX_PACKET + 1];  /* pump's read buffer (one more byte: an oversized read shows) */
    unsigned char out[MAX_PACKET + 20];
    unsigned char out1[MAX_PACKET + 20]; /* from_v6/from_v4's, which may run while a pump waits */
} Translator;

static inline unsigned u16(const unsigned char *p) { return ((unsigned)p[0] << 8) | p[1]; }

static inline void put16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void put32(unsigned char *p, uint32_t v) {
    put16(p, v >> 16);
    put16(p + 2, v & 0xFFFF);
}

/* Python's x % 0xFFFF (never negative). */
static inline long long mod_ffff(long long x) {
    long long r = x % 0xFFFF;
    return r < 0 ? r + 0xFFFF : r;
}

static int get_ll(PyObject *obj, PyObject *name, long long *out) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int set_ll(PyObject *obj, PyObject *name, long long value) {
    PyObject *v = PyLong_FromLongLong(value);
    if (v == NULL)
        return -1;
    int r = PyObject_SetAttr(obj, name, v);
    Py_DECREF(v);
    return r;
}

static int add_ll(PyObject *obj, PyObject *name, long long n) {
    long long v;
    return get_ll(obj, name, &v) < 0 ? -1 : set_ll(obj, name, v + n);
}

/* Take what every packet of the batch depends on (GIL held): the MTUs, the table's current timeouts, the
 * identification. The slots of a closed batch are all free (batch_close frees them, and the Translator
 * starts zeroed), so only the header is reset: clearing every slot cost a one-packet call more than its
 * translation. */
static int batch_open(Translator *self, Batch *b) {
    b->open = 0;
    b->life_udp = b->life_tcp = NULL;
    memset(b->pending, 0, sizeof b->pending);
    PyObject *table = NULL, *timeouts = NULL;
    if (get_ll(self->nat, s_ipv4_mtu, &b->mtu4) < 0 || get_ll(self->nat, s_ipv6_mtu, &b->mtu6) < 0
        || get_ll(self->nat, s_ident, &b->ident) < 0)
        return -1;
    if (!PyList_Check(self->pending) || PyList_GET_SIZE(self->pending) != 4) {
        PyErr_SetString(PyExc_TypeError, "pending must be a list of four counts");
        return -1;
    }
    if ((table = PyObject_GetAttr(self->nat, s_table)) == NULL
        || (timeouts = PyObject_GetAttr(table, s_timeouts)) == NULL
        || (b->life_udp = PyObject_GetAttr(timeouts, s_udp)) == NULL
        || (b->life_tcp = PyObject_GetAttr(timeouts, s_tcp_established)) == NULL) {
        Py_XDECREF(table);
        Py_XDECREF(timeouts);
        Py_CLEAR(b->life_udp);
        return -1;
    }
    Py_DECREF(table);
    Py_DECREF(timeouts);
    b->ident0 = b->ident;
    b->open = 1;
    return 0;
}

/* Write one slot's counts to its session as fastpath.py does per packet (GIL held): packet and byte
 * counts, and a lifetime of the last packet's time plus the timeout. */
static int slot_flush(Batch *b, Slot *sl) {
    if (!sl->packets)
        return 0;
    PyObject *session = PyTuple_GET_ITEM(sl->flow, 0);
    if (add_ll(session, sl->v6 ? s_packets_6to4 : s_packets_4to6, sl->packets) < 0
        || add_ll(session, sl->v6 ? s_bytes_6to4 : s_bytes_4to6, sl->bytes) < 0)
        return -1;
    sl->packets = sl->bytes = 0;
    PyObject *now = PyFloat_FromDouble(sl->now);
    if (now == NULL)
        return -1;
    PyObject *expires = PyNumber_Add(now, sl->udp ? b->life_udp : b->life_tcp);
    Py_DECREF(now);
    if (expires == NULL)
        return -1;
    int r = PyObject_SetAttr(session, s_expires, expires);
    Py_DECREF(expires);
    return r;
}

/* Write every slot's counts back and free the slots (GIL held; the batch stays open). */
static int batch_flush_slots(Batch *b) {
    int r = 0;
    for (int i = 0; i < SLOTS; i++) {
        Slot *sl = &b->slot[i];
        if (sl->flow == NULL)
            continue;
        if (r == 0 && slot_flush(b, sl) < 0)
            r = -1;
        Py_CLEAR(sl->flow);
    }
    return r;
}

/* Write everything back (slots, identification, pending counts) and close (GIL held); a no-op when not
 * open. On an error (set) the batch is closed all the same. */
static int batch_close(Translator *self, Batch *b) {
    if (!b->open)
        return 0;
    int r = batch_flush_slots(b);
    if (r == 0 && b->ident != b->ident0 && set_ll(self->nat, s_ident, b->ident) < 0)
        r = -1;
    for (Py_ssize_t i = 0; r == 0 && i < 4; i++) {
        if (!b->pending[i])
            continue;
        if (!PyList_Check(self->pending) || PyList_GET_SIZE(self->pending) != 4) {
            PyErr_SetString(PyExc_TypeError, "pending must be a list of four counts");
            r = -1;
            break;
        }
        long long count = PyLong_AsLongLong(PyList_GET_ITEM(self->pending, i));
        PyObject *v = count == -1 && PyErr_Occurred() ? NULL : PyLong_FromLongLong(count + b->pending[i]);
        if (v == NULL || PyList_SetItem(self->pending, i, v) < 0) /* steals v */
            r = -1;
    }
    Py_CLEAR(b->life_udp);
    Py_CLEAR(b->life_tcp);
    b->open = 0;
    return r;
}

/* The flow template for a key cut from the packet: a borrowed 6-tuple, or NULL (error set, or not found). */
static PyObject *lookup(PyObject *table, const unsigned char *key, Py_ssize_t len) {
    PyObject *k = PyBytes_FromStringAndSize((const char *)key, len);
    if (k == NULL)
        return NULL;
    PyObject *f = PyDict_GetItemWithError(table, k);
    Py_DECREF(k);
    if (f != NULL && (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 6)) {
        PyErr_SetString(PyExc_TypeError, "a flow template must be a 6-tuple");
        return NULL;
    }
    return f;
}

/* Whether the fast path may take this session's packets: 1 yes, 0 no (slow path), -1 error.
 * TCP sessions must still be ESTABLISHED; no session may have been removed from the table. */
static int session_usable(Translator *self, PyObject *s, int udp) {
    if (!udp) {
        PyObject *state = PyObject_GetAttr(s, s_state);
        if (state == NULL)
            return -1;
        int est = state == self->established;
        Py_DECREF(state);
        if (!est)
            return 0;
    }
    PyObject *removed = PyObject_GetAttr(s, s_removed);
    if (removed == NULL)
        return -1;
    int r = PyObject_IsTrue(removed);
    Py_DECREF(removed);
    return r < 0 ? -1 : !r;
}

/* Look a key up in the translator's dict and fill sl with its template if the fast path may take it (GIL
 * held): 1 filled, 0 not a flow of the fast path, -1 error set. A taken sl means the batch is full: all
 * its slots are flushed first. */
static int fill_slot(Translator *self, Batch *b, Slot *sl, const unsigned char *key, Py_ssize_t len, int v6) {
    PyObject *f = lookup(v6 ? self->v6 : self->v4, key, len);
    if (f == NULL)
        return PyErr_Occurred() ? -1 : 0;
    int udp = PyObject_IsTrue(PyTuple_GET_ITEM(f, 1));
    long long a = PyLong_AsLongLong(PyTuple_GET_ITEM(f, 2));
    long long head_sum = PyLong_AsLongLong(PyTuple_GET_ITEM(f, 3));
    long long delta = PyLong_AsLongLong(PyTuple_GET_ITEM(f, 5));
    PyObject *ap = PyTuple_GET_ITEM(f, 4);
    if (udp < 0 || PyErr_Occurred())
        return -1;
    if (!PyBytes_Check(ap) || PyBytes_GET_SIZE(ap) != (v6 ? 12 : 36)) {
        PyErr_SetString(PyExc_TypeError, "bad addresses/ports in a flow template");
        return -1;
    }
    int usable = session_usable(self, PyTuple_GET_ITEM(f, 0), udp);
    if (usable != 1)
        return usable;
    if (sl->flow != NULL && batch_flush_slots(b) < 0) /* no room: every slot goes back to Python */
        return -1;
    Py_INCREF(f); /* the slot keeps the template (and its session) alive */
    sl->flow = f;
    memcpy(sl->key, key, len);
    memcpy(sl->ap, PyBytes_AS_STRING(ap), v6 ? 12 : 36);
    sl->v6 = v6;
    sl->udp = udp;
    sl->a = a;
    sl->head_sum = head_sum;
    sl->delta = delta;
    sl->packets = sl->bytes = 0;
    return 1;
}

static inline unsigned key_hash(const unsigned char *key, Py_ssize_t len, int v6) {
    uint32_t h = v6 ? 2166136261u : 84696351u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < len; i++)
        h = (h ^ key[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* The batch's slot for the packet's flow: met before in this batch, or looked up, checked (a usable
 * session) and copied now, which takes the GIL: *ts is the pump's saved thread state while it runs without
 * the GIL, NULL when the caller holds it. 1 found (*out), 0 slow path, -1 error set (only when ts is NULL:
 * a pump reports an error as unraisable and hands the packet to the slow path). */
static int flow_slot(Translator *self, Batch *b, const unsigned char *key, Py_ssize_t len, int v6,
                     PyThreadState **ts, Slot **out) {
    unsigned h = key_hash(key, len, v6);
    Slot *sl = NULL;
    for (int i = 0; i < PROBES; i++) {
        Slot *s = &b->slot[(h + i) & (SLOTS - 1)];
        if (s->flow == NULL) {
            sl = s;
            break;
        }
        if (s->v6 == v6 && memcmp(s->key, key, len) == 0) {
            *out = s;
            return 1;
        }
    }
    if (sl == NULL)
        sl = &b->slot[h & (SLOTS - 1)]; /* all taken: fill_slot flushes them */
    if (ts != NULL)
        PyEval_RestoreThread(*ts);
    int r = fill_slot(self, b, sl, key, len, v6);
    if (r < 0 && ts != NULL) {
        /* a bug must not lose the packet: log it and hand the packet to the slow path */
        PyErr_WriteUnraisable((PyObject *)self);
        r = 0;
    }
    if (ts != NULL)
        *ts = PyEval_SaveThread();
    *out = sl;
    return r;
}

/* IPv6 -> IPv4 with a Flow6 slot: the length written to o, or 0 for the slow path. No Python here. */
static Py_ssize_t translate6_flow(Batch *b, Slot *sl, const unsigned char *p, Py_ssize_t n, double now,
                                  unsigned char *o) {
    int udp = sl->udp;
    long long ttl_proto = sl->a, ck, hck, ident;
    Py_ssize_t total = n - 20;
    if (n < (udp ? 48 : 60))
        return 0;
    uint32_t vtf = ((uint32_t)u16(p) << 16) | u16(p + 2);
    unsigned old = udp ? u16(p + 46) : u16(p + 56);
    if (vtf >> 28 != 6 || u16(p + 4) != n - 40 || (udp ? !old : p[53] & TCP_SYN_FIN_RST) || total > b->mtu4)
        return 0;
    ck = 0xFFFE - mod_ffff(0xFFFE - (long long)old + sl->delta);
    ident = b->ident = (b->ident + 1) & 0xFFFF;
    unsigned tos = (vtf >> 20) & 0xFF;
    if (total > DF_ABOVE) {
        hck = 0xFFFE - mod_ffff(sl->head_sum + tos + total + ident + IPV4_DF);
        ttl_proto |= (long long)IPV4_DF << 16;
    } else {
        hck = 0xFFFE - mod_ffff(sl->head_sum + tos + total + ident);
    }
    sl->packets++;
    sl->bytes += n;
    sl->now = now;
    b->pending[udp ? 0 : 1]++;
    put16(o, 0x4500 | tos);
    put16(o + 2, (unsigned)total);
    put16(o + 4, (unsigned)ident);
    put32(o + 6, (uint32_t)ttl_proto);
    put16(o + 10, (unsigned)hck);
    memcpy(o + 12, sl->ap, 12);
    if (udp) {
        memcpy(o + 24, p + 44, 2); /* UDP length */
        put16(o + 26, ck ? (unsigned)ck : 0xFFFF);
        memcpy(o + 28, p + 48, n - 48);
    } else {
        memcpy(o + 24, p + 44, 12); /* sequence, acknowledgment, offset/flags, window */
        put16(o + 36, (unsigned)ck);
        memcpy(o + 38, p + 58, n - 58);
    }
    return total;
}

/* IPv4 -> IPv6 with a Flow4 slot: the length written to o, or 0 for the slow path. No Python here. */
static Py_ssize_t translate4_flow(Batch *b, Slot *sl, const unsigned char *p, Py_ssize_t n, double now,
                                  unsigned char *o) {
    int udp = sl->udp;
    long long proto = sl->a, ck;
    Py_ssize_t plen = n - 20;
    if (n < (udp ? 28 : 40))
        return 0;
    unsigned tos = p[1], total = u16(p + 2), ident = u16(p + 4), fo = u16(p + 6), ttl = p[8], hck = u16(p + 10);
    unsigned old = udp ? u16(p + 26) : u16(p + 36);
    if (p[0] != 0x45 || total != n || fo & 0x3FFF || ttl <= 1 || (udp ? !old : p[33] & TCP_SYN_FIN_RST)
        || p[9] != proto || plen + 40 > b->mtu6)
        return 0;
    /* A right header checksum makes the header's words sum to a multiple of 0xFFFF. */
    if (mod_ffff(sl->head_sum + tos + total + ident + fo + (ttl << 8) + hck))
        return 0;
    ck = 0xFFFE - mod_ffff(0xFFFE - (long long)old + sl->delta);
    sl->packets++;
    sl->bytes += n;
    sl->now = now;
    b->pending[udp ? 2 : 3]++;
    put32(o, 0x60000000u | (tos << 20));
    put16(o + 4, (unsigned)plen);
    put16(o + 6, ((unsigned)proto << 8) | (ttl - 1));
    memcpy(o + 8, sl->ap, 36);
    if (udp) {
        memcpy(o + 44, p + 24, 2); /* UDP length */
        put16(o + 46, ck ? (unsigned)ck : 0xFFFF);
        memcpy(o + 48, p + 28, n - 28);
    } else {
        memcpy(o + 44, p + 24, 12);
        put16(o + 56, (unsigned)ck);
        memcpy(o + 58, p + 38, n - 38);
    }
    return n + 20;
}

/* Either direction, by IP version, in an open batch (ts: see flow_slot): the length written to o, 0 for
 * the slow path, -1 on error (set; only when ts is NULL). */
static Py_ssize_t translate(Translator *self, Batch *b, const unsigned char *p, Py_ssize_t n, double now,
                            unsigned char *o, PyThreadState **ts) {
    if (n < 1 || n > MAX_PACKET || !b->open)
        return 0;
    int v6 = p[0] >> 4 == 6;
    if (!v6 && p[0] >> 4 != 4)
        return 0;
    if (n < (v6 ? 44 : 24))
        return 0; /* too short for a flow key */
    Slot *sl;
    int r = flow_slot(self, b, v6 ? p + 6 : p + 12, v6 ? 38 : 12, v6, ts, &sl);
    if (r != 1)
        return r;
    return v6 ? translate6_flow(b, sl, p, n, now, o) : translate4_flow(b, sl, p, n, now, o);
}

static int ready(Translator *self) {
    if (self->v6 == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Translator.__init__ was not called");
        return 0;
    }
    return 1;
}

/* from_v6 / from_v4: the packet must be of that version, as the Python methods assume. A batch of one. */
static PyObject *from_version(Translator *self, PyObject *const *args, Py_ssize_t nargs, int version) {
    if (!ready(self))
        return NULL;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (packet, now)");
        return NULL;
    }
    double now = PyFloat_AsDouble(args[1]);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    Py_buffer buf;
    if (PyObject_GetBuffer(args[0], &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *p = buf.buf;
    Py_ssize_t r = 0;
    Batch *b = &self->batch1;
    if (buf.len && p[0] >> 4 == version && buf.len >= (version == 6 ? 44 : 24))
        r = batch_open(self, b) < 0 ? -1 : translate(self, b, p, buf.len, now, self->out1, NULL);
    PyBuffer_Release(&buf);
    if (r < 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        batch_close(self, b);
        PyErr_Restore(type, value, tb);
    } else if (batch_close(self, b) < 0) {
        r = -1;
    }
    if (r < 0)
        return NULL;
    if (r == 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)self->out1, r);
}

static PyObject *Translator_from_v6(Translator *self, PyObject *const *args, Py_ssize_t nargs) {
    return from_version(self, args, nargs, 6);
}

static PyObject *Translator_from_v4(Translator *self, PyObject *const *args, Py_ssize_t nargs) {
    return from_version(self, args, nargs, 4);
}

/* Seconds on CLOCK_MONOTONIC, the clock of time.monotonic(). */
static double monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Sleep (called without the GIL) until fd or wake is readable or deadline (monotonic seconds; < 0: none)
 * passes. 1: fd is readable, 0: woken (the wake pipe is emptied) or timed out, -1: error (errno). */
static int wait_readable(int fd, int wake, double deadline) {
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            double left = deadline - monotonic();
            if (left <= 0)
                return 0;
            ms = left > 3600 ? 3600000 : (int)(left * 1000) + 1; /* a longer wait rechecks the hour */
        }
        struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = wake, .events = POLLIN}};
        int r = poll(fds, 2, ms);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (fds[1].revents) {
            char junk[256];
            while (read(wake, junk, sizeof junk) > 0)
                ;
            return 0;
        }
        if (fds[0].revents)
            return 1;
    }
}

/* pump(fd, now, budget, wake=-1, deadline=-1.0) -> (translated, write_errors, slow_packet, drained); see
 * FastPath.pump. The fd must be non-blocking. The loop runs without the GIL: reading, translating the
 * packets of flows it has met in this call and writing them back touch no Python object; it takes the
 * GIL only to look a new flow up (and to flush the counts when its slots are full), and on return, where
 * everything counted is written back. So a packet is never held up by another thread holding the GIL (the
 * daemon's event loop), and the daemon's threads run meanwhile. While it runs only this thread may change
 * the translator (BuiltinNat64 hands every other thread's request to it). With a wake fd, an empty TUN is
 * waited on here instead of returned from, until a packet (then the packets are translated at the time
 * they were read, time.monotonic()'s), the wake pipe or the deadline; the budget then counts the packets
 * read since the last wait (a steady trickle never makes it return, which would take the GIL). */
static PyObject *Translator_pump(Translator *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!ready(self))
        return NULL;
    if (nargs < 3 || nargs > 5) {
        PyErr_SetString(PyExc_TypeError, "expected (fd, now, budget[, wake, deadline])");
        return NULL;
    }
    int fd = PyLong_AsLong(args[0]);
    double now = PyFloat_AsDouble(args[1]);
    Py_ssize_t budget = PyLong_AsSsize_t(args[2]);
    int wake = nargs > 3 ? (int)PyLong_AsLong(args[3]) : -1;
    double deadline = nargs > 4 ? PyFloat_AsDouble(args[4]) : -1.0;
    if (PyErr_Occurred())
        return NULL;
    if (self->pumping) {
        PyErr_SetString(PyExc_RuntimeError, "pump is already running in another thread");
        return NULL;
    }
    self->pumping = 1;
    Batch *b = &self->batch;
    if (batch_open(self, b) < 0) /* the fast path cannot run: every packet goes to the slow path */
        PyErr_WriteUnraisable((PyObject *)self);
    Py_ssize_t translated = 0, write_errors = 0, slow_len = 0, since_wait = 0;
    int drained = 0, error = 0, to_wait = 0;
    PyThreadState *ts = PyEval_SaveThread();
    while (since_wait < budget) {
        ssize_t n;
        if (to_wait) { /* one packet per wake-up: straight back to poll() (see below) */
            to_wait = 0;
            n = -1;
            errno = EAGAIN;
        } else {
            n = read(fd, self->in, MAX_PACKET + 1);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wake >= 0) {
                    if (since_wait)
                        self->lone = since_wait == 1;
                    int w = wait_readable(fd, wake, deadline);
                    if (w < 0) {
                        error = errno;
                        break;
                    }
                    if (w == 1) {
                        now = monotonic();
                        since_wait = 0;
                        continue;
                    }
                }
                drained = 1;
                break;
            }
            if (!translated)
                error = errno; /* else report what was done; the next call raises */
            break;
        }
        if (n == 0) {
            drained = 1;
            break;
        }
        Py_ssize_t r = translate(self, b, self->in, n, now, self->out, &ts);
        if (r == 0) {
            slow_len = n;
            break;
        }
        translated++;
        since_wait++;
        if (write(fd, self->out, r) != r)
            write_errors++;
        /* Lone packets (one per wake-up, as a request and its answer are) go back to poll() at once, as
         * Tayga does: reading on until EAGAIN costs each one a read() more, on the way of the answer when
         * its receiver shares the CPU (the added latency). Every 8th wake-up reads on, so a burst is
         * found and drained with read() alone. */
        if (wake >= 0 && self->lone && since_wait == 1 && ++self->wakes % 8)
            to_wait = 1;
    }
    PyEval_RestoreThread(ts);
    /* The slow path, the expiry and the counters' readers see what this call did. An error here is
     * reported, not raised: the packets went out. */
    if (batch_close(self, b) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    self->pumping = 0;
    if (error) {
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (!slow_len)
        return Py_BuildValue("nnOO", translated, write_errors, Py_None, drained ? Py_True : Py_False);
    return Py_BuildValue("nny#O", translated, write_errors, (const char *)self->in, slow_len, Py_False);
}

static int Translator_init(Translator *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"v6", "v4", "nat", "pending", "established", NULL};
    PyObject *v6, *v4, *nat, *pending, *est;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OO!O", kwlist, &PyDict_Type, &v6, &PyDict_Type, &v4, &nat,
                                     &PyList_Type, &pending, &est))
        return -1;
    Py_INCREF(v6);
    Py_INCREF(v4);
    Py_INCREF(nat);
    Py_INCREF(pending);
    Py_INCREF(est);
    Py_XSETREF(self->v6, v6);
    Py_XSETREF(self->v4, v4);
    Py_XSETREF(self->nat, nat);
    Py_XSETREF(self->pending, pending);
    Py_XSETREF(self->established, est);
    return 0;
}

static int Translator_traverse(Translator *self, visitproc visit, void *arg) {
    Py_VISIT(self->v6);
    Py_VISIT(self->v4);
    Py_VISIT(self->nat);
    Py_VISIT(self->pending);
    Py_VISIT(self->established);
    return 0;
}

/* Let a batch go without writing back: never open here unless a call was cut short. */
static void batch_drop(Batch *b) {
    for (int i = 0; i < SLOTS; i++)
        Py_CLEAR(b->slot[i].flow);
    Py_CLEAR(b->life_udp);
    Py_CLEAR(b->life_tcp);
    b->open = 0;
}

static int Translator_clear(Translator *self) {
    batch_drop(&self->batch);
    batch_drop(&self->batch1);
    Py_CLEAR(self->v6);
    Py_CLEAR(self->v4);
    Py_CLEAR(self->nat);
    Py_CLEAR(self->pending);
    Py_CLEAR(self->established);
    return 0;
}

static void Translator_dealloc(Translator *self) {
    PyObject_GC_UnTrack(self);
    Translator_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Translator_methods[] = {
    {"from_v6", (PyCFunction)(void (*)(void))Translator_from_v6, METH_FASTCALL,
     "from_v6(packet, now) -> IPv4 packet, or None for the slow path"},
    {"from_v4", (PyCFunction)(void (*)(void))Translator_from_v4, METH_FASTCALL,
     "from_v4(packet, now) -> IPv6 packet, or None for the slow path"},
    {"pump", (PyCFunction)(void (*)(void))Translator_pump, METH_FASTCALL,
     "pump(fd, now, budget, wake=-1, deadline=-1.0) -> (translated, write_errors, slow_packet, drained)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TranslatorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nat64._fastpath.Translator",
    .tp_doc = "Native from_v6/from_v4 over a FastPath's flow templates (see nat64/fastpath.py).",
    .tp_basicsize = sizeof(Translator),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Translator_init,
    .tp_dealloc = (destructor)Translator_dealloc,
    .tp_traverse = (traverseproc)Translator_traverse,
    .tp_clear = (inquiry)Translator_clear,
    .tp_methods = Translator_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "nat64._fastpath",
    .m_doc = "Native NAT64 fast path (see nat64/fastpath.py).",
    .m_size = -1,
};

#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) \
        return NULL;

PyMODINIT_FUNC PyInit__fastpath(void) {
    INTERN(s_removed, "removed")
    INTERN(s_state, "state")
    INTERN(s_expires, "expires")
    INTERN(s_table, "table")
    INTERN(s_timeouts, "timeouts")
    INTERN(s_udp, "udp")
    INTERN(s_tcp_established, "tcp_established")
    INTERN(s_ipv4_mtu, "ipv4_mtu")
    INTERN(s_ipv6_mtu, "ipv6_mtu")
    INTERN(s_ident, "_ident")
    INTERN(s_packets_6to4, "packets_6to4")
    INTERN(s_bytes_6to4, "bytes_6to4")
    INTERN(s_packets_4to6, "packets_4to6")
    INTERN(s_bytes_4to6, "bytes_4to6")
    if (PyType_Ready(&TranslatorType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&TranslatorType);
    if (PyModule_AddObject(m, "Translator", (PyObject *)&TranslatorType) < 0) {
        Py_DECREF(&TranslatorType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
