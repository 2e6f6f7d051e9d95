/* RFC 6962 Merkle tree hashing (section 2.1), proof generation (2.1.1 PATH, 2.1.2 PROOF) and
 * proof verification as RFC 9162 sections 2.1.3.2 and 2.1.4.2 specify it. Generation asks a
 * caller-supplied function for subtree hashes, so the log can answer from its caches. */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit/audit_int.h"

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md;
}

MvStatus mv__hasher_init(MvHasher *h, MvError *err)
{
    h->ctx = NULL;
    if (sha256() == NULL)
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "SHA-256 is not available");
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    return MV_OK;
}

void mv__hasher_free(MvHasher *h)
{
    if (h != NULL) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
    }
}

/* The digest calls cannot fail with a fetched SHA-256 and valid buffers; an abort beats a
 * silently wrong hash in a tamper-evident log. */
static void digest2(MvHasher *h, uint8_t prefix, const void *a, size_t alen, const void *b, size_t blen,
                    uint8_t out[MV_AUDIT_HASH_BYTES])
{
    EVP_MD_CTX *ctx = h->ctx;
    unsigned int n = 0;

    if (EVP_DigestInit_ex2(ctx, sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, &prefix, 1) != 1 ||
        (alen > 0 && EVP_DigestUpdate(ctx, a, alen) != 1) || (blen > 0 && EVP_DigestUpdate(ctx, b, blen) != 1) ||
        EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != MV_AUDIT_HASH_BYTES)
        OPENSSL_die("SHA-256 failed", __FILE__, __LINE__);
}

void mv__hash_leaf(MvHasher *h, const void *data, size_t len, uint8_t out[MV_AUDIT_HASH_BYTES])
{
    digest2(h, 0x00, data, len, NULL, 0, out);
}

void mv__hash_node(MvHasher *h, const uint8_t *left, const uint8_t *right, uint8_t out[MV_AUDIT_HASH_BYTES])
{
    uint8_t both[2 * MV_AUDIT_HASH_BYTES];

    memcpy(both, left, MV_AUDIT_HASH_BYTES);
    memcpy(both + MV_AUDIT_HASH_BYTES, right, MV_AUDIT_HASH_BYTES);
    digest2(h, 0x01, both, sizeof both, NULL, 0, out);
}

/* One-shot wrappers of the public API: a context per call is fine for single hashes. */
static void with_hasher_or_die(MvHasher *h)
{
    if (mv__hasher_init(h, NULL) != MV_OK)
        OPENSSL_die("SHA-256 context", __FILE__, __LINE__);
}

void mv_merkle_leaf_hash(const void *data, size_t len, uint8_t out[MV_AUDIT_HASH_BYTES])
{
    MvHasher h;

    with_hasher_or_die(&h);
    mv__hash_leaf(&h, data, len, out);
    mv__hasher_free(&h);
}

void mv_merkle_node_hash(const uint8_t left[MV_AUDIT_HASH_BYTES], const uint8_t right[MV_AUDIT_HASH_BYTES],
                         uint8_t out[MV_AUDIT_HASH_BYTES])
{
    MvHasher h;

    with_hasher_or_die(&h);
    mv__hash_node(&h, left, right, out);
    mv__hasher_free(&h);
}

uint64_t mv__merkle_split(uint64_t n)
{
    uint64_t k = 1;

    while (k < n - k)
        k <<= 1;
    return k;
}

/* RFC 6962 2.1: MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of
 * two < n. Done bottom-up with a stack of perfect subtrees, which gives the same tree. */
void mv__merkle_root_mem(MvHasher *h, const uint8_t *leaves, uint64_t n, uint8_t out[MV_AUDIT_HASH_BYTES])
{
    uint8_t stack[65][MV_AUDIT_HASH_BYTES];
    int depth = 0;

    if (n == 0) {
        unsigned int len = 0;
        if (EVP_Digest("", 0, out, &len, sha256(), NULL) != 1)
            OPENSSL_die("SHA-256 failed", __FILE__, __LINE__);
        return;
    }
    for (uint64_t i = 0; i < n; i++) {
        memcpy(stack[depth++], leaves + i * MV_AUDIT_HASH_BYTES, MV_AUDIT_HASH_BYTES);
        /* Merge while the number of leaves so far has trailing one bits: i+1's low zeros. */
        for (uint64_t count = i + 1; (count & 1) == 0; count >>= 1) {
            mv__hash_node(h, stack[depth - 2], stack[depth - 1], stack[depth - 2]);
            depth--;
        }
    }
    /* Fold the remaining perfect subtrees right to left (smaller ones are on the right). */
    while (depth > 1) {
        mv__hash_node(h, stack[depth - 2], stack[depth - 1], stack[depth - 2]);
        depth--;
    }
    memcpy(out, stack[0], MV_AUDIT_HASH_BYTES);
}

void mv_merkle_root(const uint8_t *leaf_hashes, uint64_t n, uint8_t out[MV_AUDIT_HASH_BYTES])
{
    MvHasher h;

    with_hasher_or_die(&h);
    mv__merkle_root_mem(&h, leaf_hashes, n, out);
    mv__hasher_free(&h);
}

/* RFC 6962 2.1.1: PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) if m < k,
 *                                PATH(m - k, D[k:n]) : MTH(D[0:k]) otherwise. */
MvStatus mv__merkle_path(MvSubtreeFn fn, void *ctx, uint64_t index, uint64_t lo, uint64_t hi, uint8_t *out,
                         size_t *n_out, MvError *err)
{
    uint64_t n = hi - lo, k;
    MvStatus st;

    if (n <= 1)
        return MV_OK;
    k = mv__merkle_split(n);
    if (index < k) {
        st = mv__merkle_path(fn, ctx, index, lo, lo + k, out, n_out, err);
        if (st == MV_OK)
            st = fn(ctx, lo + k, hi, out + (*n_out)++ * MV_AUDIT_HASH_BYTES, err);
    } else {
        st = mv__merkle_path(fn, ctx, index - k, lo + k, hi, out, n_out, err);
        if (st == MV_OK)
            st = fn(ctx, lo, lo + k, out + (*n_out)++ * MV_AUDIT_HASH_BYTES, err);
    }
    return st;
}

/* RFC 6962 2.1.2: SUBPROOF(m, D[n], b). */
static MvStatus subproof(MvSubtreeFn fn, void *ctx, uint64_t m, uint64_t lo, uint64_t hi, int complete,
                         uint8_t *out, size_t *n_out, MvError *err)
{
    uint64_t n = hi - lo, k;
    MvStatus st;

    if (m == n) {
        if (complete)
            return MV_OK;
        return fn(ctx, lo, hi, out + (*n_out)++ * MV_AUDIT_HASH_BYTES, err);
    }
    k = mv__merkle_split(n);
    if (m <= k) {
        st = subproof(fn, ctx, m, lo, lo + k, complete, out, n_out, err);
        if (st == MV_OK)
            st = fn(ctx, lo + k, hi, out + (*n_out)++ * MV_AUDIT_HASH_BYTES, err);
    } else {
        st = subproof(fn, ctx, m - k, lo + k, hi, 0, out, n_out, err);
        if (st == MV_OK)
            st = fn(ctx, lo, lo + k, out + (*n_out)++ * MV_AUDIT_HASH_BYTES, err);
    }
    return st;
}

MvStatus mv__merkle_proof(MvSubtreeFn fn, void *ctx, uint64_t m, uint64_t n, uint8_t *out, size_t *n_out,
                          MvError *err)
{
    *n_out = 0;
    return subproof(fn, ctx, m, 0, n, 1, out, n_out, err);
}

static int hash_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

/* RFC 9162 2.1.3.2. */
MvStatus mv_merkle_verify_inclusion(uint64_t index, uint64_t tree_size, const uint8_t *leaf_hash,
                                    size_t leaf_hash_len, const uint8_t *proof, size_t proof_len,
                                    const uint8_t *root, size_t root_len, MvError *err)
{
    uint8_t r[MV_AUDIT_HASH_BYTES];
    uint64_t fn, sn;
    MvHasher h = {NULL};
    MvStatus st;

    if (index >= tree_size)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "leaf index %llu is not below the tree size %llu", (unsigned long long)index,
                            (unsigned long long)tree_size);
    if (leaf_hash_len != MV_AUDIT_HASH_BYTES || root_len != MV_AUDIT_HASH_BYTES)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "the leaf hash and the root must be 32 bytes (got %zu and %zu)", leaf_hash_len,
                            root_len);
    if (proof_len % MV_AUDIT_HASH_BYTES != 0)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "the proof is %zu bytes, not a whole number of 32-byte hashes", proof_len);
    st = mv__hasher_init(&h, err);
    if (st != MV_OK)
        return st;
    fn = index;
    sn = tree_size - 1;
    memcpy(r, leaf_hash, sizeof r);
    for (size_t i = 0; i < proof_len / MV_AUDIT_HASH_BYTES; i++) {
        const uint8_t *p = proof + i * MV_AUDIT_HASH_BYTES;
        if (sn == 0) {
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                              "the proof has %zu hashes, more than the tree needs", proof_len / MV_AUDIT_HASH_BYTES);
            goto out;
        }
        if ((fn & 1) || fn == sn) {
            mv__hash_node(&h, p, r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            mv__hash_node(&h, r, p, r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "the proof is too short for the tree");
        goto out;
    }
    if (!hash_equal(r, sizeof r, root, root_len))
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                          "the proof leads to another root: leaf %llu is not in this tree",
                          (unsigned long long)index);
out:
    mv__hasher_free(&h);
    return st;
}

/* RFC 9162 2.1.4.2. */
MvStatus mv_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t *proof, size_t proof_len,
                                      const uint8_t *root1, size_t root1_len, const uint8_t *root2,
                                      size_t root2_len, MvError *err)
{
    uint8_t fr[MV_AUDIT_HASH_BYTES], sr[MV_AUDIT_HASH_BYTES];
    const uint8_t *path;
    size_t n_path, i;
    uint64_t fn, sn;
    MvHasher h = {NULL};
    MvStatus st;

    if (size1 == 0)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "old size 0: every tree extends the empty one, there is nothing to prove");
    if (size1 > size2)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "old size %llu is larger than new size %llu", (unsigned long long)size1,
                            (unsigned long long)size2);
    if (size1 == size2) {
        if (proof_len != 0)
            return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                                "equal sizes need an empty proof");
        if (!hash_equal(root1, root1_len, root2, root2_len))
            return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                                "equal sizes but different roots: the log was rewritten");
        return MV_OK;
    }
    if (proof_len == 0 || proof_len % MV_AUDIT_HASH_BYTES != 0)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "the proof is %zu bytes, not one or more 32-byte hashes", proof_len);
    if (root1_len != MV_AUDIT_HASH_BYTES || root2_len != MV_AUDIT_HASH_BYTES)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "the roots must be 32 bytes");
    st = mv__hasher_init(&h, err);
    if (st != MV_OK)
        return st;
    path = proof;
    n_path = proof_len / MV_AUDIT_HASH_BYTES;
    /* Step 2: when size1 is a power of two, the old root itself starts the path. */
    i = 0;
    if ((size1 & (size1 - 1)) == 0) {
        memcpy(fr, root1, sizeof fr);
    } else {
        memcpy(fr, path, sizeof fr);
        i = 1;
    }
    memcpy(sr, fr, sizeof sr);
    fn = size1 - 1;
    sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < n_path; i++) {
        const uint8_t *c = path + i * MV_AUDIT_HASH_BYTES;
        if (sn == 0) {
            st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                              "the proof has more hashes than the trees need");
            goto out;
        }
        if ((fn & 1) || fn == sn) {
            mv__hash_node(&h, c, fr, fr);
            mv__hash_node(&h, c, sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            mv__hash_node(&h, sr, c, sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "the proof is too short for the trees");
        goto out;
    }
    if (!hash_equal(fr, sizeof fr, root1, root1_len)) {
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                          "the proof does not lead to the old root");
        goto out;
    }
    if (!hash_equal(sr, sizeof sr, root2, root2_len))
        st = mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                          "the proof does not lead to the new root: the old tree is not a prefix of the new");
out:
    mv__hasher_free(&h);
    return st;
}
