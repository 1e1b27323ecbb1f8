#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

static const char *program = "server";

static void print_usage(FILE *out)
{
    fprintf(out, "usage: %s [--host ADDR] [--port PORT]\n", program);
}

__attribute__((format(printf, 1, 0)))
static noreturn void usage_error(const char *format, const char *arg)
{
    fprintf(stderr, "%s: ", program);
    fprintf(stderr, format, arg);
    fprintf(stderr, " (usage: %s [--host ADDR] [--port PORT])\n", program);
    exit(2);
}

static in_port_t parse_port(const char *text)
{
    unsigned long port = 0;

    if (*text == '\0')
        usage_error("invalid port '%s'", text);
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            usage_error("invalid port '%s'", text);
        port = port * 10 + (unsigned long)(*p - '0');
        if (port > 65535)
            usage_error("invalid port '%s'", text);
    }
    return (in_port_t)port;
}

void parse_options(int argc, char **argv, struct options *options)
{
    if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
        const char *slash = strrchr(argv[0], '/');
        program = slash != NULL ? slash + 1 : argv[0];
    }
    inet_pton(AF_INET, "127.0.0.1", &options->host);
    options->port = 8000;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_usage(stdout);
            exit(0);
        }
        if (strcmp(arg, "--host") != 0 && strcmp(arg, "--port") != 0)
            usage_error("unknown argument '%s'", arg);
        if (i + 1 == argc)
            usage_error("%s needs a value", arg);
        const char *value = argv[++i];
        if (strcmp(arg, "--port") == 0)
            options->port = parse_port(value);
        else if (inet_pton(AF_INET, value, &options->host) != 1)
            usage_error("invalid IPv4 address '%s'", value);
    }
}

size_t raise_fd_limit(void)
{
    struct rlimit limit;

    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    if (limit.rlim_cur != limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
            die("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)limit.rlim_max,
                strerror(errno));
    }
    /* Linux caps the hard limit at fs.nr_open, so it is never RLIM_INFINITY. */
    return (size_t)limit.rlim_cur;
}

size_t conn_table_size(uint64_t fd_limit)
{
    return fd_limit < CONN_TABLE_MAX ? (size_t)fd_limit : CONN_TABLE_MAX;
}

void *alloc_conn_table(size_t count, size_t size)
{
    /* calloc maps fresh zero pages for a block this large. */
    void *table = calloc(count, size);

    if (table == NULL)
        die("cannot allocate state for %zu connections", count);
    return table;
}

bool accept_error_retried(int err)
{
    switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPERM:
    /* accept(2): Linux passes pending network errors of the new connection on. */
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

void announce_api(const char *api, const char *details)
{
    struct utsname uts;

    if (uname(&uts) != 0)
        die("uname: %s", strerror(errno));
    printf("server: api=%s kernel=%s%s%s\n", api, uts.release, details != NULL ? " " : "",
           details != NULL ? details : "");
    if (fflush(stdout) != 0)
        die("stdout: %s", strerror(errno));
}

int open_signalfd(void)
{
    sigset_t signals;

    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        die("signal(SIGPIPE): %s", strerror(errno));
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &signals, NULL) != 0)
        die("sigprocmask: %s", strerror(errno));
    int fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        die("signalfd: %s", strerror(errno));
    return fd;
}

int open_listener(const struct options *options, bool nonblocking)
{
    char host[INET_ADDRSTRLEN];
    struct sockaddr_in addr = {
        .sin_family = AF_INET,
        .sin_port = htons(options->port),
        .sin_addr = options->host,
    };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);

    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        die("setsockopt(SO_REUSEADDR): %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        inet_ntop(AF_INET, &options->host, host, sizeof(host));
        die("bind %s:%u: %s", host, (unsigned)options->port, strerror(errno));
    }
    if (listen(fd, LISTEN_BACKLOG) != 0)
        die("listen: %s", strerror(errno));
    return fd;
}

void announce_listener(int listener)
{
    char host[INET_ADDRSTRLEN];
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);

    if (getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
        die("getsockname: %s", strerror(errno));
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    printf("listening on %s:%u\n", host, (unsigned)ntohs(addr.sin_port));
    if (fflush(stdout) != 0)
        die("stdout: %s", strerror(errno));
}

void set_nodelay(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void die(const char *format, ...)
{
    va_list args;

    fprintf(stderr, "%s: ", program);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(1);
}
