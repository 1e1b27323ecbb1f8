/* Start-up and socket plumbing shared by c-epoll and c-io_uring. */
#ifndef COMMON_H
#define COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>
#include <netinet/in.h>

/* Connection tables are indexed by descriptor and never hold more entries than this
 * (4,194,304), however high the descriptor limit. */
#define CONN_TABLE_MAX ((size_t)1 << 22)

/* How often accepting is retried while paused after a descriptor or memory error. */
#define ACCEPT_RETRY_MS 100

struct options {
    struct in_addr host;
    in_port_t port; /* host byte order; 0 lets the kernel choose */
};

/* Parses [--host ADDR] [--port PORT]; bad arguments print one line on stderr and
 * exit 2, --help prints the usage and exits 0. */
void parse_options(int argc, char **argv, struct options *options);

/* Raises the soft RLIMIT_NOFILE to the hard limit and returns the new limit:
 * every descriptor the process can get is below it. */
size_t raise_fd_limit(void);

/* How many entries the connection table has under a descriptor limit of fd_limit:
 * min(fd_limit, CONN_TABLE_MAX). A descriptor at or above it is closed when accepted. */
size_t conn_table_size(uint64_t fd_limit);

/* A zeroed table of count entries of size bytes; its pages are only backed once
 * touched, so a large table costs address space, not memory. */
void *alloc_conn_table(size_t count, size_t size);

/* Whether accept(2) asks to retry at once after err: the connection failed, not the
 * listener. Every other error except EAGAIN pauses accepting. */
bool accept_error_retried(int err);

/* Prints "server: api=API kernel=RELEASE", then " DETAILS" unless details is NULL,
 * as one line, and flushes. */
void announce_api(const char *api, const char *details);

/* Ignores SIGPIPE, blocks SIGTERM and SIGINT and returns a signalfd that reads them. */
int open_signalfd(void);

/* A bound, listening TCP socket (SO_REUSEADDR, backlog 4096). */
int open_listener(const struct options *options, bool nonblocking);

/* Prints "listening on ADDR:PORT" with the port actually bound, and flushes. */
void announce_listener(int listener);

/* TCP_NODELAY on an accepted socket; a failure only costs latency, so it is ignored. */
void set_nodelay(int fd);

/* Prints the message as one line on stderr and exits 1. */
noreturn void die(const char *format, ...) __attribute__((format(printf, 1, 2)));

#endif
