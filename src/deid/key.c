/* Project keys: generation (OpenSSL's RAND_bytes), the one-line key file format, a public
 * fingerprint, and wiping. The key never appears in messages; buffers that held it are
 * cleansed before they are freed or go out of scope. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/core_int.h"
#include "deid/deid_int.h"

#define KEY_MAGIC "medveil-key-v1 "

void mv_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

static int hexdigit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

MvStatus mv_key_generate(const char *path, MvError *err)
{
    uint8_t key[MV_KEY_BYTES];
    char line[sizeof KEY_MAGIC + 2 * MV_KEY_BYTES + 1];
    size_t n = 0, len;
    int fd;
    MvStatus st = MV_OK;

    if (RAND_bytes(key, sizeof key) != 1)
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "the random generator failed");
    memcpy(line, KEY_MAGIC, sizeof KEY_MAGIC - 1);
    n = sizeof KEY_MAGIC - 1;
    mv__hex(key, sizeof key, line + n);
    n += 2 * sizeof key;
    line[n++] = '\n';
    len = n;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = mv_error_set(err, errno == EEXIST ? MV_ERR_ARG : MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path,
                          errno == EEXIST ? "already exists; a key is never overwritten" : strerror(errno));
        goto out;
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, line + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    if (st == MV_OK && fsync(fd) != 0)
        st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
    close(fd);
    if (st != MV_OK)
        unlink(path);
out:
    mv_wipe(key, sizeof key);
    mv_wipe(line, sizeof line);
    return st;
}

MvStatus mv_key_load(const char *path, uint8_t key[MV_KEY_BYTES], MvError *err)
{
    char buf[256];
    size_t n = 0;
    ssize_t r;
    int fd;
    MvStatus st = MV_OK;
    struct stat sb;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mv_error_set(err, errno == ENOENT ? MV_ERR_NOTFOUND : MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s",
                            path, strerror(errno));
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0) {
        st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET,
                          "%s: key file is readable by others (mode %03o); chmod 600 it", path,
                          (unsigned)(sb.st_mode & 0777));
        goto out;
    }
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            st = mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "%s: %s", path, strerror(errno));
            goto out;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (strncmp(buf, KEY_MAGIC, sizeof KEY_MAGIC - 1) != 0) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                          "%s:1: not a medveil key file (expected '%s' and 64 hex digits; make one with "
                          "'medveil keygen -o FILE')", path, KEY_MAGIC);
        goto out;
    }
    for (size_t i = 0; i < MV_KEY_BYTES; i++) {
        const char *p = buf + sizeof KEY_MAGIC - 1 + 2 * i;
        int hi = hexdigit((unsigned char)p[0]), lo = hi < 0 ? -1 : hexdigit((unsigned char)p[1]);
        if (hi < 0 || lo < 0) {
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s:1: the key needs 64 hex digits", path);
            goto out;
        }
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    {
        const char *rest = buf + sizeof KEY_MAGIC - 1 + 2 * MV_KEY_BYTES;
        while (*rest == '\n' || *rest == '\r' || *rest == ' ')
            rest++;
        if (*rest != '\0')
            st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: unexpected text after the key", path);
    }
out:
    if (st != MV_OK)
        mv_wipe(key, MV_KEY_BYTES);
    mv_wipe(buf, sizeof buf);
    close(fd);
    return st;
}

void mv_key_fingerprint(const uint8_t key[MV_KEY_BYTES], char out[24])
{
    static const char label[] = "medveil/fingerprint/v1";
    uint8_t msg[sizeof label - 1 + MV_KEY_BYTES], digest[32];
    unsigned int dlen = 0;

    memcpy(msg, label, sizeof label - 1);
    memcpy(msg + sizeof label - 1, key, MV_KEY_BYTES);
    EVP_Digest(msg, sizeof msg, digest, &dlen, EVP_sha256(), NULL);
    memcpy(out, "sha256:", 7);
    mv__hex(digest, 8, out + 7);
    mv_wipe(msg, sizeof msg);
}
