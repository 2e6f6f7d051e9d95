/* libFuzzer target for the parsers of the audit module that read untrusted bytes: checkpoint
 * notes and verifier keys (src/audit/checkpoint.c), base64 proof hashes, and the two RFC 9162
 * proof verifiers (src/audit/merkle.c) with sizes, hashes and proofs of any length, and the
 * strict checker of event lines (src/audit/event.c). Byte 0
 * picks the parser; a result must be a status, never a crash or a read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_int.h"
#include "medveil/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char vkey[] = "vm/medveil-audit/713284f0+c62999ff+AS47lGiJr7tWmCvoUEfXA5J5++IerqG3KBCJMIEy7VSr";

static uint64_t u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MvAuditCheckpoint cp;
    char *text;

    if (size < 1)
        return 0;
    switch (data[0] % 6) {
    case 0: /* a checkpoint note against a fixed key */
        text = malloc(size);
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        mv_audit_checkpoint_verify(text, size - 1, vkey, &cp, NULL);
        free(text);
        break;
    case 1: /* the input as the key, a minimal note */
        text = malloc(size);
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        {
            static const char note[] = "a\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\xE2\x80\x94 a AAAA\n";
            mv_audit_checkpoint_verify(note, sizeof note - 1, text, &cp, NULL);
        }
        free(text);
        break;
    case 2: { /* base64 proof hashes separated by NUL */
        const char *items[64];
        size_t n = 0;
        uint8_t *out = NULL;
        text = malloc(size);
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        for (size_t i = 0; i < size - 1 && n < 64;) {
            items[n++] = text + i;
            i += strlen(text + i) + 1;
        }
        mv_merkle_proof_decode(items, n, &out, NULL);
        free(out);
        free(text);
        break;
    }
    case 3: /* inclusion: index, size, then leaf (len byte), root (len byte), proof */
    case 4: { /* consistency: size1, size2, root1 (len byte), root2 (len byte), proof */
        uint64_t a, b;
        size_t l1, l2, pos = 17;
        if (size < 19)
            return 0;
        a = u64(data + 1) % 4096;
        b = u64(data + 9) % 4096;
        l1 = data[pos++] % 40;
        if (pos + l1 + 1 > size)
            return 0;
        const uint8_t *h1 = data + pos;
        pos += l1;
        l2 = data[pos++] % 40;
        if (pos + l2 > size)
            return 0;
        const uint8_t *h2 = data + pos;
        pos += l2;
        if (data[0] % 6 == 3)
            mv_merkle_verify_inclusion(a, b, h1, l1, data + pos, size - pos, h2, l2, NULL);
        else
            mv_merkle_verify_consistency(a, b, data + pos, size - pos, h1, l1, h2, l2, NULL);
        break;
    }
    case 5: { /* an events.jsonl line, as verify and recovery read it */
        char why[160];
        mv__event_check((const char *)data + 1, size - 1, size % 7, why, sizeof why);
        break;
    }
    }
    return 0;
}
