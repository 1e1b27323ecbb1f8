/* c-io_uring: the benchmark server on one io_uring (see ../README.md). */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"
#include "http.h"

#define SQ_ENTRIES 4096
#define CQ_ENTRIES (4 * SQ_ENTRIES)
#define BUFFER_COUNT 4096
#define BUFFER_SIZE 4096
#define BUFFER_GROUP 0

/* A completion's user_data is the operation in the high 32 bits and its descriptor in
 * the low 32 bits. */
enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_SIGNAL, OP_TIMEOUT, OP_CANCEL };

struct conn {
    struct http_framing framer;
    uint64_t owed;   /* response bytes not confirmed sent, including those in flight */
    bool recv_armed; /* the multishot recv is armed */
    bool sending;    /* a send is in flight */
    bool eof;        /* the peer sent EOF: close once owed is flushed */
    bool closing;    /* shut down: close once no operation is in flight */
};

static struct io_uring ring;
static struct io_uring_buf_ring *buffer_ring;
static unsigned char *buffers;
static int listener;
static int signal_fd;
static struct conn *conns; /* indexed by descriptor */
static size_t conn_count;  /* entries in conns */
static bool accept_armed;
static bool accept_paused;
static bool signal_armed;
static bool timeout_armed;
static bool cancel_armed;
static bool stopping;
/* An EINVAL before the first success means the kernel lacks the multishot flag. */
static bool accept_proven;
static bool recv_proven;
static struct __kernel_timespec accept_retry = {.tv_nsec = ACCEPT_RETRY_MS * 1000000L};

static uint64_t op_data(enum op op, int fd)
{
    return (uint64_t)op << 32 | (uint32_t)fd;
}

/* An SQE, or NULL if the SQ is still full after submitting it (the kernel took none,
 * which it only does when short of memory). */
static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

    if (sqe == NULL) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

static void arm_accept(void)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe == NULL)
        return;
    io_uring_prep_multishot_accept(sqe, listener, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, op_data(OP_ACCEPT, listener));
    accept_armed = true;
}

static void arm_signal(void)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe == NULL)
        return;
    io_uring_prep_poll_add(sqe, signal_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, op_data(OP_SIGNAL, signal_fd));
    signal_armed = true;
}

static void arm_timeout(void)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe == NULL)
        return;
    io_uring_prep_timeout(sqe, &accept_retry, 0, 0);
    io_uring_sqe_set_data64(sqe, op_data(OP_TIMEOUT, -1));
    timeout_armed = true;
}

static void arm_cancel(void)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe == NULL)
        return;
    io_uring_prep_cancel64(sqe, op_data(OP_ACCEPT, listener), 0);
    io_uring_sqe_set_data64(sqe, op_data(OP_CANCEL, listener));
    cancel_armed = true;
}

/* Queues whichever of the server's own operations should be in flight and is not, once
 * per loop turn: one that could not be queued (SQ full) is retried on the next turn. */
static void arm_server_ops(void)
{
    if (stopping) {
        if (accept_armed && !cancel_armed)
            arm_cancel();
        return;
    }
    if (!signal_armed)
        arm_signal();
    if (accept_paused && !timeout_armed)
        arm_timeout();
    if (!accept_paused && !accept_armed)
        arm_accept();
}

static void pause_accepting(void)
{
    accept_paused = true;
}

static void resume_accepting(void)
{
    accept_paused = false;
}

static void return_buffer(unsigned bid)
{
    io_uring_buf_ring_add(buffer_ring, buffers + (size_t)bid * BUFFER_SIZE, BUFFER_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(BUFFER_COUNT), 0);
    io_uring_buf_ring_advance(buffer_ring, 1);
}

/* Closes the descriptor of a closing connection once nothing in flight can still
 * complete for it, so no completion ever names a reused descriptor. */
static void release_if_idle(int fd)
{
    struct conn *c = &conns[fd];

    if (c->recv_armed || c->sending)
        return;
    close(fd);
    memset(c, 0, sizeof(*c));
    resume_accepting();
}

static void close_connection(int fd)
{
    struct conn *c = &conns[fd];

    if (!c->closing) {
        c->closing = true;
        /* Ends the multishot recv and any send waiting for room, promptly. */
        shutdown(fd, SHUT_RDWR);
    }
    release_if_idle(fd);
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = get_sqe();

    if (sqe == NULL) {
        close_connection(fd);
        return;
    }
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUFFER_GROUP;
    io_uring_sqe_set_data64(sqe, op_data(OP_RECV, fd));
    conns[fd].recv_armed = true;
}

/* Starts a send of what is owed unless one is in flight: its completion sends the
 * rest, answers owed meanwhile included. */
static void send_owed(int fd)
{
    struct conn *c = &conns[fd];

    if (c->sending || c->owed == 0)
        return;
    struct io_uring_sqe *sqe = get_sqe();
    if (sqe == NULL) {
        close_connection(fd);
        return;
    }
    struct http_span span = http_owed_span(c->owed);
    io_uring_prep_send(sqe, fd, span.ptr, span.len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, op_data(OP_SEND, fd));
    c->sending = true;
}

static void open_connection(int fd)
{
    if ((size_t)fd >= conn_count) {
        close(fd);
        return;
    }
    set_nodelay(fd);
    memset(&conns[fd], 0, sizeof(conns[fd]));
    arm_recv(fd);
}

static void on_accept(const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        accept_armed = false;
    if (cqe->res >= 0) {
        accept_proven = true;
        open_connection(cqe->res);
    } else if (cqe->res == -EINVAL && !accept_proven) {
        die("io_uring: multishot accept not supported (needs Linux 5.19+)");
    } else if (!accept_armed && !accept_error_retried(-cqe->res)) {
        pause_accepting();
    }
}

static void on_recv(int fd, const struct io_uring_cqe *cqe)
{
    struct conn *c = &conns[fd];
    long requests = 0;

    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->recv_armed = false;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

        if (cqe->res > 0 && !c->closing)
            requests = http_frame(&c->framer, buffers + (size_t)bid * BUFFER_SIZE,
                                  (size_t)cqe->res);
        return_buffer(bid);
    }
    if (cqe->res == -EINVAL && !recv_proven)
        die("io_uring: multishot recv not supported (needs Linux 6.0+)");
    recv_proven = true;

    if (c->closing) {
        release_if_idle(fd);
    } else if (requests < 0 || (cqe->res < 0 && cqe->res != -ENOBUFS)) {
        close_connection(fd);
    } else if (cqe->res == 0) {
        c->eof = true;
        /* A send in flight still owes answers: its completion closes. */
        if (!c->sending)
            close_connection(fd);
    } else {
        c->owed += (uint64_t)requests * HTTP_RESPONSE_LEN;
        /* Ended without EOF (ENOBUFS, or the CQ overflowed): the connection lives on. */
        if (!c->recv_armed)
            arm_recv(fd);
        send_owed(fd);
    }
}

static void on_send(int fd, const struct io_uring_cqe *cqe)
{
    struct conn *c = &conns[fd];

    c->sending = false;
    if (c->closing) {
        release_if_idle(fd);
    } else if (cqe->res <= 0) {
        close_connection(fd);
    } else {
        c->owed -= (uint64_t)cqe->res;
        if (c->owed > 0)
            send_owed(fd);
        else if (c->eof)
            close_connection(fd);
    }
}

static void on_signal(const struct io_uring_cqe *cqe)
{
    signal_armed = false;
    /* A failed poll is re-armed by the next turn; a signal stops the server. */
    if (cqe->res >= 0)
        stopping = true;
}

static void on_timeout(void)
{
    timeout_armed = false;
    resume_accepting();
}

static void on_cancel(const struct io_uring_cqe *cqe)
{
    /* Found, the accept ends with its own completion; not found, it already has. */
    if (cqe->res < 0)
        accept_armed = false;
}

static void on_completion(const struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    int fd = (int)(uint32_t)data;

    switch ((enum op)(data >> 32)) {
    case OP_ACCEPT:
        on_accept(cqe);
        break;
    case OP_RECV:
        on_recv(fd, cqe);
        break;
    case OP_SEND:
        on_send(fd, cqe);
        break;
    case OP_SIGNAL:
        on_signal(cqe);
        break;
    case OP_TIMEOUT:
        on_timeout();
        break;
    case OP_CANCEL:
        on_cancel(cqe);
        break;
    }
}

/* io_uring_setup itself rather than io_uring_queue_init_params, which from liburing
 * 2.5 adds IORING_SETUP_NO_SQARRAY: the ring is exactly these flags on every distro. */
static int try_setup_ring(unsigned flags, unsigned *features)
{
    struct io_uring_params params = {
        .flags = flags,
        .cq_entries = CQ_ENTRIES,
    };

    int fd = (int)syscall(__NR_io_uring_setup, SQ_ENTRIES, &params);
    if (fd < 0)
        return -errno;
    int ret = io_uring_queue_mmap(fd, &params, &ring);
    if (ret < 0) {
        close(fd);
        return ret;
    }
    /* SQE slot i always goes through SQ array slot i. */
    for (unsigned i = 0; i < ring.sq.ring_entries; i++)
        ring.sq.array[i] = i;
    ring.features = params.features;
    *features = params.features;
    return 0;
}

static void setup_ring(void)
{
    static const struct {
        unsigned flag;
        const char *name;
        const char *linux_version;
    } required[] = {
        {IORING_SETUP_CQSIZE, "IORING_SETUP_CQSIZE", "5.5"},
        {IORING_SETUP_SINGLE_ISSUER, "IORING_SETUP_SINGLE_ISSUER", "6.0"},
        {IORING_SETUP_DEFER_TASKRUN, "IORING_SETUP_DEFER_TASKRUN", "6.1"},
    };
    const unsigned required_flags =
        IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    const unsigned optional_flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    unsigned flags = required_flags | optional_flags;
    unsigned features = 0;

    int ret = try_setup_ring(flags, &features);
    if (ret == -EINVAL) {
        flags = required_flags;
        ret = try_setup_ring(flags, &features);
    }
    if (ret == 0) {
        char details[64];
        snprintf(details, sizeof(details), "setup_flags=0x%x features=0x%x", flags, features);
        announce_api("io_uring", details);
        return;
    }
    if (ret == -EPERM)
        die("io_uring: not permitted (disabled by kernel.io_uring_disabled?)");
    if (ret == -ENOSYS)
        die("io_uring: not supported by this kernel (needs Linux 6.1+)");
    if (ret == -EINVAL) {
        /* Name the first required flag this kernel rejects. */
        unsigned probe_flags = 0;
        for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
            probe_flags |= required[i].flag;
            int probe = try_setup_ring(probe_flags, &features);
            if (probe == 0)
                io_uring_queue_exit(&ring);
            else if (probe == -EINVAL)
                die("io_uring: %s not supported (needs Linux %s+)", required[i].name,
                    required[i].linux_version);
        }
    }
    die("io_uring: cannot create the ring: %s", strerror(-ret));
}

static void setup_buffers(void)
{
    void *ring_memory;
    size_t ring_size = BUFFER_COUNT * sizeof(struct io_uring_buf);
    long page_size = sysconf(_SC_PAGESIZE);

    /* liburing 2.3 has no io_uring_setup_buf_ring: the ring memory is ours and must be
     * page-aligned. */
    if (posix_memalign(&ring_memory, page_size > 0 ? (size_t)page_size : 4096, ring_size) != 0)
        die("cannot allocate the provided buffer ring");
    memset(ring_memory, 0, ring_size);
    buffer_ring = ring_memory;
    io_uring_buf_ring_init(buffer_ring);

    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)buffer_ring,
        .ring_entries = BUFFER_COUNT,
        .bgid = BUFFER_GROUP,
    };
    int ret = io_uring_register_buf_ring(&ring, &reg, 0);
    if (ret == -EINVAL)
        die("io_uring: provided buffer rings not supported (needs Linux 5.19+)");
    if (ret < 0)
        die("io_uring: cannot register the provided buffer ring: %s", strerror(-ret));

    buffers = malloc((size_t)BUFFER_COUNT * BUFFER_SIZE);
    if (buffers == NULL)
        die("cannot allocate the receive buffers");
    for (unsigned bid = 0; bid < BUFFER_COUNT; bid++)
        return_buffer(bid);
}

int main(int argc, char **argv)
{
    struct options options;

    parse_options(argc, argv, &options);
    conn_count = conn_table_size(raise_fd_limit());
    conns = alloc_conn_table(conn_count, sizeof(*conns));
    signal_fd = open_signalfd();
    listener = open_listener(&options, false);

    setup_ring();
    setup_buffers();
    /* Accepting before saying so: the listening line means the accept is in place. */
    arm_server_ops();
    io_uring_submit(&ring);

    announce_listener(listener);

    for (;;) {
        arm_server_ops();
        /* Stopped once the accept no longer holds the listener: closing it then frees
         * the port at once, not when the kernel tears the ring down later. */
        if (stopping && (!accept_armed || !cancel_armed))
            break;
        /* One enter per turn: it submits everything queued while draining the last
         * turn's completions and waits for at least one new completion. */
        int ret = io_uring_submit_and_wait(&ring, 1);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            die("io_uring_enter: %s", strerror(-ret));

        struct io_uring_cqe *cqe;
        unsigned head;
        unsigned seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            on_completion(cqe);
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
    }
    close(listener);
    io_uring_queue_exit(&ring);
    return 0;
}
