/* The DNS64 server's UDP fast path, natively: read a batch of datagrams, answer the repeats of cached plain
 * queries from clients already found allowed, hand everything else back to Python.
 *
 * Why native (docs/development.md: only where a benchmark shows Python cannot meet the target): the Python
 * loop (nat64/dns64/server.py, _UdpListener.readable) does per query no more than one recvfrom, one dict
 * lookup and one sendto, yet under dnsperf its user time per query was 3.5-4.7 us against unbound's 2.2-2.6
 * (kernel time equal, ~7 us each): the interpreter's cost of two socket calls (a 64 KiB buffer allocated and
 * shrunk per recvfrom, the address formatted to a string and parsed back for sendto, argument tuples) is
 * larger than all of unbound's own work, and with one core busy DNS64 answered 0.85-0.91x unbound
 * (benchmarks/dns64.py --busy). The Python loop stays the reference and the fallback: the tests run both.
 *
 * serve(fd, entries, allowed, now, batch) -> (hits, dropped, misses)
 *   fd       the non-blocking UDP socket
 *   entries  {query after its ID (bytes): WireEntry}; a hit is an entry with now < entry.until, answered
 *            with the query's ID followed by entry.tail, exactly as the Python loop does
 *   allowed  {client address, packed (4 or 16 bytes): bool}; a client not in it (or False) is a miss, so
 *            Python decides and fills it in (server.py)
 *   batch    at most this many datagrams are read (<= 256)
 *   hits     answers sent or dropped; dropped: those the socket refused with EAGAIN (send buffer full)
 *   misses   [(datagram, address tuple as socket.recvfrom gives it, packed client address)]
 * The answers go out after the batch is read, in one sendmmsg where the kernel takes them all, so a burst
 * wakes the client once, as in Python. The GIL is released around each system call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_BATCH 256
#define MAX_DATAGRAM 65536

static PyObject *str_until, *str_tail;

typedef struct {
    PyObject *tail; /* owned until sent */
    unsigned char id[2];
    struct sockaddr_storage to;
    socklen_t tolen;
} Reply;

/* (host, port) or (host, port, flowinfo, scope_id), as socket.recvfrom builds it (CPython 3.9+: inet_ntop). */
static PyObject *address_tuple(const struct sockaddr_storage *ss) {
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        if (!inet_ntop(AF_INET, &a->sin_addr, host, sizeof host))
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(si)", host, ntohs(a->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (!inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host))
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(siII)", host, ntohs(a->sin6_port), (unsigned int)ntohl(a->sin6_flowinfo),
                             (unsigned int)a->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

static PyObject *packed_address(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET)
        return PyBytes_FromStringAndSize((const char *)&((const struct sockaddr_in *)ss)->sin_addr, 4);
    if (ss->ss_family == AF_INET6)
        return PyBytes_FromStringAndSize((const char *)&((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    return PyBytes_FromStringAndSize(NULL, 0);
}

/* The entry's tail (new reference) when it answers at `now`; NULL without error for a miss. */
static PyObject *hit(PyObject *entries, const unsigned char *data, ssize_t n, double now) {
    if (n < 2)
        return NULL;
    PyObject *key = PyBytes_FromStringAndSize((const char *)data + 2, n - 2);
    if (!key)
        return NULL;
    PyObject *entry = PyDict_GetItemWithError(entries, key); /* borrowed */
    Py_DECREF(key);
    if (!entry)
        return NULL;
    PyObject *until = PyObject_GetAttr(entry, str_until);
    if (!until)
        return NULL;
    double u = PyFloat_AsDouble(until);
    Py_DECREF(until);
    if (u == -1.0 && PyErr_Occurred())
        return NULL;
    if (!(now < u))
        return NULL;
    PyObject *tail = PyObject_GetAttr(entry, str_tail);
    if (tail && !PyBytes_Check(tail)) {
        Py_DECREF(tail);
        PyErr_SetString(PyExc_TypeError, "WireEntry.tail must be bytes");
        return NULL;
    }
    return tail;
}

static Py_ssize_t send_replies(int fd, Reply *replies, int count, Py_ssize_t *dropped) {
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH][2];
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        iov[i][0].iov_base = replies[i].id;
        iov[i][0].iov_len = 2;
        iov[i][1].iov_base = PyBytes_AS_STRING(replies[i].tail);
        iov[i][1].iov_len = (size_t)PyBytes_GET_SIZE(replies[i].tail);
        msgs[i].msg_hdr.msg_name = &replies[i].to;
        msgs[i].msg_hdr.msg_namelen = replies[i].tolen;
        msgs[i].msg_hdr.msg_iov = iov[i];
        msgs[i].msg_hdr.msg_iovlen = 2;
    }
    int pos = 0;
    while (pos < count) {
        int r, err;
        Py_BEGIN_ALLOW_THREADS
        r = sendmmsg(fd, msgs + pos, (unsigned int)(count - pos), 0);
        err = errno;
        Py_END_ALLOW_THREADS
        if (r > 0) {
            pos += r;
        } else if (r < 0 && err == EINTR) {
            continue;
        } else {
            /* this one failed: EAGAIN is the overload the server counts; others (an unreachable client)
               are dropped as the Python loop drops them, with no more than a debug line */
            if (r < 0 && (err == EAGAIN || err == EWOULDBLOCK))
                (*dropped)++;
            pos++;
        }
    }
    return count;
}

static PyObject *serve(PyObject *self, PyObject *args) {
    (void)self;
    int fd, batch;
    PyObject *entries, *allowed;
    double now;
    if (!PyArg_ParseTuple(args, "iO!O!di:serve", &fd, &PyDict_Type, &entries, &PyDict_Type, &allowed, &now,
                          &batch))
        return NULL;
    if (batch > MAX_BATCH)
        batch = MAX_BATCH;
    unsigned char *rx = PyMem_RawMalloc(MAX_DATAGRAM); /* per call: two servers in two threads may run */
    if (!rx)
        return PyErr_NoMemory();
    PyObject *misses = PyList_New(0);
    if (!misses) {
        PyMem_RawFree(rx);
        return NULL;
    }
    Reply replies[MAX_BATCH];
    int count = 0;
    Py_ssize_t dropped = 0;
    for (int i = 0; i < batch; i++) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof from;
        ssize_t n;
        int err;
        Py_BEGIN_ALLOW_THREADS
        n = recvfrom(fd, rx, MAX_DATAGRAM, 0, (struct sockaddr *)&from, &fromlen);
        err = errno;
        Py_END_ALLOW_THREADS
        if (n < 0) {
            if (err == EINTR)
                continue;
            break; /* EAGAIN: drained; anything else (an ICMP error surfacing) ends the batch as in Python */
        }
        PyObject *packed = packed_address(&from);
        if (!packed)
            goto error;
        PyObject *verdict = PyDict_GetItemWithError(allowed, packed); /* borrowed */
        PyObject *tail = NULL;
        if (verdict == Py_True)
            tail = hit(entries, rx, n, now);
        if (PyErr_Occurred()) {
            Py_DECREF(packed);
            goto error;
        }
        if (tail) {
            Py_DECREF(packed);
            Reply *r = &replies[count++];
            r->tail = tail;
            r->id[0] = rx[0];
            r->id[1] = rx[1];
            memcpy(&r->to, &from, fromlen);
            r->tolen = fromlen;
            continue;
        }
        PyObject *data = PyBytes_FromStringAndSize((const char *)rx, n);
        PyObject *addr = data ? address_tuple(&from) : NULL;
        PyObject *item = addr ? PyTuple_Pack(3, data, addr, packed) : NULL;
        Py_XDECREF(data);
        Py_XDECREF(addr);
        Py_DECREF(packed);
        if (!item || PyList_Append(misses, item) < 0) {
            Py_XDECREF(item);
            goto error;
        }
        Py_DECREF(item);
    }
    send_replies(fd, replies, count, &dropped);
    for (int i = 0; i < count; i++)
        Py_DECREF(replies[i].tail);
    PyMem_RawFree(rx);
    return Py_BuildValue("(inN)", count, dropped, misses);
error:
    for (int i = 0; i < count; i++)
        Py_DECREF(replies[i].tail);
    Py_DECREF(misses);
    PyMem_RawFree(rx);
    return NULL;
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS, "Answer cached repeats from a batch of datagrams; hand back the rest."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_udpfast", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__udpfast(void) {
    str_until = PyUnicode_InternFromString("until");
    str_tail = PyUnicode_InternFromString("tail");
    if (!str_until || !str_tail)
        return NULL;
    return PyModule_Create(&module);
}
