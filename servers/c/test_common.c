/* Unit tests of common.c: the connection-table rule and the accept errors retried.
 * `make test-c` builds and runs it; it prints one line per failure and exits 1 on any. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static int failures;

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                         \
        }                                                                       \
    } while (0)

/* What the servers' entries cost, give or take: enough to show the cap bounds memory. */
struct entry {
    uint64_t a, b, c;
};

static void test_table_size(void)
{
    CHECK(conn_table_size(0) == 0);
    CHECK(conn_table_size(1024) == 1024);
    CHECK(conn_table_size(20000) == 20000);
    CHECK(conn_table_size(CONN_TABLE_MAX - 1) == CONN_TABLE_MAX - 1);
    CHECK(conn_table_size(CONN_TABLE_MAX) == CONN_TABLE_MAX);
    CHECK(conn_table_size(CONN_TABLE_MAX + 1) == CONN_TABLE_MAX);
    /* Hard limits near 2^30 are what some container runtimes set. */
    CHECK(conn_table_size((uint64_t)1 << 30) == CONN_TABLE_MAX);
    CHECK(conn_table_size(UINT64_MAX) == CONN_TABLE_MAX);
    CHECK(CONN_TABLE_MAX == 4194304);
}

static void test_table_under_huge_limit(void)
{
    size_t count = conn_table_size((uint64_t)1 << 30);
    struct entry *table = alloc_conn_table(count, sizeof(*table));

    /* Zeroed at both ends, and writable: the whole table is usable. */
    CHECK(table[0].a == 0 && table[count - 1].c == 0);
    table[count - 1].c = 1;
    CHECK(table[count - 1].c == 1);
    free(table);
}

static void test_accept_errors(void)
{
    static const int retried[] = {
        EINTR, ECONNABORTED, EPERM, EPROTO, ENETDOWN, ENOPROTOOPT,
        EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH,
    };
    static const int pausing[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM, EINVAL, EBADF};

    for (size_t i = 0; i < sizeof(retried) / sizeof(retried[0]); i++)
        CHECK(accept_error_retried(retried[i]));
    for (size_t i = 0; i < sizeof(pausing) / sizeof(pausing[0]); i++)
        CHECK(!accept_error_retried(pausing[i]));
}

int main(void)
{
    test_table_size();
    test_table_under_huge_limit();
    test_accept_errors();
    if (failures > 0) {
        fprintf(stderr, "c unit tests: %d failed\n", failures);
        return 1;
    }
    printf("c unit tests: all passed\n");
    return 0;
}
