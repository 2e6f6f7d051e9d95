/* libFuzzer target for vault archives (src/vault/backup.c): `medveil vault restore` and
 * `restore --verify` read a file that may come from anywhere. The input is the whole archive,
 * given to mv_vault_verify_backup with a fixed passphrase; it must be refused cleanly (or, for
 * the unchanged seed, accepted) without a crash, a leak or a file left behind. Seeds in
 * fuzz/fuzz_vault_backup/ are archives of a one-object vault whose keyring uses the passphrase
 * below and cheap Argon2id costs (t=1, 8 MiB), so that a run that gets as far as unlocking
 * stays fast. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "medveil/keys.h"
#include "medveil/vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char passphrase[] = "fuzz-passphrase";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MvUnlock how;
    MvVaultBackupInfo info;
    MvError err;
    char path[64];
    size_t done = 0;
    int fd = memfd_create("archive", MFD_CLOEXEC);

    if (fd < 0)
        return 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return 0;
        }
        done += (size_t)n;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    memset(&how, 0, sizeof how);
    how.kind = MV_UNLOCK_PASSPHRASE;
    how.secret = (const uint8_t *)passphrase;
    how.secret_len = sizeof passphrase - 1;
    (void)mv_vault_verify_backup(path, &how, &info, &err);
    close(fd);
    return 0;
}
