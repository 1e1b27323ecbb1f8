/* Start-up and socket plumbing shared by c-epoll and c-io_uring. */
#ifndef COMMON_H
#define COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdnoreturn.h>
#include <netinet/in.h>

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
