/* `medveil vault`: the encrypted vault of identified images in the home folder. Each subcommand
 * unlocks the keyring (passphrase file, $MEDVEIL_PASSPHRASE or a prompt; key file; PKCS#11
 * token), opens the vault, does its work, records an audit event before it reports success,
 * and exits with the DESIGN.md statuses. Secrets never come from the command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "medveil/keys.h"
#include "medveil/vault.h"

#define CMD "vault"
#define BATCH_OBJECTS 256
#define BATCH_BYTES (256ull << 20)

void help_vault(FILE *out)
{
    fprintf(out,
            "usage: %s vault SUBCOMMAND [OPTIONS] [ARGS...]\n"
            "\n"
            "Keeps identified DICOM files encrypted in the home folder (HOME/vault): every object\n"
            "with its own random AES-256-GCM key, in authenticated 1 MiB chunks; the object key\n"
            "wrapped under a per-patient key and the keyring's KEK, so that one key destruction\n"
            "erases a patient for good. The index holds no name, ID, date or UID in the clear:\n"
            "lookups use keyed blind indexes, display values are encrypted. docs/vault.md says more.\n"
            "\n"
            "Subcommands:\n"
            "  init [--argon2-t N] [--argon2-m KIB] [--argon2-p N]\n"
            "                     create the keyring (if there is none) and the vault\n"
            "  put [--batch N] PATH...\n"
            "                     store DICOM files and folders (recursively); prints one line per\n"
            "                     object once it is durable: stored OBJECT_ID SOP_UID PATH;\n"
            "                     --batch: objects per commit (default 256, or 256 MB)\n"
            "  ls [--patient ID | --name NAME] [--study UID] [--json]\n"
            "                     list patients, studies, series and objects (decrypted)\n"
            "  get SOP_UID -o FILE                 the exact original bytes (mode 0600)\n"
            "  get SOP_UID... -o DIR               several objects, as DIR/SOP_UID.dcm\n"
            "  get --all|--patient ID|--study UID -o DIR\n"
            "  rm SOP_UID...      destroy objects (wrapped key overwritten, blob removed)\n"
            "  forget-patient PATIENT_ID\n"
            "                     destroy the patient's key, rows and blobs; says what went\n"
            "  rotate [--retire] [--new-passphrase-file FILE | --new-key-file FILE]\n"
            "                     new KEK version, every key rewrapped (no object re-encrypted);\n"
            "                     --retire then destroys the older KEK versions; --new-*: the\n"
            "                     keyring opens with the new secret only from then on\n"
            "  fsck               authenticate every object and check the index against the\n"
            "                     folder both ways; finishes work a crash interrupted\n"
            "  backup FILE        one encrypted, authenticated archive of the vault and keyring\n"
            "  restore [--verify] FILE\n"
            "                     rebuild an empty home from an archive (unlock as for the\n"
            "                     keyring that made it); --verify only checks the archive\n"
            "\n"
            "Options of every subcommand:\n"
            "      --home DIR             home folder (default $MEDVEIL_HOME, else ./.medveil)\n"
            "      --passphrase-file FILE the keyring passphrase (first line); else\n"
            "                             $MEDVEIL_PASSPHRASE; else a prompt without echo\n"
            "      --key-file FILE        unlock with a key file (32+ random bytes, mode 0600)\n"
            "      --pkcs11-module SO     unlock with a PKCS#11 token: the module,\n"
            "      --pkcs11-token LABEL   the token label,\n"
            "      --pin-file FILE        and its user PIN (else $MEDVEIL_PIN, else a prompt)\n"
            "      --as NAME              who acts, for the audit log (default: the OS user)\n"
            "      --purpose TEXT         why, for the audit log\n"
            "  -q, --quiet                no progress and no per-object lines\n"
            "  -h, --help                 this help\n"
            "\n"
            "Exit status: 0 done; 1 some input failed (not DICOM, a SOP Instance UID already\n"
            "stored with other bytes, an unknown UID); 2 usage or configuration error (no vault,\n"
            "no secret); 3 integrity or security failure (wrong passphrase, damaged object or\n"
            "index, fsck found a problem, the audit log refused the event).\n"
            "\n"
            "Examples:\n"
            "  %s vault init --passphrase-file pass.txt --home /srv/medveil\n"
            "  %s vault put --passphrase-file pass.txt --home /srv/medveil incoming/\n"
            "  %s vault ls --patient 12345 --purpose 'tumour board'\n"
            "  %s vault get 1.2.826.0.1.3680043.2.1125.1 -o ct.dcm\n"
            "  %s vault forget-patient 12345\n"
            "  %s vault rotate --retire && %s vault fsck\n",
            cli_program, cli_program, cli_program, cli_program, cli_program, cli_program, cli_program, cli_program);
}

enum {
    OPT_HOME = 256,
    OPT_PASSFILE,
    OPT_KEYFILE,
    OPT_P11_MODULE,
    OPT_P11_TOKEN,
    OPT_PINFILE,
    OPT_AS,
    OPT_PURPOSE,
    OPT_T,
    OPT_M,
    OPT_P,
    OPT_PATIENT,
    OPT_NAME,
    OPT_STUDY,
    OPT_JSON,
    OPT_ALL,
    OPT_RETIRE,
    OPT_BATCH,
    OPT_VERIFY,
    OPT_NEW_PASSFILE,
    OPT_NEW_KEYFILE
};

typedef struct Opts {
    const char *sub;
    const char *home, *passphrase_file, *key_file, *p11_module, *p11_token, *pin_file, *actor, *purpose;
    const char *patient, *name, *study, *output;
    const char *new_passphrase_file, *new_key_file; /* rotate */
    int json, all, retire, quiet, progress, verify;
    uint32_t batch; /* objects per commit of put */
    MvKdfParams kdf;
    int kdf_set;
    uint8_t *secret;
    size_t secret_len;
    MvUnlock how;
} Opts;

/* ---- Helpers ---------------------------------------------------------------------------- */

static int exit_for(MvStatus st)
{
    switch (st) {
    case MV_OK: return MV_EXIT_OK;
    case MV_ERR_INTEGRITY:
    case MV_ERR_DENIED:
    case MV_ERR_CRYPTO: return MV_EXIT_SECURITY;
    case MV_ERR_ARG: return MV_EXIT_USAGE;
    default: return MV_EXIT_PARTIAL;
    }
}

static int audit(const Opts *o, const char *action, const char *const *objects, size_t n, const char *outcome,
                 const char *detail)
{
    CliAuditEvent ev = {action, objects, n, outcome, o->actor, o->purpose, detail};
    return cli_audit(cli_home(o->home), &ev);
}

static void progress(uint64_t done, uint64_t total, void *ctx)
{
    const char *what = ctx;
    static time_t last;
    time_t now = time(NULL);
    if (done != total && now == last)
        return;
    last = now;
    fprintf(stderr, "\r%s %" PRIu64 "/%" PRIu64 "%s", what, done, total, done == total ? "\r\033[K" : "");
    fflush(stderr);
}

static int read_secret(Opts *o, int confirm)
{
    MvError err;
    MvStatus st;
    mv_error_clear(&err);
    if (o->key_file != NULL) {
        o->how.kind = MV_UNLOCK_KEYFILE;
        o->how.path = o->key_file;
        return 0;
    }
    if (o->p11_module != NULL || o->p11_token != NULL) {
        if (o->p11_module == NULL || o->p11_token == NULL)
            return cli_usage_error(CMD, "--pkcs11-module and --pkcs11-token go together");
        st = mv_secret_read(o->pin_file, "MEDVEIL_PIN", "Token PIN: ", &o->secret, &o->secret_len, &err);
        if (st != MV_OK) {
            cli_error(CMD, "no PIN: %s (use --pin-file or $MEDVEIL_PIN)", err.message);
            return st == MV_ERR_DENIED ? MV_EXIT_SECURITY : MV_EXIT_USAGE;
        }
        o->how.kind = MV_UNLOCK_PKCS11;
        o->how.path = o->p11_module;
        o->how.token_label = o->p11_token;
        o->how.secret = o->secret;
        o->how.secret_len = o->secret_len;
        return 0;
    }
    st = mv_secret_read(o->passphrase_file, "MEDVEIL_PASSPHRASE", "Vault passphrase: ", &o->secret, &o->secret_len,
                        &err);
    if (st != MV_OK) {
        if (o->passphrase_file != NULL)
            cli_error(CMD, "cannot read the passphrase: %s", err.message);
        else
            cli_error(CMD, "no passphrase: %s (use --passphrase-file, $MEDVEIL_PASSPHRASE or a terminal)",
                      err.message);
        return st == MV_ERR_DENIED ? MV_EXIT_SECURITY : MV_EXIT_USAGE;
    }
    if (o->secret_len == 0) {
        cli_error(CMD, "the passphrase is empty");
        return MV_EXIT_USAGE;
    }
    if (confirm && o->passphrase_file == NULL && getenv("MEDVEIL_PASSPHRASE") == NULL) {
        uint8_t *again = NULL;
        size_t again_len = 0;
        int same;
        if (mv_secret_read(NULL, NULL, "Repeat the passphrase: ", &again, &again_len, &err) != MV_OK) {
            cli_error(CMD, "%s", err.message);
            return MV_EXIT_USAGE;
        }
        same = again_len == o->secret_len && memcmp(again, o->secret, again_len) == 0;
        mv_secret_free(again, again_len);
        if (!same) {
            cli_error(CMD, "the two passphrases differ");
            return MV_EXIT_USAGE;
        }
    }
    o->how.kind = MV_UNLOCK_PASSPHRASE;
    o->how.secret = o->secret;
    o->how.secret_len = o->secret_len;
    return 0;
}

/* Unlocks the keyring of HOME; on failure reports, audits a denied unlock, and returns the exit
 * status (0 on success). */
static int unlock(Opts *o, MvKeyring **kr)
{
    MvError err;
    MvStatus st;
    int rc;

    *kr = NULL;
    if ((rc = read_secret(o, 0)) != 0)
        return rc;
    mv_error_clear(&err);
    st = mv_keyring_open(cli_home(o->home), &o->how, kr, &err);
    if (st == MV_OK)
        return 0;
    if (st == MV_ERR_DENIED) {
        cli_error(CMD, "unlock denied: %s", err.message);
        audit(o, "auth.unlock", NULL, 0, "denied", "vault keyring");
        return MV_EXIT_SECURITY;
    }
    if (st == MV_ERR_NOTFOUND) {
        cli_error(CMD, "no keyring in %s: run '%s vault init' first", cli_home(o->home), cli_program);
        return MV_EXIT_USAGE;
    }
    cli_error(CMD, "cannot open the keyring: %s", err.message);
    return exit_for(st) == MV_EXIT_SECURITY ? MV_EXIT_SECURITY : MV_EXIT_USAGE;
}

static int open_vault(Opts *o, unsigned flags, MvKeyring **kr, MvVault **v)
{
    MvError err;
    MvStatus st;
    int rc;

    *v = NULL;
    if ((rc = unlock(o, kr)) != 0)
        return rc;
    mv_error_clear(&err);
    st = mv_vault_open(cli_home(o->home), *kr, flags, v, &err);
    if (st != MV_OK) {
        cli_error(CMD, "%s", err.message);
        return st == MV_ERR_NOTFOUND ? MV_EXIT_USAGE : exit_for(st) == MV_EXIT_SECURITY ? MV_EXIT_SECURITY : 1;
    }
    if (flags & MV_VAULT_WRITE) {
        unsigned rolled = 0, temp = 0;
        mv_vault_recovered(*v, &rolled, &temp);
        if ((rolled || temp) && !o->quiet)
            fprintf(stderr, "%s %s %s: recovered from an interrupted run: %u unfinished object(s) rolled back, "
                            "%u temporary file(s) removed\n", cli_program, CMD, o->sub, rolled, temp);
    }
    if (o->progress)
        mv_vault_set_progress(*v, progress, (void *)o->sub);
    return 0;
}

/* ---- put -------------------------------------------------------------------------------- */

typedef struct PutRun {
    Opts *o;
    MvVault *v;
    char **paths; /* staged, in order */
    size_t n_paths, cap_paths;
    MvVaultPut *acks;
    size_t n_acks, cap_acks;
    size_t n_stored, n_already, n_failed, n_seen, n_total;
    uint64_t bytes;
    int rc;
} PutRun;

typedef struct FileList {
    char **paths;
    size_t n, cap;
} FileList;

static int add_file(const char *path, void *arg)
{
    FileList *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **g = realloc(l->paths, cap * sizeof *g);
        if (g == NULL)
            return -1;
        l->paths = g;
        l->cap = cap;
    }
    if ((l->paths[l->n] = strdup(path)) == NULL)
        return -1;
    l->n++;
    return 0;
}

static void on_ack(const MvVaultPut *stored, void *arg)
{
    PutRun *r = arg;
    if (r->n_acks == r->cap_acks) {
        size_t cap = r->cap_acks ? r->cap_acks * 2 : 256;
        MvVaultPut *g = realloc(r->acks, cap * sizeof *g);
        if (g == NULL)
            return;
        r->acks = g;
        r->cap_acks = cap;
    }
    r->acks[r->n_acks++] = *stored;
}

/* Commits the staged batch, records it in the audit log, then acknowledges each object. */
static int put_flush(PutRun *r)
{
    MvError err;
    const char **ids;
    int rc = 0;

    mv_error_clear(&err);
    r->n_acks = 0;
    if (mv_vault_flush(r->v, on_ack, r, &err) != MV_OK) {
        cli_error(CMD, "put: a batch of %zu object(s) was not stored: %s", r->n_paths, err.message);
        r->n_failed += r->n_paths;
        goto out;
    }
    if (r->n_acks == 0)
        goto out;
    ids = malloc(r->n_acks * sizeof *ids);
    if (ids == NULL) {
        cli_error(CMD, "out of memory");
        return MV_EXIT_PARTIAL;
    }
    for (size_t i = 0; i < r->n_acks; i++)
        ids[i] = r->acks[i].object_id;
    rc = audit(r->o, "vault.put", ids, r->n_acks, "success", NULL);
    free(ids);
    if (rc != 0)
        return MV_EXIT_SECURITY;
    for (size_t i = 0; i < r->n_acks; i++) {
        r->n_stored++;
        r->bytes += r->acks[i].size;
        if (!r->o->quiet)
            printf("stored %s %s %s\n", r->acks[i].object_id, r->acks[i].sop_uid,
                   i < r->n_paths ? r->paths[i] : "");
    }
    fflush(stdout);
out:
    for (size_t i = 0; i < r->n_paths; i++)
        free(r->paths[i]);
    r->n_paths = 0;
    return 0;
}

static int run_put(Opts *o, int argc, char **argv)
{
    FileList files = {0};
    PutRun r;
    MvKeyring *kr = NULL;
    int n_walk_failed = 0, rc;
    MvError err;

    memset(&r, 0, sizeof r);
    r.o = o;
    if (argc < 1)
        return cli_usage_error(CMD, "put needs at least one PATH");
    if (cli_walk(argv, argc, add_file, &files, CMD, &n_walk_failed) != 0) {
        cli_error(CMD, "out of memory");
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    r.n_failed = (size_t)n_walk_failed;
    if ((rc = open_vault(o, MV_VAULT_WRITE, &kr, &r.v)) != 0)
        goto out;
    for (size_t i = 0; i < files.n; i++) {
        MvVaultPut res;
        uint64_t pending_bytes = 0;
        MvStatus st;
        mv_error_clear(&err);
        st = mv_vault_put_file(r.v, files.paths[i], &res, &err);
        if (o->progress)
            progress(i + 1, files.n, (void *)"put");
        if (st != MV_OK) {
            cli_error(CMD, "%s", err.message);
            r.n_failed++;
            if (st == MV_ERR_INTEGRITY || st == MV_ERR_DENIED || st == MV_ERR_CRYPTO) {
                rc = MV_EXIT_SECURITY;
                goto out;
            }
            continue;
        }
        if (res.outcome == MV_VAULT_ALREADY) {
            r.n_already++;
            if (!o->quiet)
                fprintf(stderr, "%s %s: %s: SOP Instance UID %s is already stored with the same bytes (object %s)\n",
                        cli_program, CMD, files.paths[i], res.sop_uid, res.object_id);
            continue;
        }
        if (res.outcome == MV_VAULT_CONFLICT) {
            r.n_failed++;
            cli_error(CMD, "%s: SOP Instance UID %s is already stored with other bytes (object %s); not stored",
                      files.paths[i], res.sop_uid, res.object_id);
            continue;
        }
        if (r.n_paths == r.cap_paths) {
            size_t cap = r.cap_paths ? r.cap_paths * 2 : 256;
            char **g = realloc(r.paths, cap * sizeof *g);
            if (g == NULL) {
                rc = MV_EXIT_PARTIAL;
                goto out;
            }
            r.paths = g;
            r.cap_paths = cap;
        }
        r.paths[r.n_paths++] = strdup(files.paths[i]);
        if (mv_vault_pending(r.v, &pending_bytes) >= o->batch || pending_bytes >= BATCH_BYTES) {
            if ((rc = put_flush(&r)) != 0)
                goto out;
        }
    }
    if ((rc = put_flush(&r)) != 0)
        goto out;
    if (!o->quiet)
        fprintf(stderr, "%s %s put: %zu stored (%.1f MB), %zu already stored, %zu failed\n", cli_program, CMD,
                r.n_stored, (double)r.bytes / 1e6, r.n_already, r.n_failed);
    if (r.n_failed > 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "%zu input(s) not stored", r.n_failed);
        if (audit(o, "vault.put", NULL, 0, "failure", detail) != 0) {
            rc = MV_EXIT_SECURITY;
            goto out;
        }
    }
    rc = r.n_failed > 0 ? MV_EXIT_PARTIAL : MV_EXIT_OK;
out:
    mv_vault_close(r.v); /* rolls back anything not flushed */
    mv_keyring_close(kr);
    for (size_t i = 0; i < files.n; i++)
        free(files.paths[i]);
    free(files.paths);
    for (size_t i = 0; i < r.n_paths; i++)
        free(r.paths[i]);
    free(r.paths);
    free(r.acks);
    return rc;
}

/* ---- ls --------------------------------------------------------------------------------- */

static json_t *listing_json(const MvVaultListing *l)
{
    json_t *patients = json_array();
    for (size_t p = 0; p < l->n_patients; p++) {
        const MvVaultPatient *pa = &l->patients[p];
        json_t *studies = json_array();
        for (size_t s = 0; s < pa->n_studies; s++) {
            const MvVaultStudy *st = &pa->studies[s];
            json_t *series = json_array();
            for (size_t e = 0; e < st->n_series; e++) {
                const MvVaultSeries *se = &st->series[e];
                json_t *instances = json_array();
                for (size_t i = 0; i < se->n_instances; i++) {
                    const MvVaultInstance *in = &se->instances[i];
                    json_array_append_new(instances,
                                          json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "sop_instance_uid", in->sop_uid,
                                                    "sop_class_uid", in->sop_class_uid, "instance_number", in->number,
                                                    "transfer_syntax", in->transfer_syntax, "object", in->object_id,
                                                    "size", (json_int_t)in->size));
                }
                json_array_append_new(series, json_pack("{s:s, s:s, s:s, s:s, s:o}", "series_instance_uid", se->uid,
                                                        "modality", se->modality, "series_number", se->number,
                                                        "description", se->description, "instances", instances));
            }
            json_array_append_new(studies,
                                  json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "study_instance_uid", st->uid, "date",
                                            st->date, "time", st->time, "description", st->description,
                                            "accession_number", st->accession, "series", series));
        }
        json_array_append_new(patients, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "patient_id", pa->id,
                                                  "issuer", pa->issuer, "name", pa->name, "birth_date", pa->birth_date,
                                                  "sex", pa->sex, "ref", pa->ref, "studies", studies));
    }
    return json_pack("{s:o, s:I}", "patients", patients, "objects", (json_int_t)l->n_instances);
}

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static void listing_text(const MvVaultListing *l)
{
    size_t n_studies = 0, n_series = 0;
    for (size_t p = 0; p < l->n_patients; p++) {
        const MvVaultPatient *pa = &l->patients[p];
        printf("patient %s  id %s%s%s  born %s  sex %s  [key %s]\n", or_dash(pa->name), or_dash(pa->id),
               pa->issuer[0] ? "  issuer " : "", pa->issuer, or_dash(pa->birth_date), or_dash(pa->sex), pa->ref);
        for (size_t s = 0; s < pa->n_studies; s++) {
            const MvVaultStudy *st = &pa->studies[s];
            n_studies++;
            printf("  study %s %s  \"%s\"  accession %s  uid %s\n", or_dash(st->date), or_dash(st->time),
                   st->description, or_dash(st->accession), or_dash(st->uid));
            for (size_t e = 0; e < st->n_series; e++) {
                const MvVaultSeries *se = &st->series[e];
                n_series++;
                printf("    series %s %s  \"%s\"  uid %s  (%zu object%s)\n", or_dash(se->number), or_dash(se->modality),
                       se->description, or_dash(se->uid), se->n_instances, se->n_instances == 1 ? "" : "s");
                for (size_t i = 0; i < se->n_instances; i++) {
                    const MvVaultInstance *in = &se->instances[i];
                    printf("      %s  %s  %" PRIu64 " bytes  object %s\n", or_dash(in->number), in->sop_uid, in->size,
                           in->object_id);
                }
            }
        }
    }
    printf("%zu patient%s, %zu stud%s, %zu series, %zu object%s\n", l->n_patients, l->n_patients == 1 ? "" : "s",
           n_studies, n_studies == 1 ? "y" : "ies", n_series, l->n_instances, l->n_instances == 1 ? "" : "s");
}

static const char **listing_ids(const MvVaultListing *l)
{
    const char **ids = malloc((l->n_instances + 1) * sizeof *ids);
    size_t n = 0;
    if (ids == NULL)
        return NULL;
    for (size_t p = 0; p < l->n_patients; p++)
        for (size_t s = 0; s < l->patients[p].n_studies; s++)
            for (size_t e = 0; e < l->patients[p].studies[s].n_series; e++)
                for (size_t i = 0; i < l->patients[p].studies[s].series[e].n_instances; i++)
                    ids[n++] = l->patients[p].studies[s].series[e].instances[i].object_id;
    return ids;
}

static int run_ls(Opts *o, int argc, char **argv)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultListing *l = NULL;
    MvVaultFilter filter = {o->patient, o->name, o->study};
    const char **ids = NULL;
    MvError err;
    int rc;

    (void)argv;
    if (argc > 0)
        return cli_usage_error(CMD, "ls takes no arguments (use --patient, --name or --study)");
    if ((rc = open_vault(o, 0, &kr, &v)) != 0)
        goto out;
    mv_error_clear(&err);
    if (mv_vault_list(v, &filter, &l, &err) != MV_OK) {
        cli_error(CMD, "ls: %s", err.message);
        rc = exit_for(err.code) == MV_EXIT_OK ? MV_EXIT_PARTIAL : exit_for(err.code);
        goto out;
    }
    if ((ids = listing_ids(l)) == NULL || audit(o, "vault.ls", ids, l->n_instances, "success", NULL) != 0) {
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    if (o->json) {
        json_t *doc = listing_json(l);
        if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
            cli_error(CMD, "ls: cannot write JSON");
            rc = MV_EXIT_PARTIAL;
        }
        putchar('\n');
        json_decref(doc);
    } else {
        listing_text(l);
    }
    if ((o->patient != NULL || o->name != NULL || o->study != NULL) && l->n_patients == 0) {
        if (!o->quiet)
            fprintf(stderr, "%s %s ls: nothing matches\n", cli_program, CMD);
        rc = MV_EXIT_PARTIAL;
    }
out:
    free(ids);
    mv_vault_listing_free(l);
    mv_vault_close(v);
    mv_keyring_close(kr);
    return rc;
}

/* ---- get -------------------------------------------------------------------------------- */

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int run_get(Opts *o, int argc, char **argv)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultListing *l = NULL;
    char **uids = NULL;
    const char **ids = NULL;
    size_t n_uids = 0, n_ok = 0, n_failed = 0;
    int to_dir, rc;
    MvError err;

    int selecting = o->all || o->patient != NULL || o->study != NULL;
    if (o->output == NULL)
        return cli_usage_error(CMD, "get needs -o FILE (or -o DIR for several objects)");
    if (selecting && argc > 0)
        return cli_usage_error(CMD, "get takes SOP Instance UIDs or --all/--patient/--study, not both");
    if (!selecting && argc < 1)
        return cli_usage_error(CMD, "get needs a SOP Instance UID");
    to_dir = selecting || argc > 1 || is_dir(o->output);
    if (to_dir && cli_mkdirs(o->output) != 0) {
        cli_error(CMD, "%s: %s", o->output, strerror(errno));
        return MV_EXIT_USAGE;
    }
    if ((rc = open_vault(o, 0, &kr, &v)) != 0)
        goto out;
    if (selecting) {
        MvVaultFilter filter = {o->patient, NULL, o->study};
        mv_error_clear(&err);
        if (mv_vault_list(v, &filter, &l, &err) != MV_OK) {
            cli_error(CMD, "get: %s", err.message);
            rc = exit_for(err.code);
            goto out;
        }
        uids = calloc(l->n_instances + 1, sizeof *uids);
        if (uids == NULL) {
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
        for (size_t p = 0; p < l->n_patients; p++)
            for (size_t s = 0; s < l->patients[p].n_studies; s++)
                for (size_t e = 0; e < l->patients[p].studies[s].n_series; e++)
                    for (size_t i = 0; i < l->patients[p].studies[s].series[e].n_instances; i++)
                        uids[n_uids++] = l->patients[p].studies[s].series[e].instances[i].sop_uid;
    } else {
        uids = argv;
        n_uids = (size_t)argc;
    }
    ids = calloc(n_uids + 1, sizeof *ids);
    char (*oids)[MV_VAULT_ID_CHARS + 1] = calloc(n_uids + 1, sizeof *oids);
    if (ids == NULL || oids == NULL) {
        free(oids);
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    /* The audit event goes first: nothing is decrypted that the log does not record. */
    for (size_t i = 0; i < n_uids; i++) {
        if (mv_vault_lookup(v, uids[i], oids[i], NULL, NULL) == MV_OK)
            ids[n_ok++] = oids[i];
    }
    if (audit(o, "vault.get", ids, n_ok, "success", NULL) != 0) {
        free(oids);
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    n_ok = 0;
    for (size_t i = 0; i < n_uids; i++) {
        char *path = NULL;
        MvStatus st;
        if (to_dir) {
            if (strchr(uids[i], '/') != NULL || strcmp(uids[i], "..") == 0 || strcmp(uids[i], ".") == 0) {
                cli_error(CMD, "get: '%s' is not a UID", uids[i]);
                n_failed++;
                continue;
            }
            if (asprintf(&path, "%s/%s.dcm", o->output, uids[i]) < 0)
                path = NULL;
        } else {
            path = strdup(o->output);
        }
        if (path == NULL) {
            rc = MV_EXIT_PARTIAL;
            break;
        }
        mv_error_clear(&err);
        st = mv_vault_get_file(v, uids[i], path, to_dir ? MV_VAULT_NO_SYNC : 0, &err);
        if (st != MV_OK) {
            cli_error(CMD, "get %s: %s", uids[i], err.message);
            n_failed++;
            if (exit_for(st) == MV_EXIT_SECURITY)
                rc = MV_EXIT_SECURITY;
        } else {
            n_ok++;
        }
        if (o->progress)
            progress(i + 1, n_uids, (void *)"get");
        free(path);
    }
    free(oids);
    if (to_dir) {
        /* One sync for the whole folder instead of one per file. */
        if (cli_sync_fs(o->output) != 0) {
            cli_error(CMD, "get: cannot sync %s: %s", o->output, strerror(errno));
            rc = MV_EXIT_PARTIAL;
        }
    }
    if (!o->quiet && n_uids > 1)
        fprintf(stderr, "%s %s get: %zu written to %s, %zu failed\n", cli_program, CMD, n_ok, o->output, n_failed);
    if (n_failed > 0) {
        char detail[64];
        snprintf(detail, sizeof detail, "%zu of %zu not written", n_failed, n_uids);
        if (audit(o, "vault.get", NULL, 0, "failure", detail) != 0)
            rc = MV_EXIT_SECURITY;
    }
    if (rc == 0)
        rc = n_failed > 0 ? MV_EXIT_PARTIAL : MV_EXIT_OK;
out:
    free(ids);
    if (uids != argv)
        free(uids);
    mv_vault_listing_free(l);
    mv_vault_close(v);
    mv_keyring_close(kr);
    return rc;
}

/* ---- rm, forget-patient ------------------------------------------------------------------ */

static int run_rm(Opts *o, int argc, char **argv)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    char (*oids)[MV_VAULT_ID_CHARS + 1] = NULL;
    const char **ids = NULL;
    size_t n_done = 0, n_failed = 0;
    int rc;
    MvError err;

    if (argc < 1)
        return cli_usage_error(CMD, "rm needs a SOP Instance UID");
    oids = calloc((size_t)argc, sizeof *oids);
    ids = calloc((size_t)argc, sizeof *ids);
    if (oids == NULL || ids == NULL) {
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    if ((rc = open_vault(o, MV_VAULT_WRITE, &kr, &v)) != 0)
        goto out;
    for (int i = 0; i < argc; i++) {
        MvStatus st;
        mv_error_clear(&err);
        st = mv_vault_rm(v, argv[i], oids[n_done], &err);
        if (st != MV_OK) {
            cli_error(CMD, "rm %s: %s", argv[i], err.message);
            n_failed++;
            if (exit_for(st) == MV_EXIT_SECURITY)
                rc = MV_EXIT_SECURITY;
            continue;
        }
        ids[n_done] = oids[n_done];
        n_done++;
    }
    if (n_done > 0 && audit(o, "vault.rm", ids, n_done, "success", NULL) != 0) {
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    for (size_t i = 0; i < n_done && !o->quiet; i++)
        printf("removed object %s\n", oids[i]);
    if (rc == 0)
        rc = n_failed > 0 ? MV_EXIT_PARTIAL : MV_EXIT_OK;
out:
    mv_vault_close(v);
    mv_keyring_close(kr);
    free(oids);
    free(ids);
    return rc;
}

static int run_forget(Opts *o, int argc, char **argv)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultForget res;
    const char **ids = NULL;
    MvError err;
    MvStatus st;
    int rc;

    memset(&res, 0, sizeof res);
    if (argc != 1)
        return cli_usage_error(CMD, "forget-patient needs exactly one PATIENT_ID");
    if ((rc = open_vault(o, MV_VAULT_WRITE, &kr, &v)) != 0)
        goto out;
    mv_error_clear(&err);
    st = mv_vault_forget_patient(v, argv[0], &res, &err);
    if (st != MV_OK) {
        cli_error(CMD, "forget-patient: %s", err.message);
        rc = exit_for(st) == MV_EXIT_OK ? MV_EXIT_PARTIAL : exit_for(st);
        if (st == MV_ERR_NOTFOUND)
            rc = MV_EXIT_PARTIAL;
        goto out;
    }
    ids = calloc(res.n_patients + res.n_objects + 1, sizeof *ids);
    if (ids == NULL) {
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    for (size_t i = 0; i < res.n_patients; i++)
        ids[i] = res.patient_refs[i];
    for (size_t i = 0; i < res.n_objects; i++)
        ids[res.n_patients + i] = res.object_ids[i];
    if (audit(o, "vault.forget-patient", ids, res.n_patients + res.n_objects, "success", NULL) != 0) {
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    printf("destroyed %zu patient key%s, %zu stud%s, %zu series and %zu object%s\n", res.n_patients,
           res.n_patients == 1 ? "" : "s", res.n_studies, res.n_studies == 1 ? "y" : "ies", res.n_series,
           res.n_objects, res.n_objects == 1 ? "" : "s");
    for (size_t i = 0; i < res.n_patients; i++)
        printf("patient key %s\n", res.patient_refs[i]);
    for (size_t i = 0; i < res.n_objects; i++)
        printf("object %s\n", res.object_ids[i]);
out:
    free(ids);
    mv_vault_forget_clear(&res);
    mv_vault_close(v);
    mv_keyring_close(kr);
    return rc;
}

/* ---- rotate, fsck ------------------------------------------------------------------------ */

static int run_rotate(Opts *o, int argc)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultRotation res;
    MvError err;
    MvStatus st;
    char detail[128];
    int rc;

    uint8_t *new_secret = NULL;
    size_t new_len = 0;
    MvUnlock new_how;

    memset(&new_how, 0, sizeof new_how);
    if (argc > 0)
        return cli_usage_error(CMD, "rotate takes no arguments");
    mv_error_clear(&err);
    if (o->new_key_file != NULL) {
        new_how.kind = MV_UNLOCK_KEYFILE;
        new_how.path = o->new_key_file;
    } else if (o->new_passphrase_file != NULL) {
        st = mv_secret_read(o->new_passphrase_file, NULL, NULL, &new_secret, &new_len, &err);
        if (st != MV_OK) {
            cli_error(CMD, "cannot read the new passphrase: %s", err.message);
            return st == MV_ERR_DENIED ? MV_EXIT_SECURITY : MV_EXIT_USAGE;
        }
        new_how.kind = MV_UNLOCK_PASSPHRASE;
        new_how.secret = new_secret;
        new_how.secret_len = new_len;
    }
    if ((rc = open_vault(o, MV_VAULT_WRITE, &kr, &v)) != 0)
        goto out;
    mv_error_clear(&err);
    st = mv_vault_rotate_to(v, new_how.kind != 0 ? &new_how : NULL, o->retire, &res, &err);
    if (st != MV_OK) {
        cli_error(CMD, "rotate: %s", err.message);
        rc = exit_for(st) == MV_EXIT_OK ? MV_EXIT_PARTIAL : exit_for(st);
        if (rc == MV_EXIT_USAGE)
            rc = MV_EXIT_PARTIAL;
        audit(o, "vault.rotate", NULL, 0, "failure", NULL);
        goto out;
    }
    snprintf(detail, sizeof detail, "KEK version %u -> %u; %u retired", res.old_version, res.new_version,
             res.n_retired);
    if (audit(o, "vault.rotate", NULL, 0, "success", detail) != 0) {
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    printf("KEK version %u -> %u: rewrapped %zu patient key%s and %zu object key%s (no object re-encrypted)\n",
           res.old_version, res.new_version, res.n_patient_keys, res.n_patient_keys == 1 ? "" : "s",
           res.n_object_keys, res.n_object_keys == 1 ? "" : "s");
    if (o->retire)
        printf("retired and destroyed %u older KEK version%s\n", res.n_retired, res.n_retired == 1 ? "" : "s");
    if (new_how.kind != 0)
        printf("the keyring now opens with the new %s only\n", o->new_key_file != NULL ? "key file" : "passphrase");
out:
    mv_vault_close(v);
    mv_keyring_close(kr);
    if (new_secret != NULL)
        mv_secret_free(new_secret, new_len);
    return rc;
}

static void on_problem(const char *object_id, const char *what, void *ctx)
{
    (void)ctx;
    cli_error(CMD, "fsck: %s: %s", object_id, what);
}

static int run_fsck(Opts *o, int argc)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultFsck res;
    MvError err;
    MvStatus st;
    size_t n_problems;
    unsigned rolled = 0, temp = 0;
    char detail[160];
    int rc;

    if (argc > 0)
        return cli_usage_error(CMD, "fsck takes no arguments");
    if ((rc = open_vault(o, MV_VAULT_WRITE, &kr, &v)) != 0)
        goto out;
    mv_vault_recovered(v, &rolled, &temp);
    mv_error_clear(&err);
    st = mv_vault_fsck(v, on_problem, NULL, &res, &err);
    n_problems = res.n_damaged + res.n_missing + res.n_orphans + res.n_temp;
    snprintf(detail, sizeof detail, "%zu objects; %zu damaged, %zu missing, %zu orphans, %zu temporary",
             res.n_objects, res.n_damaged, res.n_missing, res.n_orphans, res.n_temp);
    if (audit(o, "vault.fsck", NULL, 0, st == MV_OK && n_problems == 0 ? "success" : "failure", detail) != 0) {
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    if (st != MV_OK) {
        cli_error(CMD, "fsck: %s", err.message);
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    printf("checked %zu object%s, %.1f MB authenticated: %zu damaged, %zu missing, %zu orphan%s, "
           "%zu temporary file%s\n",
           res.n_objects, res.n_objects == 1 ? "" : "s", (double)res.bytes / 1e6, res.n_damaged, res.n_missing,
           res.n_orphans, res.n_orphans == 1 ? "" : "s", res.n_temp, res.n_temp == 1 ? "" : "s");
    if (rolled || temp)
        printf("recovered first: %u unfinished object%s rolled back, %u temporary file%s removed\n", rolled,
               rolled == 1 ? "" : "s", temp, temp == 1 ? "" : "s");
    rc = n_problems > 0 ? MV_EXIT_SECURITY : MV_EXIT_OK;
    if (n_problems > 0)
        printf("the vault is DAMAGED (see the messages above)\n");
out:
    mv_vault_close(v);
    mv_keyring_close(kr);
    return rc;
}

/* ---- backup, restore, init -------------------------------------------------------------- */

static int run_backup(Opts *o, int argc, char **argv)
{
    MvKeyring *kr = NULL;
    MvVault *v = NULL;
    MvVaultBackupInfo info;
    MvError err;
    MvStatus st;
    char detail[96];
    int rc;

    if (argc != 1)
        return cli_usage_error(CMD, "backup needs exactly one FILE");
    if ((rc = open_vault(o, MV_VAULT_WRITE, &kr, &v)) != 0)
        goto out;
    mv_error_clear(&err);
    st = mv_vault_backup(v, argv[0], &info, &err);
    if (st != MV_OK) {
        cli_error(CMD, "backup: %s", err.message);
        rc = exit_for(st) == MV_EXIT_SECURITY ? MV_EXIT_SECURITY : MV_EXIT_PARTIAL;
        goto out;
    }
    snprintf(detail, sizeof detail, "%zu objects", info.n_objects);
    if (audit(o, "vault.backup", NULL, 0, "success", detail) != 0) {
        unlink(argv[0]);
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    printf("backup %s: %zu object%s, %zu keyring file%s, %.1f MB\n", argv[0], info.n_objects,
           info.n_objects == 1 ? "" : "s", info.n_keyring_files, info.n_keyring_files == 1 ? "" : "s",
           (double)info.bytes / 1e6);
out:
    mv_vault_close(v);
    mv_keyring_close(kr);
    return rc;
}

static int run_restore(Opts *o, int argc, char **argv)
{
    MvKeyring *kr = NULL;
    MvVaultBackupInfo info;
    MvError err;
    MvStatus st;
    char detail[96];
    int rc;

    if (argc != 1)
        return cli_usage_error(CMD, "restore needs exactly one FILE");
    if ((rc = read_secret(o, 0)) != 0)
        return rc;
    mv_error_clear(&err);
    if (o->verify) {
        st = mv_vault_verify_backup(argv[0], &o->how, &info, &err);
        if (st != MV_OK) {
            cli_error(CMD, "restore --verify: %s", err.message);
            rc = exit_for(st) == MV_EXIT_OK ? MV_EXIT_PARTIAL : exit_for(st);
            return rc;
        }
        printf("%s: authentic and complete: %zu object%s, %zu keyring file%s, %.1f MB\n", argv[0], info.n_objects,
               info.n_objects == 1 ? "" : "s", info.n_keyring_files, info.n_keyring_files == 1 ? "" : "s",
               (double)info.bytes / 1e6);
        return MV_EXIT_OK;
    }
    st = mv_vault_restore(cli_home(o->home), argv[0], &o->how, &kr, &info, &err);
    if (st != MV_OK) {
        cli_error(CMD, "restore: %s", err.message);
        if (st == MV_ERR_DENIED)
            audit(o, "auth.unlock", NULL, 0, "denied", "restore");
        rc = exit_for(st) == MV_EXIT_OK ? MV_EXIT_PARTIAL : exit_for(st);
        goto out;
    }
    snprintf(detail, sizeof detail, "%zu objects", info.n_objects);
    if (audit(o, "vault.restore", NULL, 0, "success", detail) != 0) {
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    printf("restored %zu object%s and %zu keyring file%s into %s\n", info.n_objects, info.n_objects == 1 ? "" : "s",
           info.n_keyring_files, info.n_keyring_files == 1 ? "" : "s", cli_home(o->home));
out:
    mv_keyring_close(kr);
    return rc;
}

static int run_init(Opts *o, int argc)
{
    const char *home = cli_home(o->home);
    MvKeyring *kr = NULL;
    MvError err;
    MvStatus st;
    char *keyring = NULL;
    struct stat sb;
    int rc, existing;

    if (argc > 0)
        return cli_usage_error(CMD, "init takes no arguments");
    if (mv_vault_exists(home)) {
        cli_error(CMD, "%s already holds a vault", home);
        return MV_EXIT_USAGE;
    }
    if (asprintf(&keyring, "%s/keyring", home) < 0)
        return MV_EXIT_PARTIAL;
    existing = stat(keyring, &sb) == 0;
    free(keyring);
    if (existing) {
        if ((rc = unlock(o, &kr)) != 0)
            return rc;
    } else {
        if ((rc = read_secret(o, 1)) != 0)
            return rc;
        if (cli_mkdirs(home) != 0) {
            cli_error(CMD, "%s: %s", home, strerror(errno));
            return MV_EXIT_USAGE;
        }
        chmod(home, 0700);
        mv_error_clear(&err);
        st = mv_keyring_create(home, &o->how, o->kdf_set ? &o->kdf : NULL, &kr, &err);
        if (st != MV_OK) {
            cli_error(CMD, "cannot create the keyring: %s", err.message);
            return exit_for(st) == MV_EXIT_SECURITY ? MV_EXIT_SECURITY : MV_EXIT_USAGE;
        }
    }
    mv_error_clear(&err);
    st = mv_vault_create(home, kr, &err);
    if (st != MV_OK) {
        cli_error(CMD, "%s", err.message);
        rc = exit_for(st) == MV_EXIT_SECURITY ? MV_EXIT_SECURITY : MV_EXIT_PARTIAL;
        goto out;
    }
    if (audit(o, "vault.init", NULL, 0, "success", existing ? "existing keyring" : "new keyring") != 0) {
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    printf("vault created in %s/vault (keyring %s, KEK version %u)\n", home, existing ? "already there" : "created",
           mv_keyring_current_version(kr));
    rc = MV_EXIT_OK;
out:
    mv_keyring_close(kr);
    return rc;
}

/* ---- Dispatch ----------------------------------------------------------------------------- */

static int parse_u32(const char *text, const char *what, uint32_t min, uint32_t max, uint32_t *out)
{
    unsigned long long v;
    if (cli_parse_size(text, &v) != 0 || v < min || v > max) {
        cli_usage_error(CMD, "%s needs a number from %u to %u, not '%s'", what, min, max, text);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static const char *const subcommands[] = {"init", "put", "ls", "get", "rm", "forget-patient", "rotate",
                                          "fsck", "backup", "restore", NULL};

int cmd_vault(int argc, char **argv)
{
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {"passphrase-file", required_argument, NULL, OPT_PASSFILE},
        {"key-file", required_argument, NULL, OPT_KEYFILE},
        {"pkcs11-module", required_argument, NULL, OPT_P11_MODULE},
        {"pkcs11-token", required_argument, NULL, OPT_P11_TOKEN},
        {"pin-file", required_argument, NULL, OPT_PINFILE},
        {"as", required_argument, NULL, OPT_AS},
        {"purpose", required_argument, NULL, OPT_PURPOSE},
        {"argon2-t", required_argument, NULL, OPT_T},
        {"argon2-m", required_argument, NULL, OPT_M},
        {"argon2-p", required_argument, NULL, OPT_P},
        {"patient", required_argument, NULL, OPT_PATIENT},
        {"name", required_argument, NULL, OPT_NAME},
        {"study", required_argument, NULL, OPT_STUDY},
        {"json", no_argument, NULL, OPT_JSON},
        {"all", no_argument, NULL, OPT_ALL},
        {"retire", no_argument, NULL, OPT_RETIRE},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"verify", no_argument, NULL, OPT_VERIFY},
        {"new-passphrase-file", required_argument, NULL, OPT_NEW_PASSFILE},
        {"new-key-file", required_argument, NULL, OPT_NEW_KEYFILE},
        {"output", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Opts o;
    int c, rc = MV_EXIT_OK, known = 0;

    memset(&o, 0, sizeof o);
    o.kdf.t_cost = 3;
    o.kdf.m_cost_kib = 65536;
    o.kdf.parallelism = 1;
    if (argc < 2)
        return cli_usage_error(CMD, "needs a subcommand: init, put, ls, get, rm, forget-patient, rotate, fsck, "
                                    "backup or restore");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help_vault(stdout);
        return MV_EXIT_OK;
    }
    o.sub = argv[1];
    for (size_t i = 0; subcommands[i] != NULL; i++)
        known |= strcmp(o.sub, subcommands[i]) == 0;
    if (!known)
        return cli_usage_error(CMD, "unknown subcommand '%s'", o.sub);
    argc--;
    argv++;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:qh", options, NULL)) != -1) {
        switch (c) {
        case OPT_HOME: o.home = optarg; break;
        case OPT_PASSFILE: o.passphrase_file = optarg; break;
        case OPT_KEYFILE: o.key_file = optarg; break;
        case OPT_P11_MODULE: o.p11_module = optarg; break;
        case OPT_P11_TOKEN: o.p11_token = optarg; break;
        case OPT_PINFILE: o.pin_file = optarg; break;
        case OPT_AS: o.actor = optarg; break;
        case OPT_PURPOSE: o.purpose = optarg; break;
        case OPT_T:
            if (parse_u32(optarg, "--argon2-t", 1, 1000, &o.kdf.t_cost) != 0)
                return MV_EXIT_USAGE;
            o.kdf_set = 1;
            break;
        case OPT_M:
            if (parse_u32(optarg, "--argon2-m", 8, 4u << 20, &o.kdf.m_cost_kib) != 0)
                return MV_EXIT_USAGE;
            o.kdf_set = 1;
            break;
        case OPT_P:
            if (parse_u32(optarg, "--argon2-p", 1, 64, &o.kdf.parallelism) != 0)
                return MV_EXIT_USAGE;
            o.kdf_set = 1;
            break;
        case OPT_PATIENT: o.patient = optarg; break;
        case OPT_NAME: o.name = optarg; break;
        case OPT_STUDY: o.study = optarg; break;
        case OPT_JSON: o.json = 1; break;
        case OPT_ALL: o.all = 1; break;
        case OPT_RETIRE: o.retire = 1; break;
        case OPT_VERIFY: o.verify = 1; break;
        case OPT_NEW_PASSFILE: o.new_passphrase_file = optarg; break;
        case OPT_NEW_KEYFILE: o.new_key_file = optarg; break;
        case OPT_BATCH:
            if (parse_u32(optarg, "--batch", 1, 100000, &o.batch) != 0)
                return MV_EXIT_USAGE;
            break;
        case 'o': o.output = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'h': help_vault(stdout); return MV_EXIT_OK;
        case ':': return cli_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]);
        }
    }
    /* Options that only one subcommand understands are refused elsewhere, not ignored. */
    if (o.kdf_set && strcmp(o.sub, "init") != 0)
        return cli_usage_error(CMD, "--argon2-* options belong to 'vault init'");
    if ((o.json || o.name != NULL) && strcmp(o.sub, "ls") != 0)
        return cli_usage_error(CMD, "--json and --name belong to 'vault ls'");
    if ((o.patient != NULL || o.study != NULL) && strcmp(o.sub, "ls") != 0 && strcmp(o.sub, "get") != 0)
        return cli_usage_error(CMD, "--patient and --study belong to 'vault ls' and 'vault get'");
    if ((o.all || o.output != NULL) && strcmp(o.sub, "get") != 0)
        return cli_usage_error(CMD, "-o and --all belong to 'vault get'");
    if (o.batch != 0 && strcmp(o.sub, "put") != 0)
        return cli_usage_error(CMD, "--batch belongs to 'vault put'");
    if (o.batch == 0)
        o.batch = BATCH_OBJECTS;
    if ((o.new_passphrase_file != NULL || o.new_key_file != NULL) && strcmp(o.sub, "rotate") != 0)
        return cli_usage_error(CMD, "--new-passphrase-file and --new-key-file belong to 'vault rotate'");
    if (o.new_passphrase_file != NULL && o.new_key_file != NULL)
        return cli_usage_error(CMD, "give --new-passphrase-file or --new-key-file, not both");
    if (o.verify && strcmp(o.sub, "restore") != 0)
        return cli_usage_error(CMD, "--verify belongs to 'vault restore'");
    if (o.retire && strcmp(o.sub, "rotate") != 0)
        return cli_usage_error(CMD, "--retire belongs to 'vault rotate'");
    if (o.patient != NULL && o.name != NULL)
        return cli_usage_error(CMD, "give --patient or --name, not both");
    o.progress = !o.quiet && isatty(2);
    argc -= optind;
    argv += optind;
    if (strcmp(o.sub, "init") == 0)
        rc = run_init(&o, argc);
    else if (strcmp(o.sub, "put") == 0)
        rc = run_put(&o, argc, argv);
    else if (strcmp(o.sub, "ls") == 0)
        rc = run_ls(&o, argc, argv);
    else if (strcmp(o.sub, "get") == 0)
        rc = run_get(&o, argc, argv);
    else if (strcmp(o.sub, "rm") == 0)
        rc = run_rm(&o, argc, argv);
    else if (strcmp(o.sub, "forget-patient") == 0)
        rc = run_forget(&o, argc, argv);
    else if (strcmp(o.sub, "rotate") == 0)
        rc = run_rotate(&o, argc);
    else if (strcmp(o.sub, "fsck") == 0)
        rc = run_fsck(&o, argc);
    else if (strcmp(o.sub, "backup") == 0)
        rc = run_backup(&o, argc, argv);
    else
        rc = run_restore(&o, argc, argv);
    if (o.secret != NULL)
        mv_secret_free(o.secret, o.secret_len);
    return rc;
}
