/* The encrypted vault: identified DICOM objects kept in HOME/vault, each encrypted with its own
 * random AES-256-GCM data key in authenticated chunks, the data key wrapped under a per-patient
 * key and the keyring's KEK (keys.h), and an SQLite index of the Patient/Study/Series/Instance
 * hierarchy that holds no identifying value in the clear: lookups go through blind indexes
 * (HMAC-SHA256 under the keyring's "blind-index" key) and display values are encrypted under
 * its "display" key. docs/vault.md describes the formats and the crash-safety protocol. */
#ifndef MEDVEIL_VAULT_H
#define MEDVEIL_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/keys.h"
#include "medveil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct MvVault MvVault;

#define MV_VAULT_ID_CHARS 32 /* an object id: 128 random bits in lowercase hex */

/* 1 if HOME/vault holds a vault index. */
int mv_vault_exists(const char *home);

/* Creates HOME/vault (mode 0700: objects/, tmp/, index.sqlite). The keyring must be unlocked:
 * the vault's named keys ("blind-index", "display") are made in it on first use.
 * MV_ERR_ARG when a vault already exists there. */
MvStatus mv_vault_create(const char *home, MvKeyring *kr, MvError *err);

#define MV_VAULT_WRITE 1u /* take the writer lock (HOME/vault/lock) and finish interrupted work */

/* Opens the vault of HOME with an unlocked keyring, which must stay open until
 * mv_vault_close. With MV_VAULT_WRITE, waits for the writer lock, then rolls back puts and
 * removals that a crash interrupted (see mv_vault_recovered). MV_ERR_NOTFOUND when HOME has no
 * vault; MV_ERR_INTEGRITY when the index is damaged. *out is NULL on failure. */
MvStatus mv_vault_open(const char *home, MvKeyring *kr, unsigned flags, MvVault **out, MvError *err);
/* Rolls back a batch of puts that was not flushed, wipes every key, frees. NULL is accepted. */
void mv_vault_close(MvVault *v);
/* What opening with MV_VAULT_WRITE cleaned up: objects of interrupted batches rolled back and
 * temporary files removed. */
void mv_vault_recovered(const MvVault *v, unsigned *n_rolled_back, unsigned *n_temp_removed);

/* Progress of long operations (fsck, rotate, backup, restore): done and total in the
 * operation's unit (bytes or objects). fn may be NULL. */
typedef void (*MvVaultProgressFn)(uint64_t done, uint64_t total, void *ctx);
void mv_vault_set_progress(MvVault *v, MvVaultProgressFn fn, void *ctx);

/* ---- Storing ---------------------------------------------------------------------- */

typedef enum MvVaultPutOutcome {
    MV_VAULT_STORED = 0, /* a new object (acknowledged once mv_vault_flush has run) */
    MV_VAULT_ALREADY,    /* the same SOP Instance UID with the same bytes is stored already */
    MV_VAULT_CONFLICT    /* the SOP Instance UID is stored already with other bytes: nothing stored */
} MvVaultPutOutcome;

typedef struct MvVaultPut {
    MvVaultPutOutcome outcome;
    char object_id[MV_VAULT_ID_CHARS + 1]; /* the new or existing object */
    char sop_uid[65];                      /* SOP Instance UID (0008,0018) */
    uint64_t size;                         /* bytes of the original */
} MvVaultPut;

/* Stages one DICOM file: parses it with the codec (hierarchy and display values), encrypts
 * its exact bytes to a temporary blob, and adds its rows to the open batch. Nothing is
 * durable or visible to others until mv_vault_flush. MV_ERR_PARSE when the bytes are not
 * DICOM, MV_ERR_ARG when it has no SOP Instance UID; the batch is unchanged then. Needs
 * MV_VAULT_WRITE. */
MvStatus mv_vault_put_file(MvVault *v, const char *path, MvVaultPut *res, MvError *err);
/* As mv_vault_put_file on len bytes the caller owns (only read during the call); name is used
 * in messages. */
MvStatus mv_vault_put_memory(MvVault *v, const void *data, size_t len, const char *name, MvVaultPut *res,
                             MvError *err);
/* Objects staged and not yet flushed, and their bytes (bytes may be NULL). */
size_t mv_vault_pending(const MvVault *v, uint64_t *bytes);

/* Makes the staged batch durable: blobs synced, an intent record written, blobs renamed into
 * objects/, directories synced, the index transaction committed; then calls fn (may be NULL)
 * for every stored object, in staging order. On failure the batch is rolled back: nothing of
 * it is stored. */
typedef void (*MvVaultAckFn)(const MvVaultPut *stored, void *ctx);
MvStatus mv_vault_flush(MvVault *v, MvVaultAckFn fn, void *ctx, MvError *err);

/* ---- Reading ---------------------------------------------------------------------- */

/* The object holding SOP Instance UID sop_uid and its size. MV_ERR_NOTFOUND when absent. */
MvStatus mv_vault_lookup(MvVault *v, const char *sop_uid, char object_id[MV_VAULT_ID_CHARS + 1], uint64_t *size,
                         MvError *err);
/* Writes the exact original bytes of sop_uid to out_path (mode 0600): to a temporary name in the
 * same folder, synced, renamed; nothing is left at either name on failure. MV_ERR_INTEGRITY when
 * any chunk fails authentication (the output is then not created). */
MvStatus mv_vault_get(MvVault *v, const char *sop_uid, const char *out_path, MvError *err);
/* As mv_vault_get; with MV_VAULT_NO_SYNC the output is renamed into place without being synced
 * (for many outputs followed by one sync of their folder, as `vault get DIR` does). */
#define MV_VAULT_NO_SYNC 1u
MvStatus mv_vault_get_file(MvVault *v, const char *sop_uid, const char *out_path, unsigned flags, MvError *err);
/* Range read: decrypts only the chunks that hold bytes [offset, offset + len) of the original
 * into buf. *n_read is less than len only at the end of the object. */
MvStatus mv_vault_read(MvVault *v, const char *sop_uid, uint64_t offset, void *buf, size_t len, size_t *n_read,
                       MvError *err);

/* ---- Listing ---------------------------------------------------------------------- */

/* Decrypted display values; every string is UTF-8, "" when the file had none. */
typedef struct MvVaultInstance {
    char object_id[MV_VAULT_ID_CHARS + 1];
    char *sop_uid, *sop_class_uid, *number, *transfer_syntax;
    uint64_t size;
} MvVaultInstance;

typedef struct MvVaultSeries {
    char *uid, *modality, *number, *description;
    MvVaultInstance *instances;
    size_t n_instances;
} MvVaultSeries;

typedef struct MvVaultStudy {
    char *uid, *date, *time, *description, *accession;
    MvVaultSeries *series;
    size_t n_series;
} MvVaultStudy;

typedef struct MvVaultPatient {
    char ref[MV_VAULT_ID_CHARS + 1]; /* opaque id of the patient's key, for audit and forget */
    char *id, *issuer, *name, *birth_date, *sex;
    MvVaultStudy *studies;
    size_t n_studies;
} MvVaultPatient;

typedef struct MvVaultListing {
    MvVaultPatient *patients;
    size_t n_patients;
    size_t n_instances;
} MvVaultListing;

/* Any of the fields may be NULL (no filter). Patient ID and name are matched through their
 * blind index, after normalisation (surrounding spaces; names also case and empty components). */
typedef struct MvVaultFilter {
    const char *patient_id;
    const char *patient_name;
    const char *study_uid;
} MvVaultFilter;

/* The hierarchy, sorted by patient ID, study date and UID, series number and UID, instance
 * number and UID. filter may be NULL. Free *out with mv_vault_listing_free (which wipes it). */
MvStatus mv_vault_list(MvVault *v, const MvVaultFilter *filter, MvVaultListing **out, MvError *err);
void mv_vault_listing_free(MvVaultListing *listing);

/* ---- Destroying ------------------------------------------------------------------- */

/* Destroys the object of sop_uid: its index row and wrapped key (overwritten: secure_delete),
 * then its blob; empty series, studies and patients go too. Fills object_id. Needs
 * MV_VAULT_WRITE. MV_ERR_NOTFOUND when absent. */
MvStatus mv_vault_rm(MvVault *v, const char *sop_uid, char object_id[MV_VAULT_ID_CHARS + 1], MvError *err);

typedef struct MvVaultForget {
    size_t n_patients, n_studies, n_series, n_objects;
    char (*patient_refs)[MV_VAULT_ID_CHARS + 1]; /* n_patients */
    char (*object_ids)[MV_VAULT_ID_CHARS + 1];   /* n_objects */
} MvVaultForget;

/* Crypto-shredding: destroys the key of every patient whose Patient ID is patient_id, which
 * makes all their objects unrecoverable, then their rows and blobs. MV_ERR_NOTFOUND when no
 * patient has that ID. Free res with mv_vault_forget_clear. Needs MV_VAULT_WRITE. */
MvStatus mv_vault_forget_patient(MvVault *v, const char *patient_id, MvVaultForget *res, MvError *err);
void mv_vault_forget_clear(MvVaultForget *res);

/* ---- Keys, checks, backups ---------------------------------------------------------- */

typedef struct MvVaultRotation {
    uint32_t old_version, new_version;
    size_t n_patient_keys, n_object_keys;
    unsigned n_retired; /* KEK versions destroyed (retire only) */
} MvVaultRotation;

/* Makes a new KEK version current and rewraps every patient key and object key under it in
 * one transaction (no object is re-encrypted). With retire, then destroys every older KEK
 * version, after checking that nothing is still wrapped under one. Needs MV_VAULT_WRITE. */
MvStatus mv_vault_rotate(MvVault *v, int retire, MvVaultRotation *res, MvError *err);
/* As mv_vault_rotate; when new_how is not NULL the new KEK version is protected as it says (a new
 * passphrase or key file also re-protects the older versions: the old secret opens nothing any
 * more; see mv_keyring_rotate). */
MvStatus mv_vault_rotate_to(MvVault *v, const MvUnlock *new_how, int retire, MvVaultRotation *res, MvError *err);

typedef struct MvVaultFsck {
    size_t n_objects;  /* index rows checked */
    size_t n_damaged;  /* objects failing authentication, or rows failing their checks */
    size_t n_missing;  /* rows whose blob is missing */
    size_t n_orphans;  /* blobs or files with no row */
    size_t n_temp;     /* temporary files left behind */
    uint64_t bytes;    /* plaintext bytes authenticated */
} MvVaultFsck;

/* Called once per problem: object_id (or a file name under HOME/vault, or "index") and a short
 * description without patient data. */
typedef void (*MvVaultProblemFn)(const char *object_id, const char *what, void *ctx);
/* Checks everything: the index's structure, every row's wrapped keys, encrypted display values
 * and blind indexes, every blob fully authenticated against its row, and the folder against the
 * index both ways. Returns MV_OK when the check ran (problems are in *res and went to fn);
 * MV_ERR_INTEGRITY when the index cannot be read at all. */
MvStatus mv_vault_fsck(MvVault *v, MvVaultProblemFn fn, void *ctx, MvVaultFsck *res, MvError *err);

typedef struct MvVaultBackupInfo {
    size_t n_objects;
    size_t n_keyring_files;
    uint64_t bytes; /* archive size */
} MvVaultBackupInfo;

/* Writes one archive of the vault to path (temporary name, synced, renamed; mode 0600): the
 * keyring's files as they are on disk (the KEK only ever in its protected form), then an
 * encrypted and authenticated stream (chunked AES-256-GCM under a fresh archive key wrapped by
 * the KEK) of the index and every blob, ending with a SHA-256 manifest. Needs MV_VAULT_WRITE
 * (so that nothing changes during the copy). */
MvStatus mv_vault_backup(MvVault *v, const char *path, MvVaultBackupInfo *info, MvError *err);
/* Restores an archive into HOME, which must hold neither keyring nor vault: writes the keyring
 * files, unlocks them with how, authenticates and unpacks everything, and checks the manifest.
 * On any failure HOME is left as it was. On success *kr_out (may be NULL) is the unlocked
 * keyring. MV_ERR_DENIED for a wrong secret, MV_ERR_INTEGRITY for a damaged archive. */
MvStatus mv_vault_restore(const char *home, const char *path, const MvUnlock *how, MvKeyring **kr_out,
                          MvVaultBackupInfo *info, MvError *err);
/* Checks an archive without restoring it: unlocks its keyring (a temporary private copy, removed
 * afterwards) with how, authenticates every byte and checks the manifest. Nothing is written
 * elsewhere. Same statuses as mv_vault_restore. */
MvStatus mv_vault_verify_backup(const char *path, const MvUnlock *how, MvVaultBackupInfo *info, MvError *err);

#ifdef __cplusplus
}
#endif
#endif
