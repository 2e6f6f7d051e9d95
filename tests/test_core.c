/* Unit tests of the library's shared helpers (src/core/io.c): hex encoding against known
 * vectors, the strict decoder (lower case only, exact length), whole writes through a pipe
 * larger than its buffer, and folder syncs. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core_int.h"

static void hex_vectors(void **state)
{
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    uint8_t back[sizeof in];
    char out[2 * sizeof in + 1];

    (void)state;
    mv__hex(in, sizeof in, out);
    assert_string_equal(out, "00017f80abff");
    assert_int_equal(mv__unhex(out, strlen(out), back, sizeof back), 0);
    assert_memory_equal(back, in, sizeof in);
    mv__hex(in, 0, out);
    assert_string_equal(out, "");
}

static void unhex_is_strict(void **state)
{
    uint8_t out[2];

    (void)state;
    assert_int_equal(mv__unhex("00AB", 4, out, 2), -1); /* upper case is not what we write */
    assert_int_equal(mv__unhex("00a", 3, out, 2), -1);
    assert_int_equal(mv__unhex("00abcd", 6, out, 2), -1);
    assert_int_equal(mv__unhex("0g12", 4, out, 2), -1);
    assert_int_equal(mv__unhex("0 12", 4, out, 2), -1);
    assert_int_equal(mv__unhex("0a1f", 4, out, 2), 0);
    assert_int_equal(out[0], 0x0a);
    assert_int_equal(out[1], 0x1f);
}

typedef struct Drain {
    int fd;
    size_t got;
    uint8_t sum;
} Drain;

static void *drain(void *arg)
{
    Drain *d = arg;
    uint8_t buf[4096];
    ssize_t n;

    while ((n = read(d->fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            d->sum = (uint8_t)(d->sum + buf[i]);
        d->got += (size_t)n;
    }
    return NULL;
}

static void write_all_through_a_pipe(void **state)
{
    enum { SIZE = 1 << 20 };
    uint8_t *data = malloc(SIZE), sum = 0;
    int fds[2];
    pthread_t t;
    Drain d;

    (void)state;
    assert_non_null(data);
    for (size_t i = 0; i < SIZE; i++) {
        data[i] = (uint8_t)(i * 7);
        sum = (uint8_t)(sum + data[i]);
    }
    assert_int_equal(pipe(fds), 0);
    d.fd = fds[0];
    d.got = 0;
    d.sum = 0;
    assert_int_equal(pthread_create(&t, NULL, drain, &d), 0);
    assert_int_equal(mv__write_all(fds[1], data, SIZE), 0); /* many short writes: 1 MiB > pipe buffer */
    close(fds[1]);
    pthread_join(t, NULL);
    close(fds[0]);
    assert_int_equal(d.got, SIZE);
    assert_int_equal(d.sum, sum);
    assert_int_equal(mv__write_all(-1, data, 1), -1);
    assert_int_equal(errno, EBADF);
    free(data);
}

static void sync_dir(void **state)
{
    (void)state;
    assert_int_equal(mv__sync_dir("."), 0);
    assert_int_equal(mv__sync_dir("/nonexistent-medveil-folder"), -1);
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hex_vectors),
        cmocka_unit_test(unhex_is_strict),
        cmocka_unit_test(write_all_through_a_pipe),
        cmocka_unit_test(sync_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
