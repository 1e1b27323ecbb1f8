/* c-epoll: the benchmark server on one level-triggered epoll loop (see ../README.md). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "http.h"

#define RECV_SIZE 4096
#define MAX_EVENTS 256

struct conn {
    struct http_framing framing;
    uint64_t owed;  /* response bytes not sent yet */
    bool writing;   /* a send stopped short: EPOLLOUT is on until owed is flushed */
    bool eof;       /* the peer sent EOF: EPOLLIN is off, close once owed is flushed */
};

static int epfd;
static int listener;
static int sigfd;
static struct conn *conns; /* indexed by descriptor */
static bool accept_paused;
static unsigned char recv_buffer[RECV_SIZE];

static bool out_of_descriptors(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static void pause_accepting(void)
{
    /* Level triggering would report the pending connection forever otherwise. */
    epoll_ctl(epfd, EPOLL_CTL_DEL, listener, NULL);
    accept_paused = true;
}

static void resume_accepting(void)
{
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};

    if (!accept_paused)
        return;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &event) != 0)
        die("epoll_ctl(listener): %s", strerror(errno));
    accept_paused = false;
}

static void close_connection(int fd)
{
    close(fd);
    memset(&conns[fd], 0, sizeof(conns[fd]));
    resume_accepting();
}

/* Sets the connection's epoll interest from its state; false if it closed it. */
static bool update_events(int fd)
{
    struct conn *c = &conns[fd];
    struct epoll_event event = {
        .events = (c->eof ? 0 : EPOLLIN) | (c->writing ? EPOLLOUT : 0),
        .data.fd = fd,
    };

    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &event) == 0)
        return true;
    close_connection(fd);
    return false;
}

static void open_connection(int fd)
{
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};

    set_nodelay(fd);
    memset(&conns[fd], 0, sizeof(conns[fd]));
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event) != 0)
        close(fd);
}

static void accept_connections(void)
{
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            open_connection(fd);
        } else if (out_of_descriptors(errno)) {
            pause_accepting();
            return;
        } else if (errno != EINTR && errno != ECONNABORTED) {
            /* EAGAIN, or an error the next readiness report retries. */
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
            if (c->writing)
                return true;
            c->writing = true;
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
    if (c->writing) {
        c->writing = false;
        return update_events(fd);
    }
    return true;
}

static void receive(int fd)
{
    struct conn *c = &conns[fd];
    ssize_t received = recv(fd, recv_buffer, sizeof(recv_buffer), 0);

    if (received > 0) {
        long requests = http_frame(&c->framing, recv_buffer, (size_t)received);

        if (requests < 0) {
            close_connection(fd);
            return;
        }
        c->owed += (uint64_t)requests * HTTP_RESPONSE_LEN;
        /* While writing, the socket is full: EPOLLOUT will flush the new answers too. */
        if (requests > 0 && !c->writing)
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

static void on_connection_event(int fd, uint32_t events)
{
    struct conn *c = &conns[fd];

    /* Errors and hang-ups are reported whatever the interest: the send or recv they
     * make fail closes the connection. */
    if (c->writing && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && !send_owed(fd))
        return;
    if (!c->eof && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        receive(fd);
}

int main(int argc, char **argv)
{
    struct options options;
    struct epoll_event events[MAX_EVENTS];

    parse_options(argc, argv, &options);
    size_t fd_limit = raise_fd_limit();
    conns = calloc(fd_limit, sizeof(*conns));
    if (conns == NULL)
        die("cannot allocate state for %zu connections", fd_limit);
    sigfd = open_signalfd();
    listener = open_listener(&options, true);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1: %s", strerror(errno));
    struct epoll_event event = {.events = EPOLLIN, .data.fd = sigfd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sigfd, &event) != 0)
        die("epoll_ctl(signalfd): %s", strerror(errno));
    /* The listener starts outside the set, as if paused: resuming adds it. */
    accept_paused = true;
    resume_accepting();

    announce_listener(listener);

    for (;;) {
        int ready = epoll_wait(epfd, events, MAX_EVENTS, -1);

        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;

            if (fd == sigfd)
                return 0;
            if (fd == listener)
                accept_connections();
            else
                on_connection_event(fd, events[i].events);
        }
    }
}
