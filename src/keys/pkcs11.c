/* The PKCS#11 side of the keyring: the module is loaded with dlopen (headers from p11-kit),
 * one read-write user session is kept per keyring, KEKs are AES-256 secret keys generated
 * inside the token (sensitive, never extractable) and data keys are wrapped with CKM_AES_GCM
 * there, so the KEK never reaches this process. Tested with SoftHSM2 (docs/keys.md). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

#include "keys/keys_int.h"

/* A loaded module, shared by the keyrings of this process that use it: C_Initialize once,
 * C_Finalize when the last one closes (PKCS#11 v2.40 5.4: one initialisation per process).
 * Not thread-safe: keyrings are opened and closed from one thread. */
typedef struct Module {
    char *path;
    void *dl;
    CK_FUNCTION_LIST *f;
    int initialized; /* C_Initialize was ours, so C_Finalize is too */
    unsigned users;
    struct Module *next;
} Module;

static Module *modules;

struct MvP11 {
    Module *mod;
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE session;
    int logged_in; /* this keyring logged the user in */
    int have_session;
};

static void module_release(Module *mod)
{
    Module **pp;

    if (mod == NULL || --mod->users > 0)
        return;
    for (pp = &modules; *pp != NULL; pp = &(*pp)->next)
        if (*pp == mod) {
            *pp = mod->next;
            break;
        }
    if (mod->f != NULL && mod->initialized)
        (void)mod->f->C_Finalize(NULL);
    if (mod->dl != NULL)
        dlclose(mod->dl);
    free(mod->path);
    free(mod);
}

static MvStatus module_acquire(const char *path, Module **out, MvError *err)
{
    CK_C_GetFunctionList get_list;
    CK_C_INITIALIZE_ARGS init_args;
    Module *mod;
    CK_RV rv;

    for (mod = modules; mod != NULL; mod = mod->next)
        if (strcmp(mod->path, path) == 0) {
            mod->users++;
            *out = mod;
            return MV_OK;
        }
    mod = calloc(1, sizeof *mod);
    if (mod == NULL || (mod->path = strdup(path)) == NULL) {
        free(mod);
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    }
    mod->users = 1;
    mod->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (mod->dl == NULL) {
        MvStatus st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                                   "%s: cannot load the PKCS#11 module: %s", path, dlerror());
        module_release(mod);
        return st;
    }
    *(void **)&get_list = dlsym(mod->dl, "C_GetFunctionList");
    if (get_list == NULL || get_list(&mod->f) != CKR_OK || mod->f == NULL) {
        mod->f = NULL;
        module_release(mod);
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET,
                            "%s: not a PKCS#11 module (no C_GetFunctionList)", path);
    }
    memset(&init_args, 0, sizeof init_args);
    init_args.flags = CKF_OS_LOCKING_OK;
    rv = mod->f->C_Initialize(&init_args);
    if (rv == CKR_OK)
        mod->initialized = 1;
    else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        module_release(mod);
        return mv_error_set(err, MV_ERR_CRYPTO, MV_NO_TAG, MV_NO_OFFSET, "%s: C_Initialize failed (CK_RV 0x%lx)",
                            path, (unsigned long)rv);
    }
    mod->next = modules;
    modules = mod;
    *out = mod;
    return MV_OK;
}

static MvStatus p11_fail(MvError *err, MvStatus code, const char *what, CK_RV rv)
{
    return mv_error_set(err, code, MV_NO_TAG, MV_NO_OFFSET, "PKCS#11 %s failed (CK_RV 0x%lx)", what,
                        (unsigned long)rv);
}

void mv__p11_close(MvP11 *p11)
{
    if (p11 == NULL)
        return;
    if (p11->f != NULL) {
        /* The login belongs to the application, not the session: log out only when no other
         * keyring of this process uses the module (closing the last session does it too). */
        if (p11->logged_in && p11->mod->users == 1)
            (void)p11->f->C_Logout(p11->session);
        if (p11->have_session)
            (void)p11->f->C_CloseSession(p11->session);
    }
    module_release(p11->mod);
    free(p11);
}

/* The token label is 32 bytes padded with blanks (PKCS#11 v2.40 3.2 CK_TOKEN_INFO). */
static int label_matches(const unsigned char label[32], const char *want)
{
    size_t n = 32, wlen = strlen(want);

    while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == '\0'))
        n--;
    return n == wlen && memcmp(label, want, n) == 0;
}

MvStatus mv__p11_open(const char *module, const char *token_label, const uint8_t *pin, size_t pin_len,
                      MvP11 **out, MvError *err)
{
    MvP11 *p11 = calloc(1, sizeof *p11);
    CK_SLOT_ID *slots = NULL, slot = 0;
    CK_ULONG n_slots = 0, n_found = 0;
    CK_RV rv;
    MvStatus st = MV_OK;

    *out = NULL;
    if (p11 == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    st = module_acquire(module, &p11->mod, err);
    if (st != MV_OK)
        goto out;
    p11->f = p11->mod->f;
    rv = p11->f->C_GetSlotList(CK_TRUE, NULL, &n_slots);
    if (rv != CKR_OK) {
        st = p11_fail(err, MV_ERR_CRYPTO, "C_GetSlotList", rv);
        goto out;
    }
    slots = calloc(n_slots + 1, sizeof *slots);
    if (slots == NULL) {
        st = mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        goto out;
    }
    rv = p11->f->C_GetSlotList(CK_TRUE, slots, &n_slots);
    if (rv != CKR_OK) {
        st = p11_fail(err, MV_ERR_CRYPTO, "C_GetSlotList", rv);
        goto out;
    }
    for (CK_ULONG i = 0; i < n_slots; i++) {
        CK_TOKEN_INFO info;
        if (p11->f->C_GetTokenInfo(slots[i], &info) == CKR_OK && label_matches(info.label, token_label)) {
            slot = slots[i];
            n_found++;
        }
    }
    if (n_found == 0) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: no token labelled '%s'", module,
                          token_label);
        goto out;
    }
    if (n_found > 1) {
        st = mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "%s: %lu tokens are labelled '%s'; relabel one",
                          module, (unsigned long)n_found, token_label);
        goto out;
    }
    rv = p11->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p11->session);
    if (rv != CKR_OK) {
        st = p11_fail(err, MV_ERR_CRYPTO, "C_OpenSession", rv);
        goto out;
    }
    p11->have_session = 1;
    rv = p11->f->C_Login(p11->session, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)pin_len);
    if (rv == CKR_OK)
        p11->logged_in = 1;
    else if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
        st = mv_error_set(err, MV_ERR_DENIED, MV_NO_TAG, MV_NO_OFFSET, "token '%s': %s", token_label,
                          rv == CKR_PIN_LOCKED ? "the user PIN is locked" : "wrong PIN");
        goto out;
    } else if (rv != CKR_USER_ALREADY_LOGGED_IN) {
        st = p11_fail(err, MV_ERR_CRYPTO, "C_Login", rv);
        goto out;
    }
    *out = p11;
    p11 = NULL;
out:
    free(slots);
    mv__p11_close(p11);
    return st;
}

MvStatus mv__p11_find(MvP11 *p11, const char *label, unsigned long *handle, MvError *err)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CK_RV rv;

    rv = p11->f->C_FindObjectsInit(p11->session, tmpl, 2);
    if (rv != CKR_OK)
        return p11_fail(err, MV_ERR_CRYPTO, "C_FindObjectsInit", rv);
    rv = p11->f->C_FindObjects(p11->session, found, 2, &n);
    (void)p11->f->C_FindObjectsFinal(p11->session);
    if (rv != CKR_OK)
        return p11_fail(err, MV_ERR_CRYPTO, "C_FindObjects", rv);
    if (n == 0)
        return mv_error_set(err, MV_ERR_NOTFOUND, MV_NO_TAG, MV_NO_OFFSET, "token holds no key labelled '%s'",
                            label);
    if (n > 1)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET,
                            "token holds more than one key labelled '%s'", label);
    *handle = found[0];
    return MV_OK;
}

MvStatus mv__p11_generate(MvP11 *p11, const char *label, MvError *err)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_ULONG len = MV_KEK_BYTES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_ENCRYPT, &yes, sizeof yes},
        {CKA_DECRYPT, &yes, sizeof yes},
        {CKA_WRAP, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},
        {CKA_SIGN, &no, sizeof no},
        {CKA_VERIFY, &no, sizeof no},
        {CKA_DERIVE, &no, sizeof no},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)label, strlen(label)},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE handle;
    unsigned long existing;
    CK_RV rv;
    MvStatus st;

    st = mv__p11_find(p11, label, &existing, NULL);
    if (st == MV_OK || st == MV_ERR_INTEGRITY)
        return mv_error_set(err, MV_ERR_ARG, MV_NO_TAG, MV_NO_OFFSET, "token already holds a key labelled '%s'",
                            label);
    rv = p11->f->C_GenerateKey(p11->session, &mech, tmpl, sizeof tmpl / sizeof tmpl[0], &handle);
    if (rv != CKR_OK)
        return p11_fail(err, MV_ERR_CRYPTO, "C_GenerateKey (AES-256)", rv);
    return MV_OK;
}

MvStatus mv__p11_gcm(MvP11 *p11, unsigned long handle, int encrypt, const uint8_t nonce[MV_GCM_NONCE],
                     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out,
                     MvError *err)
{
    CK_GCM_PARAMS params;
    CK_MECHANISM mech;
    CK_ULONG out_len;
    uint8_t *buf = NULL;
    CK_RV rv;
    MvStatus st = MV_OK;

    memset(&params, 0, sizeof params);
    params.iv_ptr = (unsigned char *)nonce;
    params.iv_len = MV_GCM_NONCE;
    params.iv_bits = 8 * MV_GCM_NONCE;
    params.aad_ptr = (unsigned char *)aad;
    params.aad_len = aad_len;
    params.tag_bits = 8 * MV_GCM_TAG;
    mech.mechanism = CKM_AES_GCM;
    mech.pParameter = &params;
    mech.ulParameterLen = sizeof params;
    if (encrypt) {
        rv = p11->f->C_EncryptInit(p11->session, &mech, handle);
        if (rv != CKR_OK)
            return p11_fail(err, MV_ERR_CRYPTO, "C_EncryptInit (AES-GCM)", rv);
        out_len = in_len + MV_GCM_TAG;
        rv = p11->f->C_Encrypt(p11->session, (CK_BYTE *)in, in_len, out, &out_len);
        if (rv != CKR_OK || out_len != in_len + MV_GCM_TAG)
            return p11_fail(err, MV_ERR_CRYPTO, "C_Encrypt (AES-GCM)", rv);
        return MV_OK;
    }
    if (in_len < MV_GCM_TAG)
        return mv_error_set(err, MV_ERR_INTEGRITY, MV_NO_TAG, MV_NO_OFFSET, "ciphertext shorter than its tag");
    /* Some tokens want room for the whole input; the plaintext is copied out afterwards. */
    buf = mv__secure_alloc(in_len);
    if (buf == NULL)
        return mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
    rv = p11->f->C_DecryptInit(p11->session, &mech, handle);
    if (rv != CKR_OK) {
        st = p11_fail(err, MV_ERR_CRYPTO, "C_DecryptInit (AES-GCM)", rv);
        goto out;
    }
    out_len = in_len;
    rv = p11->f->C_Decrypt(p11->session, (CK_BYTE *)in, in_len, buf, &out_len);
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR ||
        rv == CKR_FUNCTION_FAILED || (rv == CKR_OK && out_len != in_len - MV_GCM_TAG)) {
        st = MV_ERR_INTEGRITY; /* a tag that does not verify; the caller words the message */
        goto out;
    }
    if (rv != CKR_OK) {
        st = p11_fail(err, MV_ERR_CRYPTO, "C_Decrypt (AES-GCM)", rv);
        goto out;
    }
    memcpy(out, buf, in_len - MV_GCM_TAG);
out:
    mv__secure_free(buf, in_len);
    return st;
}

MvStatus mv__p11_destroy(MvP11 *p11, const char *label, MvError *err)
{
    unsigned long handle = 0;
    MvStatus st = mv__p11_find(p11, label, &handle, err);
    CK_RV rv;

    if (st != MV_OK)
        return st;
    rv = p11->f->C_DestroyObject(p11->session, handle);
    if (rv != CKR_OK)
        return p11_fail(err, MV_ERR_CRYPTO, "C_DestroyObject", rv);
    return MV_OK;
}
