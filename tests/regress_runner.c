/* Replays a folder of inputs (fuzzer reproducers, hand-made malformed files, or a corpus)
 * through the steps of fuzz/fuzz_read.c: open, dump, JSON, write back, convert to implicit
 * VR LE and explicit VR BE, and read every output again; then through the pixel decoders
 * and encoders as fuzz/fuzz_pixel.c does (fuzz/pixel_check.h: a DICOM file is decoded,
 * re-encoded and decoded again; other bytes go straight to one decoder, chosen by the first
 * byte, tests/regress/pixel/ holds such reproducers). Each file runs in a child process,
 * so that a crash is reported against its file and the others still run.
 *
 *   regress_runner [DIR]    DIR defaults to $MV_SOURCE_DIR/tests/regress; searched recursively
 *
 * Files are opened with mv_file_open (mapped, as the CLI does) and, as a cross-check, read
 * from memory as the fuzzer does; both must agree. A file the reader rejects with an error
 * is a pass (malformed input must be refused cleanly); a crash, a sanitizer report, a
 * timeout, a write that fails, an output that does not parse or one with other top-level
 * elements (group lengths aside, see census) is a failure. Prints "FILE: ok ..." or
 * "FILE: error MESSAGE" per file, then "N passed, M failed"; exits 1 if anything failed. With MV_REGRESS_KEEP=DIR, the
 * output that broke an invariant is kept in DIR for a closer look. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "medveil/dicom.h"
#include "../fuzz/census.h"
#include "../fuzz/pixel_check.h"

/* The caps fuzz/fuzz_read.c reads with. */
#define RUN_MAX_DEPTH 64
#define RUN_MAX_INFLATED ((uint64_t)64 << 20)
/* Seconds one file may take (ASan and a 4 MB corpus file stay far below). */
#define RUN_TIMEOUT 120
/* Exit status of a child whose file broke an invariant; anything else but 0 is a crash. */
#define EXIT_INVARIANT 3

typedef struct PathList {
    char **paths;
    size_t n, cap;
} PathList;

/* The message of the failed step, printed by the child. */
static char failure[1024];

static int fail_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail_step(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(failure, sizeof failure, fmt, ap);
    va_end(ap);
    return -1;
}


static void read_options(MvReadOptions *opts, uint64_t max_inflated)
{
    mv_read_options_init(opts);
    opts->max_depth = RUN_MAX_DEPTH;
    opts->max_inflated = max_inflated;
}

/* Copies the output that failed a check to $MV_REGRESS_KEEP/<file>.<step>.dcm. */
static void keep_output(const char *path, const char *step, const void *bytes, size_t len)
{
    const char *dir = getenv("MV_REGRESS_KEEP");
    const char *base = strrchr(path, '/');
    char name[4096];
    FILE *f;

    if (dir == NULL || *dir == '\0')
        return;
    base = base ? base + 1 : path;
    if (snprintf(name, sizeof name, "%s/%s.%s.dcm", dir, base, step) >= (int)sizeof name)
        return;
    f = fopen(name, "wb");
    if (f == NULL)
        return;
    fwrite(bytes, 1, len, f);
    fclose(f);
    fprintf(stderr, "kept %s\n", name);
}

/* Writes file to fd in transfer syntax ts (NULL: its own), reads it back and compares the
 * top-level elements with in (same_census). 0 on success (or a declined conversion), -1
 * with failure set otherwise. */
static int rewrite_and_check(const char *path, MvFile *file, int fd, const char *ts, Census in)
{
    const char *step = ts == NULL ? "rewrite" : strcmp(ts, MV_UID_IMPLICIT_LE) == 0 ? "implicit-le" : "explicit-be";
    MvWriteOptions wopts;
    MvReadOptions ropts;
    MvError err;
    MvStatus st;
    MvFile *again = NULL;
    struct stat sb;
    void *map = MAP_FAILED;
    size_t map_len = 0;
    Census out;
    int rc = 0;

    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
        rc = fail_step("%s: cannot reset the output: %s", step, strerror(errno));
        goto out;
    }
    mv_write_options_init(&wopts);
    wopts.transfer_syntax = ts;
    wopts.flags = MV_WRITE_NO_SYNC;
    st = mv_file_write_fd(file, fd, &wopts, &err);
    if (st == MV_ERR_UNSUPPORTED && ts != NULL)
        goto out;
    if (st != MV_OK) {
        rc = fail_step("%s: writing failed: %s", step, err.message);
        goto out;
    }
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0) {
        rc = fail_step("%s: the writer wrote nothing", step);
        goto out;
    }
    map_len = (size_t)sb.st_size;
    map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = fail_step("%s: cannot map the output: %s", step, strerror(errno));
        goto out;
    }
    /* As in fuzz_read: a rewrite may be a little larger, so a larger inflate cap. */
    read_options(&ropts, 4 * RUN_MAX_INFLATED);
    st = mv_file_from_memory(map, map_len, step, &ropts, &again, &err);
    if (st != MV_OK) {
        rc = fail_step("%s: the output does not parse: %s", step, err.message);
        keep_output(path, step, map, map_len);
        goto out;
    }
    out = census(mv_file_dataset(again));
    if (!same_census(in, out)) {
        rc = fail_step("%s: top-level elements: %zu read (and %zu group lengths), %zu (and %zu) in the output", step,
                       in.kept, in.group_lengths, out.kept, out.group_lengths);
        keep_output(path, step, map, map_len);
        goto out;
    }
out:
    mv_file_free(again);
    if (map != MAP_FAILED)
        munmap(map, map_len);
    return rc;
}

/* Reads the whole file into a malloc'd buffer (NULL for an empty file too). */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;

    *len = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        size_t got;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *grown = realloc(buf, ncap);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
            cap = ncap;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* The steps for one file, in the child. Returns 0 (pass) or EXIT_INVARIANT; prints the
 * result line. */
static int run_file(const char *path)
{
    MvReadOptions ropts;
    MvDumpOptions dopts = {0};
    MvJsonOptions jopts = {0};
    MvError err, mem_err;
    MvFile *file = NULL, *mem_file = NULL;
    MvStatus st, mem_st;
    const MvTransferSyntax *ts;
    FILE *devnull = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    Census in, mem_in;
    int fd = -1, rc = 0;
    const char *msg;

    read_options(&ropts, RUN_MAX_INFLATED);
    st = mv_file_open(path, &ropts, &file, &err);

    /* The same bytes from memory (the fuzzer's way in) must give the same answer. */
    bytes = slurp(path, &len);
    /* The pixel codec's invariants abort on failure: reported as a crash of this file. */
    if (bytes != NULL)
        pixel_check_input(bytes, len);
    mem_st = mv_file_from_memory(bytes != NULL ? bytes : (const uint8_t *)"", len, path, &ropts, &mem_file, &mem_err);
    if (st != MV_OK) {
        /* An empty file is refused by mv_file_open only (from memory it is no data). */
        if (mem_st == MV_OK && len > 0) {
            rc = fail_step("mv_file_open refused it (%s) but mv_file_from_memory read it", err.message);
            goto out;
        }
        /* The library's message starts with the file name already. */
        msg = err.message;
        if (strncmp(msg, path, strlen(path)) == 0 && strncmp(msg + strlen(path), ": ", 2) == 0)
            msg += strlen(path) + 2;
        printf("%s: ok (rejected: %s)\n", path, msg);
        goto out;
    }
    in = census(mv_file_dataset(file));
    if (mem_st != MV_OK) {
        rc = fail_step("mv_file_open read it but mv_file_from_memory refused it (%s)", mem_err.message);
        goto out;
    }
    mem_in = census(mv_file_dataset(mem_file));
    if (mem_in.kept != in.kept || mem_in.group_lengths != in.group_lengths) {
        rc = fail_step("mv_file_open read %zu top-level elements, mv_file_from_memory %zu",
                       in.kept + in.group_lengths, mem_in.kept + mem_in.group_lengths);
        goto out;
    }

    devnull = fopen("/dev/null", "w");
    if (devnull == NULL) {
        rc = fail_step("cannot open /dev/null: %s", strerror(errno));
        goto out;
    }
    /* Both settings of every option, as the fuzzer's last byte picks them. Errors are
     * allowed here (a value may be undecodable); crashes and leaks are not. */
    dopts.flags = 0;
    (void)mv_dump_write(file, devnull, &dopts, &err);
    dopts.flags = MV_DUMP_OFFSETS | MV_DUMP_FULL | MV_DUMP_NO_META;
    (void)mv_dump_write(file, devnull, &dopts, &err);
    jopts.flags = 0;
    (void)mv_json_write(file, devnull, &jopts, &err);
    jopts.flags = MV_JSON_BULK | MV_JSON_PRETTY | MV_JSON_META;
    (void)mv_json_write(file, devnull, &jopts, &err);

    fd = memfd_create("regress_runner", MFD_CLOEXEC);
    if (fd < 0) {
        rc = fail_step("memfd_create failed: %s", strerror(errno));
        goto out;
    }
    if (rewrite_and_check(path, file, fd, NULL, in) != 0) {
        rc = -1;
        goto out;
    }
    ts = mv_file_transfer_syntax(file);
    if (ts != NULL && !ts->encapsulated) {
        if (strcmp(ts->uid, MV_UID_IMPLICIT_LE) != 0 && rewrite_and_check(path, file, fd, MV_UID_IMPLICIT_LE, in) != 0) {
            rc = -1;
            goto out;
        }
        if (strcmp(ts->uid, MV_UID_EXPLICIT_BE) != 0 && rewrite_and_check(path, file, fd, MV_UID_EXPLICIT_BE, in) != 0) {
            rc = -1;
            goto out;
        }
    }
    printf("%s: ok\n", path);
out:
    if (rc != 0)
        printf("%s: error %s\n", path, failure);
    if (fd >= 0)
        close(fd);
    if (devnull != NULL)
        fclose(devnull);
    mv_file_free(mem_file);
    mv_file_free(file);
    free(bytes);
    return rc != 0 ? EXIT_INVARIANT : 0;
}

static int path_add(PathList *list, const char *path)
{
    char *copy;

    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        char **grown = realloc(list->paths, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        list->paths = grown;
        list->cap = cap;
    }
    copy = strdup(path);
    if (copy == NULL)
        return -1;
    list->paths[list->n++] = copy;
    return 0;
}

/* Files to replay: everything under dir except hidden names and the scripts and notes
 * kept beside the reproducers (*.py, *.md, *.txt). */
static int collect(PathList *list, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0;

    if (d == NULL) {
        fprintf(stderr, "regress_runner: cannot open %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char path[4096];
        size_t n = strlen(de->d_name);
        struct stat sb;

        if (de->d_name[0] == '.')
            continue;
        if ((n > 3 && strcmp(de->d_name + n - 3, ".py") == 0) || (n > 3 && strcmp(de->d_name + n - 3, ".md") == 0) ||
            (n > 4 && strcmp(de->d_name + n - 4, ".txt") == 0))
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path) {
            fprintf(stderr, "regress_runner: path too long under %s\n", dir);
            rc = -1;
            break;
        }
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            rc = collect(list, path);
        else if (S_ISREG(sb.st_mode))
            rc = path_add(list, path);
    }
    closedir(d);
    return rc;
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    char default_dir[4096];
    const char *dir = argc > 1 ? argv[1] : NULL;
    PathList list = {0};
    size_t passed = 0, failed = 0;

    if (argc > 2 || (dir != NULL && (strcmp(dir, "-h") == 0 || strcmp(dir, "--help") == 0))) {
        fprintf(stderr, "usage: regress_runner [DIR]  (default: $MV_SOURCE_DIR/tests/regress)\n");
        return 2;
    }
    if (dir == NULL) {
        const char *src = getenv("MV_SOURCE_DIR");
        if (src == NULL || *src == '\0') {
            fprintf(stderr, "regress_runner: give a folder or set MV_SOURCE_DIR\n");
            return 2;
        }
        snprintf(default_dir, sizeof default_dir, "%s/tests/regress", src);
        dir = default_dir;
    }
    if (collect(&list, dir) != 0)
        return 2;
    if (list.n > 0)
        qsort(list.paths, list.n, sizeof list.paths[0], compare_paths);

    for (size_t i = 0; i < list.n; i++) {
        const char *path = list.paths[i];
        pid_t pid;
        int status = 0;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
            fprintf(stderr, "regress_runner: fork failed: %s\n", strerror(errno));
            return 2;
        }
        if (pid == 0) {
            int rc;
            alarm(RUN_TIMEOUT);
            rc = run_file(path);
            /* exit, not _exit: LeakSanitizer checks at exit. */
            exit(rc);
        }
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                fprintf(stderr, "regress_runner: waitpid failed: %s\n", strerror(errno));
                return 2;
            }
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_INVARIANT) {
            failed++;
        } else {
            failed++;
            if (WIFSIGNALED(status))
                printf("%s: error crashed (signal %d%s)\n", path, WTERMSIG(status),
                       WTERMSIG(status) == SIGALRM ? ", timeout" : "");
            else
                printf("%s: error crashed (exit status %d; see the sanitizer report above)\n", path,
                       WEXITSTATUS(status));
        }
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    for (size_t i = 0; i < list.n; i++)
        free(list.paths[i]);
    free(list.paths);
    return failed > 0 ? 1 : 0;
}
