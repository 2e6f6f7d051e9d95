/* Secrets in memory and on their way in: locked (mlock'd, not dumped) buffers that are wiped
 * before they are freed, and mv_secret_read, which takes a passphrase or PIN from a file, an
 * environment variable or the terminal with echo off. Nothing here prints a secret. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keys/keys_int.h"

#define TTY_LINE_MAX 1024

/* ---- Locked memory ------------------------------------------------------------------ */

static int mlock_failed;

void *mv__secure_alloc(size_t n)
{
    void *p;

    if (n == 0)
        n = 1;
    p = calloc(1, n);
    if (p == NULL)
        return NULL;
    /* mlock fails with EPERM or ENOMEM where RLIMIT_MEMLOCK is small (containers, some
     * users): that is tolerated quietly and not tried again in this process. Any other
     * failure is said once on stderr. Either way the buffer is still wiped on free. */
    if (!mlock_failed && mlock(p, n) != 0) {
        mlock_failed = 1;
        if (errno != EPERM && errno != ENOMEM)
            fprintf(stderr, "medveil: warning: cannot lock key memory (%s); keys may reach swap\n",
                    strerror(errno));
    }
#ifdef MADV_DONTDUMP
    {
        /* Keep key pages out of core dumps: only whole pages inside the buffer qualify. */
        long page = sysconf(_SC_PAGESIZE);
        if (page > 0) {
            uintptr_t start = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
            uintptr_t end = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
            if (end > start)
                (void)madvise((void *)start, end - start, MADV_DONTDUMP);
        }
    }
#endif
    return p;
}

void mv__secure_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    if (n == 0)
        n = 1;
    OPENSSL_cleanse(p, n);
    (void)munlock(p, n);
    free(p);
}

void mv_secret_free(uint8_t *secret, size_t len)
{
    /* The allocation may be longer than len (a line buffer); the terminating zero byte that
     * mv_secret_read always adds is inside it, so len + 1 bytes are wiped. */
    if (secret != NULL)
        mv__secure_free(secret, len + 1);
}

MvStatus mv__secret_file(const char *path, size_t cap, int private_only, uint8_t **out, size_t *out_len,
                         MvError *err)
{
    struct stat sb;
    uint8_t *buf = NULL;
    size_t n = 0;
    int fd = -1;
    MvStatus st = MV_OK;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        st = mv_error_set(err, errno == ENOENT ? MV_ERR_NOTFOUND : MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s",
                          path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &sb) != 0) {
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: is a folder, not a file", path);
        goto out;
    }
    if (private_only && S_ISREG(sb.st_mode) && (sb.st_mode & 077) != 0) {
        st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                          "%s: secret file is accessible to others (mode %03o); chmod 600 it", path,
                          (unsigned)(sb.st_mode & 0777));
        goto out;
    }
    /* One byte more than the cap tells an oversized file apart; one more for a final NUL. */
    buf = mv__secure_alloc(cap + 2);
    if (buf == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    while (n < cap + 1) {
        ssize_t r = read(fd, buf + n, cap + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > cap) {
        st = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "%s: longer than %zu bytes", path, cap);
        goto out;
    }
    /* Hand out exactly n + 1 bytes (a final zero), so that the caller frees what it got. */
    *out = mv__secure_alloc(n + 1);
    if (*out == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    memcpy(*out, buf, n);
    *out_len = n;
out:
    mv__secure_free(buf, cap + 2);
    if (fd >= 0)
        close(fd);
    return st;
}

/* ---- Terminal prompt ------------------------------------------------------------------ */

static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
    caught_signal = sig;
}

/* Reads one line from the terminal with echo off. The terminal is restored before return,
 * also when SIGINT, SIGTERM, SIGHUP, SIGQUIT or SIGTSTP arrive: the signals are blocked except
 * inside ppoll, so one that comes before the wait starts is not lost, and it is raised again
 * once the terminal and the old handlers are back. */
static MvStatus read_tty(int tty, const char *prompt, uint8_t *line, size_t cap, size_t *out_len, MvError *err)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
    struct sigaction old_act[sizeof sigs / sizeof sigs[0]], act;
    struct termios saved, quiet;
    sigset_t block, old_mask;
    size_t n = 0;
    int restored = 0;
    MvStatus st = MV_OK;

    if (tcgetattr(tty, &saved) != 0)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "cannot read the terminal settings: %s",
                            strerror(errno));
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&block, sigs[i]);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal;
    sigemptyset(&act.sa_mask);
    act.sa_flags = 0;
    caught_signal = 0;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &act, &old_act[i]);
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    quiet.c_lflag |= ICANON;
    if (tcsetattr(tty, TCSAFLUSH, &quiet) != 0) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "cannot turn terminal echo off: %s",
                          strerror(errno));
        restored = 1;
        goto out;
    }
    if (prompt != NULL) {
        fputs(prompt, stderr);
        fflush(stderr);
    }
    for (;;) {
        struct pollfd pfd = {tty, POLLIN, 0};
        uint8_t c;
        ssize_t r;

        if (caught_signal) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "interrupted at the prompt");
            break;
        }
        /* The signals are deliverable only while waiting here. */
        if (ppoll(&pfd, 1, NULL, &old_mask) < 0) {
            if (errno == EINTR)
                continue;
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "terminal: %s", strerror(errno));
            break;
        }
        r = read(tty, &c, 1);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "terminal: %s", strerror(errno));
            break;
        }
        if (r == 0 || c == '\n')
            break;
        if (n == cap) {
            st = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "passphrase longer than %zu bytes",
                              cap);
            break;
        }
        line[n++] = c;
    }
    fputc('\n', stderr);
out:
    if (!restored)
        tcsetattr(tty, TCSAFLUSH, &saved);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &old_act[i], NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (caught_signal) {
        int sig = caught_signal;
        caught_signal = 0;
        OPENSSL_cleanse(line, cap);
        n = 0;
        raise(sig);
    }
    *out_len = n;
    return st;
}

/* ---- mv_secret_read ------------------------------------------------------------------- */

MvStatus mv_secret_read(const char *path, const char *env_name, const char *prompt, uint8_t **out,
                        size_t *out_len, MvError *err)
{
    uint8_t *buf = NULL;
    size_t n = 0, alloc = 0;
    const char *env = NULL;
    int tty = -1;
    MvStatus st = MV_OK;

    *out = NULL;
    *out_len = 0;
    if (path != NULL) {
        st = mv__secret_file(path, MV_SECRET_MAX, 1, &buf, &n, err);
        alloc = n + 1; /* what mv__secret_file allocates */
        if (st != MV_OK)
            goto out;
        /* The first line is the secret: a trailing "\n" or "\r\n" is not part of it. */
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
        if (memchr(buf, '\n', n) != NULL) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                              "%s: a secret file holds one line; this one holds several", path);
            goto out;
        }
    } else if (env_name != NULL && (env = getenv(env_name)) != NULL) {
        n = strlen(env);
        if (n > MV_SECRET_MAX) {
            st = mv_error_set(err, MV_ERR_LIMIT, MV_NO_TAG, MV_NO_OFFSET, "$%s is longer than %d bytes",
                              env_name, MV_SECRET_MAX);
            goto out;
        }
        alloc = n + 1;
        buf = mv__secure_alloc(alloc);
        if (buf == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            goto out;
        }
        memcpy(buf, env, n);
    } else {
        tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (tty < 0 || !isatty(tty)) {
            if (env_name != NULL)
                st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                                  "no secret given and no terminal to ask on: give a secret file or set $%s",
                                  env_name);
            else
                st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                                  "no secret given and no terminal to ask on: give a secret file");
            goto out;
        }
        alloc = TTY_LINE_MAX + 1;
        buf = mv__secure_alloc(alloc);
        if (buf == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            goto out;
        }
        st = read_tty(tty, prompt, buf, TTY_LINE_MAX, &n, err);
        if (st != MV_OK)
            goto out;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    if (n == 0) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "the secret is empty");
        goto out;
    }
    if (alloc != n + 1) {
        /* Exactly n + 1 bytes (a final zero), which is what mv_secret_free wipes and frees. */
        uint8_t *exact = mv__secure_alloc(n + 1);
        if (exact == NULL) {
            st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
            goto out;
        }
        memcpy(exact, buf, n);
        mv__secure_free(buf, alloc);
        buf = exact;
        alloc = n + 1;
    }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    buf = NULL;
out:
    mv__secure_free(buf, alloc);
    if (tty >= 0)
        close(tty);
    return st;
}
