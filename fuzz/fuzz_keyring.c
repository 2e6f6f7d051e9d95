/* libFuzzer target for the keyring file parser (src/keys/keyring_file.c), which reads bytes an
 * attacker with the home folder can write. Byte 0 chooses: even, the rest is a JSON body and
 * the target appends a valid HMAC line shape and the right SHA-256 line, so that the fuzzer
 * reaches the JSON checks behind the checksum; odd, the rest is the whole file as is. A file
 * that parses must format again and parse to the same versions, states and named keys. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "keys/keys_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const MvKeyringFile *kf)
{
    static const uint8_t zero_key[32];
    MvKeyringFile again;
    uint8_t *out = NULL;
    size_t out_len = 0;

    if (mv__keyring_file_format(kf, zero_key, &out, &out_len, NULL) != MV_OK)
        abort();
    if (mv__keyring_file_parse(out, out_len, &again, NULL) != MV_OK)
        abort();
    if (again.current != kf->current || again.n_keks != kf->n_keks || again.n_named != kf->n_named ||
        memcmp(again.id, kf->id, sizeof kf->id) != 0)
        abort();
    for (size_t i = 0; i < kf->n_keks; i++)
        if (again.keks[i].version != kf->keks[i].version || again.keks[i].state != kf->keks[i].state ||
            again.keks[i].kind != kf->keks[i].kind)
            abort();
    for (size_t i = 0; i < kf->n_named; i++)
        if (strcmp(again.named[i].name, kf->named[i].name) != 0 ||
            again.named[i].wrapped_len != kf->named[i].wrapped_len)
            abort();
    mv__keyring_file_clear(&again);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MvKeyringFile kf;
    uint8_t *buf = NULL, sum[32];
    size_t len;

    if (size < 1 || size > MV_KEYRING_MAX)
        return 0;
    if (data[0] % 2 == 0) {
        static const char mac_line[] = "hmac-sha256 0000000000000000000000000000000000000000000000000000000000000000\n";
        size_t body = size - 1, at;
        len = body + 1 + sizeof mac_line - 1 + 7 + 64 + 1;
        buf = malloc(len);
        if (buf == NULL)
            return 0;
        memcpy(buf, data + 1, body);
        buf[body] = '\n';
        memcpy(buf + body + 1, mac_line, sizeof mac_line - 1);
        at = body + 1 + sizeof mac_line - 1;
        EVP_Digest(buf, at, sum, NULL, EVP_sha256(), NULL);
        memcpy(buf + at, "sha256 ", 7);
        for (size_t i = 0; i < 32; i++) {
            static const char hex[] = "0123456789abcdef";
            buf[at + 7 + 2 * i] = (uint8_t)hex[sum[i] >> 4];
            buf[at + 8 + 2 * i] = (uint8_t)hex[sum[i] & 15];
        }
        buf[len - 1] = '\n';
    } else {
        len = size - 1;
        buf = malloc(len + 1);
        if (buf == NULL)
            return 0;
        memcpy(buf, data + 1, len);
    }
    if (mv__keyring_file_parse(buf, len, &kf, NULL) == MV_OK) {
        check_round_trip(&kf);
        mv__keyring_file_clear(&kf);
    }
    free(buf);
    return 0;
}
