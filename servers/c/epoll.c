/* c-epoll: the benchmark server on one level-triggered epoll loop (see ../README.md). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "http.h"

#define RECV_SIZE 4096
#define MAX_EVENTS 256

struct conn {
    struct http_framing framer;
    uint64_t owed;  /* response bytes not sent yet */
    bool open;      /* a live connection: events for any other descriptor are stale */
    bool want_out;  /* a send stopped short: EPOLLOUT is on until owed is flushed */
    bool eof;       /* the peer sent EOF: EPOLLIN is off, close once owed is flushed */
};

static int epoll_fd;
static int listener;
static int signal_fd;
static struct conn *conns; /* indexed by descriptor */
static size_t conn_count;  /* entries in conns */
static bool accept_paused;
static int64_t accept_retry_at; /* CLOCK_MONOTONIC ms; meaningful while paused */
static unsigned char recv_buffer[RECV_SIZE];

static int64_t now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void pause_accepting(void)
{
    /* Level triggering would report the pending connection forever otherwise. */
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listener, NULL);
    accept_paused = true;
    accept_retry_at = now_ms() + ACCEPT_RETRY_MS;
}

static void resume_accepting(void)
{
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};

    if (!accept_paused)
        return;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event) == 0 || errno == EEXIST)
        accept_paused = false;
    else
        accept_retry_at = now_ms() + ACCEPT_RETRY_MS;
}

static void close_connection(int fd)
{
    /* Closing the last reference also removes it from the epoll set. */
    close(fd);
    memset(&conns[fd], 0, sizeof(conns[fd]));
    resume_accepting();
}

/* Sets the connection's epoll interest from its state; false if it closed it. */
static bool update_events(int fd)
{
    struct conn *c = &conns[fd];
    struct epoll_event event = {
        .events = (c->eof ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0),
        .data.fd = fd,
    };

    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &event) == 0)
        return true;
    close_connection(fd);
    return false;
}

static void open_connection(int fd)
{
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};

    if ((size_t)fd >= conn_count) {
        close(fd);
        return;
    }
    set_nodelay(fd);
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        close(fd);
        return;
    }
    memset(&conns[fd], 0, sizeof(conns[fd]));
    conns[fd].open = true;
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            open_connection(fd);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else if (!accept_error_retried(errno)) {
            pause_accepting();
            return;
        }
    }
}

/* Sends what is owed until it is all sent or the socket is full; false if it closed
 * the connection. */
static bool send_owed(int fd)
{
    struct conn *c = &conns[fd];

    while (c->owed > 0) {
        struct http_span span = http_owed_span(c->owed);
        ssize_t sent = send(fd, span.ptr, span.len, MSG_NOSIGNAL);

        if (sent > 0) {
            c->owed -= (uint64_t)sent;
        } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c->want_out)
                return true;
            c->want_out = true;
            return update_events(fd);
        } else if (sent == 0 || errno != EINTR) {
            close_connection(fd);
            return false;
        }
    }
    if (c->eof) {
        close_connection(fd);
        return false;
    }
    if (c->want_out) {
        c->want_out = false;
        return update_events(fd);
    }
    return true;
}

static void receive(int fd)
{
    struct conn *c = &conns[fd];
    ssize_t received = recv(fd, recv_buffer, sizeof(recv_buffer), 0);

    if (received > 0) {
        long requests = http_frame(&c->framer, recv_buffer, (size_t)received);

        if (requests < 0) {
            close_connection(fd);
            return;
        }
        c->owed += (uint64_t)requests * HTTP_RESPONSE_LEN;
        /* While want_out, the socket is full: EPOLLOUT will flush the new answers too. */
        if (requests > 0 && !c->want_out)
            send_owed(fd);
    } else if (received == 0) {
        if (c->owed == 0) {
            close_connection(fd);
            return;
        }
        c->eof = true;
        update_events(fd);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        close_connection(fd);
    }
}

/* Writes first, then reads: the owed bytes go out before more requests add to them. */
static void on_connection_event(int fd, uint32_t events)
{
    struct conn *c = &conns[fd];

    if (!c->open)
        return;
    /* Errors and hang-ups are reported whatever the interest: the send or recv they
     * make fail closes the connection. */
    if (c->want_out && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && !send_owed(fd))
        return;
    if (!c->eof && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        receive(fd);
}

int main(int argc, char **argv)
{
    struct options options;
    struct epoll_event events[MAX_EVENTS];

    parse_options(argc, argv, &options);
    conn_count = conn_table_size(raise_fd_limit());
    conns = alloc_conn_table(conn_count, sizeof(*conns));
    signal_fd = open_signalfd();
    listener = open_listener(&options, true);

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        die("epoll_create1: %s", strerror(errno));
    struct epoll_event event = {.events = EPOLLIN, .data.fd = signal_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, signal_fd, &event) != 0)
        die("epoll_ctl(signalfd): %s", strerror(errno));
    event = (struct epoll_event){.events = EPOLLIN, .data.fd = listener};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event) != 0)
        die("epoll_ctl(listener): %s", strerror(errno));

    announce_api("epoll", NULL);
    announce_listener(listener);

    for (;;) {
        /* A timeout only while accepting is paused: the fast path never reads the clock. */
        int timeout = -1;
        if (accept_paused) {
            int64_t left = accept_retry_at - now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, timeout);

        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;

            if (fd == signal_fd)
                return 0;
            if (fd == listener) {
                if (!accept_paused)
                    accept_all();
            } else {
                on_connection_event(fd, events[i].events);
            }
        }
        if (accept_paused && now_ms() >= accept_retry_at)
            resume_accepting();
    }
}
