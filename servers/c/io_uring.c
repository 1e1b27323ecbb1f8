/* c-io_uring: the benchmark server on one io_uring (see ../README.md). */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_SIGNAL };

struct conn {
    struct http_framing framing;
    uint64_t owed;   /* response bytes not confirmed sent, including those in flight */
    bool receiving;  /* the multishot recv is armed */
    bool sending;    /* a send is in flight */
    bool eof;        /* the peer sent EOF: close once owed is flushed */
    bool closing;    /* shut down: close once no operation is in flight */
};

static struct io_uring ring;
static struct io_uring_buf_ring *buffer_ring;
static unsigned char *buffers;
static int listener;
static int sigfd;
static struct conn *conns; /* indexed by descriptor */
static bool accept_paused;
/* An EINVAL before the first success means the kernel lacks the multishot flag. */
static bool accept_multishot_works;
static bool recv_multishot_works;

static bool out_of_descriptors(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static uint64_t op_data(enum op op, int fd)
{
    return (uint64_t)op << 32 | (uint32_t)fd;
}

static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

    if (sqe == NULL) {
        /* The SQ is full: submit now instead of at the turn's single enter. */
        int ret = io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
        if (sqe == NULL)
            die("io_uring: submission queue stays full (%s)", strerror(ret < 0 ? -ret : EBUSY));
    }
    return sqe;
}

static void arm_accept(void)
{
    struct io_uring_sqe *sqe = get_sqe();

    io_uring_prep_multishot_accept(sqe, listener, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, op_data(OP_ACCEPT, listener));
}

static void arm_signal(void)
{
    struct io_uring_sqe *sqe = get_sqe();

    io_uring_prep_poll_add(sqe, sigfd, POLLIN);
    io_uring_sqe_set_data64(sqe, op_data(OP_SIGNAL, sigfd));
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = get_sqe();

    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUFFER_GROUP;
    io_uring_sqe_set_data64(sqe, op_data(OP_RECV, fd));
    conns[fd].receiving = true;
}

static void return_buffer(unsigned bid)
{
    io_uring_buf_ring_add(buffer_ring, buffers + (size_t)bid * BUFFER_SIZE, BUFFER_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(BUFFER_COUNT), 0);
    io_uring_buf_ring_advance(buffer_ring, 1);
}

static void resume_accepting(void)
{
    if (!accept_paused)
        return;
    arm_accept();
    accept_paused = false;
}

/* Closes the descriptor once the connection is finished and nothing in flight can
 * still complete for it, so no completion ever names a reused descriptor. */
static void release_if_idle(int fd)
{
    struct conn *c = &conns[fd];

    if (c->receiving || c->sending)
        return;
    if (!c->closing && !(c->eof && c->owed == 0))
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

static void open_connection(int fd)
{
    set_nodelay(fd);
    memset(&conns[fd], 0, sizeof(conns[fd]));
    arm_recv(fd);
}

/* Starts a send of what is owed unless one is in flight: its completion sends the
 * rest, answers owed meanwhile included. */
static void send_owed(int fd)
{
    struct conn *c = &conns[fd];

    if (c->sending || c->owed == 0)
        return;
    struct http_span span = http_owed_span(c->owed);
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_send(sqe, fd, span.ptr, span.len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, op_data(OP_SEND, fd));
    c->sending = true;
}

static void on_accept(const struct io_uring_cqe *cqe)
{
    if (cqe->res >= 0) {
        accept_multishot_works = true;
        open_connection(cqe->res);
    } else if (cqe->res == -EINVAL && !accept_multishot_works) {
        die("io_uring: multishot accept not supported (needs Linux 5.19+)");
    }
    if (cqe->flags & IORING_CQE_F_MORE)
        return;
    if (cqe->res < 0 && out_of_descriptors(-cqe->res))
        accept_paused = true;
    else
        arm_accept();
}

static void on_recv(int fd, const struct io_uring_cqe *cqe)
{
    struct conn *c = &conns[fd];
    long requests = 0;

    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->receiving = false;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

        if (cqe->res > 0 && !c->closing)
            requests = http_frame(&c->framing, buffers + (size_t)bid * BUFFER_SIZE,
                                  (size_t)cqe->res);
        return_buffer(bid);
    }
    if (cqe->res == -EINVAL && !recv_multishot_works)
        die("io_uring: multishot recv not supported (needs Linux 6.0+)");
    recv_multishot_works = true;

    if (c->closing) {
        release_if_idle(fd);
    } else if (requests < 0 || (cqe->res < 0 && cqe->res != -ENOBUFS)) {
        close_connection(fd);
    } else if (cqe->res == 0) {
        c->eof = true;
        release_if_idle(fd);
    } else {
        c->owed += (uint64_t)requests * HTTP_RESPONSE_LEN;
        send_owed(fd);
        /* Ended without EOF (ENOBUFS, or the CQ overflowed): the connection lives on. */
        if (!c->receiving)
            arm_recv(fd);
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
        send_owed(fd);
        release_if_idle(fd);
    }
}

static void on_signal(const struct io_uring_cqe *cqe)
{
    if (cqe->res < 0)
        die("io_uring: poll on the signalfd failed: %s", strerror(-cqe->res));
    exit(0);
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
    }
}

static int try_setup_ring(unsigned flags)
{
    struct io_uring_params params = {
        .flags = flags | IORING_SETUP_CQSIZE,
        .cq_entries = CQ_ENTRIES,
    };

    return io_uring_queue_init_params(SQ_ENTRIES, &ring, &params);
}

static void setup_ring(void)
{
    static const struct {
        unsigned flag;
        const char *name;
        const char *linux_version;
    } required[] = {
        {0, "IORING_SETUP_CQSIZE", "5.5"},
        {IORING_SETUP_SINGLE_ISSUER, "IORING_SETUP_SINGLE_ISSUER", "6.0"},
        {IORING_SETUP_DEFER_TASKRUN, "IORING_SETUP_DEFER_TASKRUN", "6.1"},
    };
    const unsigned required_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    const unsigned optional_flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;

    int ret = try_setup_ring(required_flags | optional_flags);
    if (ret == -EINVAL)
        ret = try_setup_ring(required_flags);
    if (ret == 0)
        return;
    if (ret == -EPERM)
        die("io_uring: not permitted (disabled by kernel.io_uring_disabled?)");
    if (ret == -ENOSYS)
        die("io_uring: not supported by this kernel (needs Linux 6.1+)");
    if (ret == -EINVAL) {
        /* Name the first required flag this kernel rejects. */
        unsigned flags = 0;
        for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
            flags |= required[i].flag;
            int probe = try_setup_ring(flags);
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
        io_uring_buf_ring_add(buffer_ring, buffers + (size_t)bid * BUFFER_SIZE, BUFFER_SIZE,
                              (unsigned short)bid, io_uring_buf_ring_mask(BUFFER_COUNT),
                              (int)bid);
    io_uring_buf_ring_advance(buffer_ring, BUFFER_COUNT);
}

int main(int argc, char **argv)
{
    struct options options;

    parse_options(argc, argv, &options);
    size_t fd_limit = raise_fd_limit();
    conns = calloc(fd_limit, sizeof(*conns));
    if (conns == NULL)
        die("cannot allocate state for %zu connections", fd_limit);
    sigfd = open_signalfd();
    listener = open_listener(&options, false);

    setup_ring();
    setup_buffers();
    arm_signal();
    arm_accept();

    announce_listener(listener);

    for (;;) {
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
}
