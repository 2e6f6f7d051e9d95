/* libFuzzer target for the Part 10 reader and, through it, the dump, JSON and writer code.
 * An input that parses is dumped and written as JSON (to /dev/null), written back in its
 * own transfer syntax and, when uncompressed, converted to implicit VR little endian and
 * explicit VR big endian (a conversion the writer declines as unsupported is fine); every
 * output must parse again with the same top-level elements, group lengths aside (see
 * census). A failed invariant calls abort(), which libFuzzer reports as a crash; the
 * reproducers live in tests/regress/, which tests/regress_runner.c replays in make check. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "medveil/dicom.h"
#include "census.h"

#define FUZZ_MAX_DEPTH 64
#define FUZZ_MAX_INFLATED ((uint64_t)64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;
static int out_fd = -1;

/* 1 if line contains one of the '|'-separated texts of list. */
static int matches_any(const char *line, const char *list)
{
    char text[256];

    while (*list != '\0') {
        size_t n = strcspn(list, "|");
        if (n > 0 && n < sizeof text) {
            memcpy(text, list, n);
            text[n] = '\0';
            if (strstr(line, text) != NULL)
                return 1;
        }
        list += n + (list[n] == '|');
    }
    return 0;
}

/* Reports a broken invariant and aborts. Two environment variables filter, for triage:
 * with FUZZ_READ_ONLY=TEXT only a failure whose message contains TEXT aborts, so that
 * -minimize_crash=1 keeps to one bug instead of drifting to another; with
 * FUZZ_READ_IGNORE=TEXT|TEXT... failures that contain one of the texts (bugs already
 * reported) do not, so that a campaign can look past them. A filtered failure returns -1
 * and the rest of the input's checks are skipped. */
static int broken(const char *what, const MvError *err)
{
    const char *only = getenv("FUZZ_READ_ONLY");
    const char *ignore = getenv("FUZZ_READ_IGNORE");
    char line[1024];

    snprintf(line, sizeof line, "%s%s%s", what, err ? ": " : "", err ? err->message : "");
    if ((only != NULL && *only != '\0' && strstr(line, only) == NULL) || (ignore != NULL && matches_any(line, ignore)))
        return -1;
    fprintf(stderr, "fuzz_read: invariant failed: %s\n", line);
    abort();
}


static void read_options(MvReadOptions *opts, uint64_t max_inflated)
{
    mv_read_options_init(opts);
    opts->max_depth = FUZZ_MAX_DEPTH;
    opts->max_inflated = max_inflated;
}

/* Writes file to the memfd in transfer syntax ts (NULL: its own), reads the output again
 * and checks its top-level elements against in (same_census). A conversion the writer declines
 * (MV_ERR_UNSUPPORTED) is fine. Returns 0, or -1 for a failure FUZZ_READ_ONLY let pass. */
static int rewrite_and_check(MvFile *file, const char *ts, Census in)
{
    MvWriteOptions wopts;
    MvReadOptions ropts;
    MvError err;
    MvStatus st;
    MvFile *again = NULL;
    struct stat sb;
    void *map = MAP_FAILED;
    size_t map_len = 0;
    char what[256];
    Census out;
    int rc = 0;

    if (ftruncate(out_fd, 0) != 0 || lseek(out_fd, 0, SEEK_SET) != 0) {
        perror("fuzz_read: cannot reset the memfd");
        abort();
    }
    mv_write_options_init(&wopts);
    wopts.transfer_syntax = ts;
    wopts.flags = MV_WRITE_NO_SYNC;
    st = mv_file_write_fd(file, out_fd, &wopts, &err);
    if (st == MV_ERR_UNSUPPORTED && ts != NULL)
        goto out;
    if (st != MV_OK) {
        rc = broken(ts ? "converting failed" : "writing back failed", &err);
        goto out;
    }
    if (fstat(out_fd, &sb) != 0 || sb.st_size <= 0) {
        rc = broken("the writer wrote nothing", NULL);
        goto out;
    }
    map_len = (size_t)sb.st_size;
    map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, out_fd, 0);
    if (map == MAP_FAILED) {
        perror("fuzz_read: cannot map the memfd");
        abort();
    }
    /* The rewrite may be a little larger than the input (undefined lengths and
     * delimiters where defined lengths were), so a deflated one gets a larger cap. */
    read_options(&ropts, 4 * FUZZ_MAX_INFLATED);
    st = mv_file_from_memory(map, map_len, ts ? "converted" : "rewritten", &ropts, &again, &err);
    if (st != MV_OK) {
        rc = broken(ts ? "the converted output does not parse" : "the rewritten output does not parse", &err);
        goto out;
    }
    out = census(mv_file_dataset(again));
    if (!same_census(in, out)) {
        snprintf(what, sizeof what,
                 "top-level elements: %zu read (and %zu group lengths), %zu (and %zu) in the output written as %s",
                 in.kept, in.group_lengths, out.kept, out.group_lengths, ts ? ts : "the input's syntax");
        rc = broken(what, NULL);
        goto out;
    }
out:
    mv_file_free(again);
    if (map != MAP_FAILED)
        munmap(map, map_len);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MvReadOptions ropts;
    MvDumpOptions dopts = {0};
    MvJsonOptions jopts = {0};
    MvError err;
    MvFile *file = NULL;
    const MvTransferSyntax *ts;
    Census in;
    /* The last byte picks output options, so that both settings of each get explored. */
    unsigned pick = size > 0 ? data[size - 1] : 0;

    if (devnull == NULL) {
        devnull = fopen("/dev/null", "w");
        if (devnull == NULL) {
            perror("fuzz_read: /dev/null");
            abort();
        }
    }
    if (out_fd < 0) {
        out_fd = memfd_create("fuzz_read", MFD_CLOEXEC);
        if (out_fd < 0) {
            perror("fuzz_read: memfd_create");
            abort();
        }
    }

    read_options(&ropts, FUZZ_MAX_INFLATED);
    if (mv_file_from_memory(data, size, "fuzz", &ropts, &file, &err) != MV_OK)
        return 0;
    in = census(mv_file_dataset(file));

    dopts.flags = (pick & 1u ? MV_DUMP_OFFSETS : 0) | (pick & 2u ? MV_DUMP_FULL : 0) | (pick & 4u ? MV_DUMP_NO_META : 0);
    (void)mv_dump_write(file, devnull, &dopts, &err);
    jopts.flags = (pick & 8u ? MV_JSON_BULK : 0) | (pick & 16u ? MV_JSON_PRETTY : 0) | (pick & 32u ? MV_JSON_META : 0);
    (void)mv_json_write(file, devnull, &jopts, &err);

    ts = mv_file_transfer_syntax(file);
    if (rewrite_and_check(file, NULL, in) == 0 && ts != NULL && !ts->encapsulated) {
        if (strcmp(ts->uid, MV_UID_IMPLICIT_LE) == 0 || rewrite_and_check(file, MV_UID_IMPLICIT_LE, in) == 0) {
            if (strcmp(ts->uid, MV_UID_EXPLICIT_BE) != 0)
                rewrite_and_check(file, MV_UID_EXPLICIT_BE, in);
        }
    }
    mv_file_free(file);
    return 0;
}
