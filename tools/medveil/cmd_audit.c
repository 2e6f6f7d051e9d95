/* `medveil audit`: verify the tamper-evident log, print and sign checkpoints, print inclusion
 * and consistency proofs, check them offline with only the public key (as a witness would),
 * show events, and print the public key. `export` and `alerts` live in their own files. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_audit_ext.h"
#include "medveil/audit.h"

#define H MV_AUDIT_HASH_BYTES

void help_audit(FILE *out)
{
    fprintf(out,
            "usage: %s audit SUBCOMMAND [OPTIONS]\n"
            "\n"
            "Every command that reads or changes protected data appends one event to the audit\n"
            "log of the home folder (HOME/audit/events.jsonl) before it reports success. Each\n"
            "event is a leaf of an RFC 6962 Merkle tree; after each command the tree head is\n"
            "signed with the log's Ed25519 key as a C2SP checkpoint. Anyone with the public key\n"
            "can check that an event is in the log and that the log only ever grew.\n"
            "\n"
            "Subcommands:\n"
            "  verify [--checkpoint FILE] [--key FILE] [--json]\n"
            "        recompute every leaf and root from the events, check every stored\n"
            "        checkpoint's signature and root, and, with --checkpoint, that the log still\n"
            "        extends a checkpoint saved earlier (a log cut short or rewritten is caught);\n"
            "        --key checks signatures with a public key kept outside HOME\n"
            "  checkpoint [--size N]\n"
            "        print the newest signed checkpoint (signing one first if events are not\n"
            "        covered yet), or the stored one of size N; save it outside HOME or give\n"
            "        it to a witness\n"
            "  prove inclusion INDEX [--size N] [--json]\n"
            "        the audit path of event INDEX (0-based) in the tree of size N (default:\n"
            "        the newest checkpoint's size)\n"
            "  prove consistency OLD_SIZE [NEW_SIZE] [--json]\n"
            "        the proof that the tree of OLD_SIZE is a prefix of that of NEW_SIZE\n"
            "        (default: the newest checkpoint's size)\n"
            "  check-proof --key FILE --checkpoint FILE --proof FILE [--event FILE]\n"
            "              [--old-checkpoint FILE]\n"
            "        offline check with nothing but the public key: an inclusion proof against\n"
            "        the checkpoint (--event: the event line itself, hashed here), or a\n"
            "        consistency proof between --old-checkpoint and --checkpoint\n"
            "  log [--since TIME] [--actor A] [--action X] [--json]\n"
            "        show events; TIME is an RFC 3339 prefix (2026-11-27 or\n"
            "        2026-11-27T08:00); X ending in '.' or '*' matches a prefix (vault.)\n"
            "  pubkey [--pem]\n"
            "        print the verifier key line NAME+KEYID+BASE64 (C2SP signed-note) that\n"
            "        witnesses and check-proof use, or the PEM public key for openssl\n"
            "  export ...   events as DICOM audit messages (PS3.15 A.5), syslog over TLS\n"
            "  alerts ...   rules and per-actor baselines that flag unusual access\n"
            "\n"
            "Options of every subcommand:\n"
            "      --home DIR   the home folder (default: $MEDVEIL_HOME, else ./.medveil)\n"
            "  -h, --help       show this help\n"
            "\n"
            "Exit status: 0 verified (or printed); 2 usage error, or no audit log in HOME;\n"
            "3 a verification failed: the message names the first bad position.\n"
            "\n"
            "Examples:\n"
            "  %s audit checkpoint > ~/witness/ckpt-$(date +%%F).txt\n"
            "  %s audit verify --checkpoint ~/witness/ckpt-2026-11-01.txt\n"
            "  %s audit prove inclusion 41 > p.txt\n"
            "  %s audit check-proof --key log.vkey --checkpoint ckpt.txt --proof p.txt\n"
            "  %s audit log --since 2026-11-27 --action vault. --json\n"
            "See docs/audit.md for the format and what the log proves.\n",
            cli_program, cli_program, cli_program, cli_program, cli_program, cli_program);
}

/* Reads a whole small file (at most 1 MiB) into a NUL-terminated buffer. */
static int read_text(const char *cmd, const char *path, char **out, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t len;

    *out = NULL;
    if (f == NULL) {
        cli_error(cmd, "%s: %s", path, strerror(errno));
        return -1;
    }
    buf = malloc((1u << 20) + 1);
    if (buf == NULL) {
        fclose(f);
        cli_error(cmd, "out of memory");
        return -1;
    }
    len = fread(buf, 1, 1u << 20, f);
    if (ferror(f) || !feof(f)) {
        cli_error(cmd, "%s: unreadable, or larger than 1 MiB", path);
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    buf[len] = '\0';
    *out = buf;
    if (len_out != NULL)
        *len_out = len;
    return 0;
}

static void b64(const uint8_t *in, size_t len, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < len ? a[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? a[v & 63] : '=';
    }
    out[o] = '\0';
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Common option parsing: --home, --help and the subcommand's own options. */
enum { OPT_HOME = 1000, OPT_CHECKPOINT, OPT_KEY, OPT_JSON, OPT_SIZE, OPT_PROOF, OPT_EVENT, OPT_OLD,
       OPT_SINCE, OPT_ACTOR, OPT_ACTION, OPT_PEM };

typedef struct Opts {
    const char *home, *checkpoint, *key, *proof, *event, *old_checkpoint, *since, *actor, *action, *size;
    int json, pem;
    int n_args;
    char **args;
} Opts;

static int parse_opts(const char *cmd, int argc, char **argv, Opts *o, void (*help)(FILE *))
{
    static const struct option longopts[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
        {"key", required_argument, NULL, OPT_KEY},
        {"json", no_argument, NULL, OPT_JSON},
        {"size", required_argument, NULL, OPT_SIZE},
        {"proof", required_argument, NULL, OPT_PROOF},
        {"event", required_argument, NULL, OPT_EVENT},
        {"old-checkpoint", required_argument, NULL, OPT_OLD},
        {"since", required_argument, NULL, OPT_SINCE},
        {"actor", required_argument, NULL, OPT_ACTOR},
        {"action", required_argument, NULL, OPT_ACTION},
        {"pem", no_argument, NULL, OPT_PEM},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_HOME: o->home = optarg; break;
        case OPT_CHECKPOINT: o->checkpoint = optarg; break;
        case OPT_KEY: o->key = optarg; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_SIZE: o->size = optarg; break;
        case OPT_PROOF: o->proof = optarg; break;
        case OPT_EVENT: o->event = optarg; break;
        case OPT_OLD: o->old_checkpoint = optarg; break;
        case OPT_SINCE: o->since = optarg; break;
        case OPT_ACTOR: o->actor = optarg; break;
        case OPT_ACTION: o->action = optarg; break;
        case OPT_PEM: o->pem = 1; break;
        case 'h': help(stdout); return 1;
        case ':': return -cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return -cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    o->n_args = argc - optind;
    o->args = argv + optind;
    return 0;
}

/* Subcommand-specific allowed options, so that a misplaced one is a usage error. */
static int only(const char *cmd, const Opts *o, const char *allowed)
{
    struct {
        const char *name;
        int set;
    } all[] = {
        {"checkpoint", o->checkpoint != NULL}, {"key", o->key != NULL},       {"json", o->json},
        {"size", o->size != NULL},             {"proof", o->proof != NULL},   {"event", o->event != NULL},
        {"old-checkpoint", o->old_checkpoint != NULL}, {"since", o->since != NULL},
        {"actor", o->actor != NULL},           {"action", o->action != NULL}, {"pem", o->pem},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        char needle[40];
        snprintf(needle, sizeof needle, " %s ", all[i].name);
        if (all[i].set && strstr(allowed, needle) == NULL)
            return cli_usage_error(cmd, "option --%s does not apply here", all[i].name);
    }
    return 0;
}

static int open_log(const char *cmd, const Opts *o, unsigned flags, MvAuditLog **log)
{
    MvError err;
    MvStatus st = mv_audit_open(cli_home(o->home), flags, 0, log, &err);

    if (st == MV_OK)
        return 0;
    cli_error(cmd, "%s", err.message);
    return st == MV_ERR_NOTFOUND || st == MV_ERR_ARG ? MV_EXIT_USAGE : MV_EXIT_PARTIAL;
}

/* ---------------------------------------------------------------------------------------------
 * verify
 * ------------------------------------------------------------------------------------------- */

static void help_verify_sub(FILE *out)
{
    fprintf(out,
            "usage: %s audit verify [--checkpoint FILE] [--key FILE] [--json] [--home DIR]\n"
            "\n"
            "Reads HOME/audit/events.jsonl from the start and trusts nothing else: every line\n"
            "must be canonical JSON with seq equal to its position; its leaf hash must match\n"
            "leaves.bin; every checkpoint in checkpoints.log must carry a valid signature and the\n"
            "root of the events up to its size (so each is consistent with the next); the log\n"
            "must be at least as long as the newest one.\n"
            "  --checkpoint FILE  a checkpoint saved earlier outside HOME: the log must extend it\n"
            "  --key FILE         check signatures with this public key (verifier key line or\n"
            "                     PEM) instead of HOME/audit/signing.vkey\n"
            "  --json             one JSON object on stdout\n"
            "Exit status: 0 verified; 2 usage error or no log; 3 verification failed (the first\n"
            "bad position is named).\n",
            cli_program);
}

static int audit_verify(int argc, char **argv)
{
    const char *cmd = "audit verify";
    Opts o;
    MvAuditLog *log = NULL;
    MvAuditVerifyReport rep;
    MvError err;
    char *anchor = NULL, *key = NULL, root[48];
    size_t anchor_len = 0;
    MvStatus st;
    int rc = parse_opts(cmd, argc, argv, &o, help_verify_sub);

    if (rc != 0)
        return rc < 0 ? -rc : MV_EXIT_OK;
    if ((rc = only(cmd, &o, " checkpoint key json ")) != 0)
        return rc;
    if (o.n_args != 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", o.args[0]);
    if (o.checkpoint != NULL && read_text(cmd, o.checkpoint, &anchor, &anchor_len) != 0)
        return MV_EXIT_USAGE;
    if (o.key != NULL && read_text(cmd, o.key, &key, NULL) != 0) {
        free(anchor);
        return MV_EXIT_USAGE;
    }
    if ((rc = open_log(cmd, &o, MV_AUDIT_READONLY, &log)) != 0) {
        /* A log that is gone, while a checkpoint says it existed, is a failure, not a usage error. */
        if (anchor != NULL && rc == MV_EXIT_USAGE) {
            cli_error(cmd, "VERIFICATION FAILED at position 0: the log is gone, but the given checkpoint "
                           "says it existed");
            rc = MV_EXIT_SECURITY;
        }
        goto out;
    }
    mv_error_clear(&err);
    st = mv_audit_verify(log, key, anchor, anchor_len, &rep, &err);
    if (st != MV_OK && st != MV_ERR_INTEGRITY) {
        cli_error(cmd, "%s", err.message);
        rc = st == MV_ERR_PARSE ? MV_EXIT_USAGE : MV_EXIT_PARTIAL;
        goto out;
    }
    b64(rep.root, H, root);
    if (o.json) {
        json_t *j = json_object();
        char *s;
        json_object_set_new(j, "ok", json_boolean(st == MV_OK));
        json_object_set_new(j, "size", json_integer((json_int_t)rep.size));
        json_object_set_new(j, "checkpoints", json_integer((json_int_t)rep.n_checkpoints));
        if (st == MV_OK) {
            json_object_set_new(j, "root", json_string(root));
            json_object_set_new(j, "unsigned", json_integer((json_int_t)rep.n_unsigned));
        } else {
            json_object_set_new(j, "bad_position", json_integer((json_int_t)rep.bad_position));
            json_object_set_new(j, "bad_position_last", rep.bad_position_last == UINT64_MAX
                                                            ? json_null()
                                                            : json_integer((json_int_t)rep.bad_position_last));
            json_object_set_new(j, "reason", json_string(rep.reason));
        }
        s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", s);
        free(s);
        json_decref(j);
    }
    if (st == MV_OK) {
        if (!o.json)
            printf("audit log verified: %" PRIu64 " events, %" PRIu64 " signed checkpoints%s, root %s\n", rep.size,
                   rep.n_checkpoints, anchor != NULL ? ", extends the given checkpoint" : "", root);
        if (rep.n_unsigned > 0)
            fprintf(stderr,
                    "%s %s: warning: the last %" PRIu64 " events are not covered by a signed checkpoint yet "
                    "(run '%s audit checkpoint')\n",
                    cli_program, cmd, rep.n_unsigned, cli_program);
        rc = MV_EXIT_OK;
    } else {
        if (rep.bad_position_last != rep.bad_position && rep.bad_position_last != UINT64_MAX)
            cli_error(cmd, "VERIFICATION FAILED, first bad position between %" PRIu64 " and %" PRIu64 ": %s",
                      rep.bad_position, rep.bad_position_last, rep.reason);
        else if (rep.bad_position != UINT64_MAX)
            cli_error(cmd, "VERIFICATION FAILED at position %" PRIu64 ": %s", rep.bad_position, rep.reason);
        else
            cli_error(cmd, "VERIFICATION FAILED: %s", rep.reason);
        rc = MV_EXIT_SECURITY;
    }
out:
    mv_audit_close(log);
    free(anchor);
    free(key);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * checkpoint, pubkey
 * ------------------------------------------------------------------------------------------- */

static void help_checkpoint_sub(FILE *out)
{
    fprintf(out,
            "usage: %s audit checkpoint [--size N] [--home DIR]\n"
            "\n"
            "Prints the newest signed checkpoint (C2SP tlog-checkpoint: origin, size, base64\n"
            "root, blank line, Ed25519 signature line). When events were appended since, a new\n"
            "checkpoint is signed and stored first. Keep copies outside HOME (or send them to\n"
            "witnesses): 'audit verify --checkpoint FILE' then catches a log cut short or\n"
            "rewritten after it, even by someone who holds the signing key.\n"
            "  --size N   print the stored checkpoint of tree size N instead (signs nothing):\n"
            "             the old end of a consistency proof\n",
            cli_program);
}

static int audit_checkpoint(int argc, char **argv)
{
    const char *cmd = "audit checkpoint";
    Opts o;
    MvAuditLog *log = NULL;
    MvError err;
    char *note = NULL;
    int rc = parse_opts(cmd, argc, argv, &o, help_checkpoint_sub);

    if (rc != 0)
        return rc < 0 ? -rc : MV_EXIT_OK;
    if ((rc = only(cmd, &o, " size ")) != 0)
        return rc;
    if (o.n_args != 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", o.args[0]);
    if (o.size != NULL) {
        uint64_t size;
        if (parse_u64(o.size, &size) != 0)
            return cli_usage_error(cmd, "--size wants a number");
        if ((rc = open_log(cmd, &o, MV_AUDIT_READONLY, &log)) != 0)
            return rc;
        if (mv_audit_checkpoint_find(log, size, &note, &err) != MV_OK) {
            cli_error(cmd, "%s", err.message);
            rc = MV_EXIT_PARTIAL;
        } else {
            fputs(note, stdout);
        }
        free(note);
        mv_audit_close(log);
        return rc;
    }
    if ((rc = open_log(cmd, &o, 0, &log)) != 0)
        return rc;
    if (mv_audit_checkpoint_sign(log, &note, &err) != MV_OK) {
        cli_error(cmd, "%s", err.message);
        rc = err.code == MV_ERR_DENIED ? MV_EXIT_SECURITY : MV_EXIT_PARTIAL;
    } else {
        fputs(note, stdout);
    }
    free(note);
    mv_audit_close(log);
    return rc;
}

static void help_pubkey_sub(FILE *out)
{
    fprintf(out,
            "usage: %s audit pubkey [--pem] [--home DIR]\n"
            "\n"
            "Prints the log's public key: by default the C2SP signed-note verifier key line\n"
            "NAME+KEYID+BASE64(0x01 || Ed25519 key) that check-proof and witnesses use; with\n"
            "--pem, the PEM SubjectPublicKeyInfo (for openssl pkeyutl -verify -rawin).\n",
            cli_program);
}

static int audit_pubkey(int argc, char **argv)
{
    const char *cmd = "audit pubkey";
    Opts o;
    MvAuditLog *log = NULL;
    MvError err;
    char *text = NULL;
    int rc = parse_opts(cmd, argc, argv, &o, help_pubkey_sub);

    if (rc != 0)
        return rc < 0 ? -rc : MV_EXIT_OK;
    if ((rc = only(cmd, &o, " pem ")) != 0)
        return rc;
    if (o.n_args != 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", o.args[0]);
    if ((rc = open_log(cmd, &o, MV_AUDIT_READONLY, &log)) != 0)
        return rc;
    if (mv_audit_public_key(log, o.pem, &text, &err) != MV_OK) {
        cli_error(cmd, "%s", err.message);
        rc = MV_EXIT_PARTIAL;
    } else {
        fputs(text, stdout);
    }
    free(text);
    mv_audit_close(log);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * prove
 * ------------------------------------------------------------------------------------------- */

static void help_prove_sub(FILE *out)
{
    fprintf(out,
            "usage: %s audit prove inclusion INDEX [--size N] [--json] [--home DIR]\n"
            "       %s audit prove consistency OLD_SIZE [NEW_SIZE] [--json] [--home DIR]\n"
            "\n"
            "Prints an RFC 6962 proof that 'audit check-proof' reads back. The tree size\n"
            "defaults to the newest signed checkpoint's, so the proof checks against the\n"
            "output of 'audit checkpoint'. Text form:\n"
            "  medveil-audit-proof inclusion      medveil-audit-proof consistency\n"
            "  index 41                           old-size 10\n"
            "  size 100                           new-size 100\n"
            "  leaf-hash BASE64                   hash BASE64 (one line per hash)\n"
            "  hash BASE64 (one line per hash)\n"
            "--json gives the fields of the RFC 6962 test vectors: type, leafIdx, treeSize,\n"
            "leafHash, proof (inclusion) or type, size1, size2, proof (consistency).\n",
            cli_program, cli_program);
}

/* The size of the newest valid checkpoint, or the log's size when there is none. */
static uint64_t default_size(MvAuditLog *log)
{
    char *note = NULL, *vkey = NULL;
    MvAuditCheckpoint cp;
    MvError err;
    uint64_t size = mv_audit_size(log);

    if (mv_audit_checkpoint_latest(log, &note, &err) == MV_OK && mv_audit_public_key(log, 0, &vkey, &err) == MV_OK &&
        mv_audit_checkpoint_verify(note, strlen(note), vkey, &cp, &err) == MV_OK && cp.size <= size)
        size = cp.size;
    free(note);
    free(vkey);
    return size;
}

static void print_proof(int json, int inclusion, uint64_t a, uint64_t b, const uint8_t *leaf, const uint8_t *proof,
                        size_t n)
{
    char h64[48];

    if (json) {
        json_t *j = json_object(), *arr = json_array();
        char *s;
        json_object_set_new(j, "type", json_string(inclusion ? "inclusion" : "consistency"));
        json_object_set_new(j, inclusion ? "leafIdx" : "size1", json_integer((json_int_t)a));
        json_object_set_new(j, inclusion ? "treeSize" : "size2", json_integer((json_int_t)b));
        if (inclusion) {
            b64(leaf, H, h64);
            json_object_set_new(j, "leafHash", json_string(h64));
        }
        for (size_t i = 0; i < n; i++) {
            b64(proof + i * H, H, h64);
            json_array_append_new(arr, json_string(h64));
        }
        json_object_set_new(j, "proof", arr);
        s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", s);
        free(s);
        json_decref(j);
        return;
    }
    printf("medveil-audit-proof %s\n", inclusion ? "inclusion" : "consistency");
    printf("%s %" PRIu64 "\n%s %" PRIu64 "\n", inclusion ? "index" : "old-size", a, inclusion ? "size" : "new-size",
           b);
    if (inclusion) {
        b64(leaf, H, h64);
        printf("leaf-hash %s\n", h64);
    }
    for (size_t i = 0; i < n; i++) {
        b64(proof + i * H, H, h64);
        printf("hash %s\n", h64);
    }
}

static int audit_prove(int argc, char **argv)
{
    const char *cmd = "audit prove";
    Opts o;
    MvAuditLog *log = NULL;
    MvError err;
    uint8_t *proof = NULL, leaf[H];
    size_t n = 0;
    uint64_t a, b;
    int inclusion, rc = parse_opts(cmd, argc, argv, &o, help_prove_sub);

    if (rc != 0)
        return rc < 0 ? -rc : MV_EXIT_OK;
    if ((rc = only(cmd, &o, " size json ")) != 0)
        return rc;
    if (o.n_args < 2)
        return cli_usage_error(cmd, "needs 'inclusion INDEX' or 'consistency OLD_SIZE [NEW_SIZE]'");
    inclusion = strcmp(o.args[0], "inclusion") == 0;
    if (!inclusion && strcmp(o.args[0], "consistency") != 0)
        return cli_usage_error(cmd, "'%s' is neither inclusion nor consistency", o.args[0]);
    if (parse_u64(o.args[1], &a) != 0)
        return cli_usage_error(cmd, "'%s' is not a number", o.args[1]);
    if (inclusion ? o.n_args != 2 : o.n_args > 3)
        return cli_usage_error(cmd, "too many arguments");
    if (!inclusion && o.size != NULL)
        return cli_usage_error(cmd, "--size applies to inclusion; give NEW_SIZE instead");
    if ((rc = open_log(cmd, &o, MV_AUDIT_READONLY, &log)) != 0)
        return rc;
    b = default_size(log);
    if ((inclusion && o.size != NULL && parse_u64(o.size, &b) != 0) ||
        (!inclusion && o.n_args == 3 && parse_u64(o.args[2], &b) != 0)) {
        mv_audit_close(log);
        return cli_usage_error(cmd, "the size is not a number");
    }
    if (inclusion) {
        if (mv_audit_prove_inclusion(log, a, b, &proof, &n, &err) != MV_OK ||
            mv_audit_leaf_hash(log, a, leaf, &err) != MV_OK)
            rc = MV_EXIT_USAGE;
    } else if (mv_audit_prove_consistency(log, a, b, &proof, &n, &err) != MV_OK) {
        rc = MV_EXIT_USAGE;
    }
    if (rc != 0)
        cli_error(cmd, "%s", err.message);
    else
        print_proof(o.json, inclusion, a, b, leaf, proof, n);
    free(proof);
    mv_audit_close(log);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * check-proof
 * ------------------------------------------------------------------------------------------- */

static void help_check_sub(FILE *out)
{
    fprintf(out,
            "usage: %s audit check-proof --key FILE --checkpoint FILE --proof FILE [--event FILE]\n"
            "       %s audit check-proof --key FILE --old-checkpoint FILE --checkpoint FILE\n"
            "                            --proof FILE\n"
            "\n"
            "Checks a proof offline, with no access to the log: what an auditor or witness does.\n"
            "  --key FILE             the log's public key ('audit pubkey' line, or --pem output)\n"
            "  --checkpoint FILE      a signed checkpoint ('audit checkpoint'); its signature is\n"
            "                         checked first, and its size must be the proof's tree size\n"
            "  --proof FILE           a proof from 'audit prove' (text or --json)\n"
            "  --event FILE           inclusion: the event line itself (one trailing newline is\n"
            "                         ignored); its leaf hash must be the proof's\n"
            "  --old-checkpoint FILE  consistency: the earlier checkpoint\n"
            "Exit status: 0 the proof holds; 2 usage error or unreadable file; 3 a signature,\n"
            "the proof or the event does not check.\n",
            cli_program, cli_program);
}

typedef struct Proof {
    int inclusion;
    uint64_t a, b;
    int have_leaf;
    uint8_t leaf[H];
    uint8_t *hashes;
    size_t n;
} Proof;

/* Reads a proof in the text or JSON form of print_proof. Returns 0, or -1 after a message. */
static int parse_proof(const char *cmd, const char *text, size_t len, Proof *p)
{
    const char *items[130];
    size_t n_items = 0;
    json_t *j = NULL;
    MvError err;
    int rc = -1;
    char *copy = NULL;

    memset(p, 0, sizeof *p);
    while (len > 0 && (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t')) {
        text++;
        len--;
    }
    if (len > 0 && *text == '{') {
        json_error_t jerr;
        json_t *arr, *item, *t, *leaf;
        size_t i;
        j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (j == NULL) {
            cli_error(cmd, "proof: not JSON (line %d: %s)", jerr.line, jerr.text);
            goto out;
        }
        t = json_object_get(j, "type");
        p->inclusion = json_object_get(j, "leafIdx") != NULL;
        if (t != NULL && json_is_string(t))
            p->inclusion = strcmp(json_string_value(t), "inclusion") == 0;
        {
            json_t *ja = json_object_get(j, p->inclusion ? "leafIdx" : "size1");
            json_t *jb = json_object_get(j, p->inclusion ? "treeSize" : "size2");
            if (!json_is_integer(ja) || !json_is_integer(jb) || json_integer_value(ja) < 0 ||
                json_integer_value(jb) < 0) {
                cli_error(cmd, "proof: the sizes are missing or not numbers");
                goto out;
            }
            p->a = (uint64_t)json_integer_value(ja);
            p->b = (uint64_t)json_integer_value(jb);
        }
        leaf = json_object_get(j, "leafHash");
        if (p->inclusion && json_is_string(leaf)) {
            const char *lh = json_string_value(leaf);
            uint8_t *tmp = NULL;
            if (mv_merkle_proof_decode(&lh, 1, &tmp, &err) != MV_OK) {
                cli_error(cmd, "proof: leafHash is not the base64 of 32 bytes");
                goto out;
            }
            memcpy(p->leaf, tmp, H);
            free(tmp);
            p->have_leaf = 1;
        }
        arr = json_object_get(j, "proof");
        if (arr != NULL && !json_is_array(arr) && !json_is_null(arr)) {
            cli_error(cmd, "proof: \"proof\" is not an array");
            goto out;
        }
        json_array_foreach(arr, i, item) {
            if (n_items == 130 || !json_is_string(item)) {
                cli_error(cmd, "proof: too many hashes, or one is not a string");
                goto out;
            }
            items[n_items++] = json_string_value(item);
        }
    } else {
        char *line, *next;
        int lineno = 0;
        copy = strndup(text, len);
        if (copy == NULL)
            goto out;
        for (line = copy; *line != '\0'; line = next) {
            char *val, *nl = strchr(line, '\n');
            size_t l;
            next = nl != NULL ? nl + 1 : line + strlen(line);
            if (nl != NULL)
                *nl = '\0';
            l = strlen(line);
            if (l > 0 && line[l - 1] == '\r')
                line[--l] = '\0';
            if (l == 0)
                continue;
            val = strchr(line, ' ');
            lineno++;
            if (val == NULL) {
                cli_error(cmd, "proof line %d: expected 'NAME VALUE'", lineno);
                goto out;
            }
            *val++ = '\0';
            if (lineno == 1) {
                if (strcmp(line, "medveil-audit-proof") != 0 ||
                    (strcmp(val, "inclusion") != 0 && strcmp(val, "consistency") != 0)) {
                    cli_error(cmd, "proof: the first line must be 'medveil-audit-proof inclusion|consistency'");
                    goto out;
                }
                p->inclusion = strcmp(val, "inclusion") == 0;
            } else if (strcmp(line, p->inclusion ? "index" : "old-size") == 0) {
                if (parse_u64(val, &p->a) != 0)
                    goto bad_number;
            } else if (strcmp(line, p->inclusion ? "size" : "new-size") == 0) {
                if (parse_u64(val, &p->b) != 0)
                    goto bad_number;
            } else if (p->inclusion && strcmp(line, "leaf-hash") == 0) {
                uint8_t *tmp = NULL;
                const char *lh = val;
                if (mv_merkle_proof_decode(&lh, 1, &tmp, &err) != MV_OK) {
                    cli_error(cmd, "proof line %d: the leaf hash is not the base64 of 32 bytes", lineno);
                    goto out;
                }
                memcpy(p->leaf, tmp, H);
                free(tmp);
                p->have_leaf = 1;
            } else if (strcmp(line, "hash") == 0) {
                if (n_items == 130) {
                    cli_error(cmd, "proof: too many hashes");
                    goto out;
                }
                items[n_items++] = val;
            } else {
                cli_error(cmd, "proof line %d: unknown field '%s'", lineno, line);
                goto out;
            }
            continue;
        bad_number:
            cli_error(cmd, "proof line %d: not a number", lineno);
            goto out;
        }
        if (lineno == 0) {
            cli_error(cmd, "proof: empty");
            goto out;
        }
    }
    if (mv_merkle_proof_decode(items, n_items, &p->hashes, &err) != MV_OK) {
        cli_error(cmd, "proof: %s", err.message);
        goto out;
    }
    p->n = n_items;
    rc = 0;
out:
    json_decref(j);
    free(copy);
    return rc;
}

static int load_checkpoint(const char *cmd, const char *path, const char *key, MvAuditCheckpoint *cp)
{
    char *text = NULL;
    size_t len;
    MvError err;
    MvStatus st;

    if (read_text(cmd, path, &text, &len) != 0)
        return MV_EXIT_USAGE;
    st = mv_audit_checkpoint_verify(text, len, key, cp, &err);
    free(text);
    if (st == MV_OK)
        return 0;
    cli_error(cmd, "%s: %s", path, err.message);
    return MV_EXIT_SECURITY; /* a malformed or badly signed checkpoint is hostile input */
}

static int audit_check_proof(int argc, char **argv)
{
    const char *cmd = "audit check-proof";
    Opts o;
    char *key = NULL, *proof_text = NULL, *event = NULL;
    size_t proof_len, event_len;
    MvAuditCheckpoint cp, old;
    Proof p = {0};
    MvError err;
    char root[48];
    int rc = parse_opts(cmd, argc, argv, &o, help_check_sub);

    if (rc != 0)
        return rc < 0 ? -rc : MV_EXIT_OK;
    if ((rc = only(cmd, &o, " key checkpoint proof event old-checkpoint ")) != 0)
        return rc;
    if (o.n_args != 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", o.args[0]);
    if (o.key == NULL || o.checkpoint == NULL || o.proof == NULL)
        return cli_usage_error(cmd, "needs --key, --checkpoint and --proof");
    rc = MV_EXIT_USAGE;
    if (read_text(cmd, o.key, &key, NULL) != 0 || read_text(cmd, o.proof, &proof_text, &proof_len) != 0 ||
        (o.event != NULL && read_text(cmd, o.event, &event, &event_len) != 0))
        goto out;
    rc = load_checkpoint(cmd, o.checkpoint, key, &cp);
    if (rc != 0)
        goto out;
    rc = MV_EXIT_SECURITY;
    if (parse_proof(cmd, proof_text, proof_len, &p) != 0)
        goto out;
    b64(cp.root, H, root);
    if (p.inclusion) {
        if (o.old_checkpoint != NULL) {
            rc = cli_usage_error(cmd, "--old-checkpoint goes with a consistency proof");
            goto out;
        }
        if (p.b != cp.size) {
            cli_error(cmd, "the proof is for a tree of size %" PRIu64 ", the checkpoint has size %" PRIu64, p.b,
                      cp.size);
            goto out;
        }
        if (event != NULL) {
            uint8_t leaf[H];
            if (event_len > 0 && event[event_len - 1] == '\n')
                event_len--;
            mv_merkle_leaf_hash(event, event_len, leaf);
            if (p.have_leaf && memcmp(leaf, p.leaf, H) != 0) {
                cli_error(cmd, "the event's leaf hash is not the proof's: this is not event %" PRIu64, p.a);
                goto out;
            }
            memcpy(p.leaf, leaf, H);
            p.have_leaf = 1;
        }
        if (!p.have_leaf) {
            rc = cli_usage_error(cmd, "the proof has no leaf hash: give the event with --event FILE");
            goto out;
        }
        if (mv_merkle_verify_inclusion(p.a, p.b, p.leaf, H, p.hashes, p.n * H, cp.root, H, &err) != MV_OK) {
            cli_error(cmd, "PROOF FAILED: %s", err.message);
            goto out;
        }
        printf("OK: event %" PRIu64 " is in the log %s of size %" PRIu64 " (root %s)%s\n", p.a, cp.origin, cp.size,
               root, event != NULL ? "; the given event is that leaf" : "");
    } else {
        if (o.old_checkpoint == NULL) {
            rc = cli_usage_error(cmd, "a consistency proof needs --old-checkpoint FILE");
            goto out;
        }
        rc = load_checkpoint(cmd, o.old_checkpoint, key, &old);
        if (rc != 0)
            goto out;
        rc = MV_EXIT_SECURITY;
        if (strcmp(old.origin, cp.origin) != 0) {
            cli_error(cmd, "the two checkpoints are of different logs (%s, %s)", old.origin, cp.origin);
            goto out;
        }
        if (p.a != old.size || p.b != cp.size) {
            cli_error(cmd, "the proof is between sizes %" PRIu64 " and %" PRIu64 ", the checkpoints have %" PRIu64
                           " and %" PRIu64, p.a, p.b, old.size, cp.size);
            goto out;
        }
        if (mv_merkle_verify_consistency(p.a, p.b, p.hashes, p.n * H, old.root, H, cp.root, H, &err) != MV_OK) {
            cli_error(cmd, "PROOF FAILED: %s", err.message);
            goto out;
        }
        printf("OK: the log %s of size %" PRIu64 " extends its checkpoint of size %" PRIu64 " (root %s)\n",
               cp.origin, cp.size, old.size, root);
    }
    rc = MV_EXIT_OK;
out:
    free(key);
    free(proof_text);
    free(event);
    free(p.hashes);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * log
 * ------------------------------------------------------------------------------------------- */

static void help_log_sub(FILE *out)
{
    fprintf(out,
            "usage: %s audit log [--since TIME] [--actor A] [--action X] [--json] [--home DIR]\n"
            "\n"
            "Shows the events, oldest first: seq, time (UTC), actor, action, outcome, objects,\n"
            "purpose. --json prints each event line exactly as stored (JSON Lines).\n"
            "  --since TIME   events at or after TIME, an RFC 3339 UTC prefix\n"
            "                 (2026-11-27, 2026-11-27T08:00, 2026-11-27T08:00:00Z)\n"
            "  --actor A      only this actor\n"
            "  --action X     only this action; X ending in '.' or '*' is a prefix (vault.)\n",
            cli_program);
}

typedef struct LogFilter {
    const Opts *o;
    char since[40];
    size_t n_shown;
    int failed;
} LogFilter;

/* Prints text from the log with control characters (a terminal escape in an actor name, say)
 * shown as '?', padded to width. */
static void print_safe(const char *s, int width)
{
    int n = 0;

    for (; *s; s++, n++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
    for (; n < width; n++)
        putchar(' ');
}

static int show_event(uint64_t seq, const char *line, size_t len, void *ctx)
{
    LogFilter *f = ctx;
    json_t *e = json_loadb(line, len, 0, NULL), *objs, *item;
    const char *time_s, *actor, *action, *outcome, *purpose;
    size_t i;

    if (e == NULL) {
        cli_error("audit log", "event %" PRIu64 " is not JSON: run 'medveil audit verify'", seq);
        f->failed = 1;
        return 1;
    }
    time_s = json_string_value(json_object_get(e, "time"));
    actor = json_string_value(json_object_get(e, "actor"));
    action = json_string_value(json_object_get(e, "action"));
    outcome = json_string_value(json_object_get(e, "outcome"));
    purpose = json_string_value(json_object_get(e, "purpose"));
    if (time_s == NULL || actor == NULL || action == NULL || outcome == NULL)
        goto skip;
    if (f->since[0] != '\0' && strcmp(time_s, f->since) < 0)
        goto skip;
    if (f->o->actor != NULL && strcmp(actor, f->o->actor) != 0)
        goto skip;
    if (f->o->action != NULL) {
        size_t al = strlen(f->o->action);
        int prefix = al > 0 && (f->o->action[al - 1] == '.' || f->o->action[al - 1] == '*');
        if (prefix ? strncmp(action, f->o->action, al - (f->o->action[al - 1] == '*')) != 0
                   : strcmp(action, f->o->action) != 0)
            goto skip;
    }
    f->n_shown++;
    if (f->o->json) {
        fwrite(line, 1, len, stdout);
        fputc('\n', stdout);
        goto skip;
    }
    printf("%-6" PRIu64 " ", seq);
    print_safe(time_s, 0);
    putchar(' ');
    print_safe(actor, 12);
    putchar(' ');
    print_safe(action, 20);
    putchar(' ');
    print_safe(outcome, 7);
    putchar(' ');
    objs = json_object_get(e, "objects");
    if (json_array_size(objs) == 0)
        putchar('-');
    json_array_foreach(objs, i, item) {
        if (i > 0)
            putchar(',');
        print_safe(json_is_string(item) ? json_string_value(item) : "?", 0);
    }
    if (purpose != NULL) {
        fputs(" purpose=", stdout);
        print_safe(purpose, 0);
    }
    putchar('\n');
skip:
    json_decref(e);
    return 0;
}

static int audit_log(int argc, char **argv)
{
    const char *cmd = "audit log";
    Opts o;
    MvAuditLog *log = NULL;
    LogFilter f;
    MvError err;
    int rc = parse_opts(cmd, argc, argv, &o, help_log_sub);

    if (rc != 0)
        return rc < 0 ? -rc : MV_EXIT_OK;
    if ((rc = only(cmd, &o, " since actor action json ")) != 0)
        return rc;
    if (o.n_args != 0)
        return cli_usage_error(cmd, "unexpected argument '%s'", o.args[0]);
    memset(&f, 0, sizeof f);
    f.o = &o;
    if (o.since != NULL) {
        size_t l = strlen(o.since);
        /* Times are stored as fixed-width RFC 3339 UTC, so a prefix compares as text. */
        if (l < 4 || l >= sizeof f.since || o.since[0] < '0' || o.since[0] > '9' ||
            strspn(o.since, "0123456789-T:.Z") != l)
            return cli_usage_error(cmd, "--since wants an RFC 3339 UTC time such as 2026-11-27T08:00");
        snprintf(f.since, sizeof f.since, "%s", o.since);
        if (f.since[l - 1] == 'Z')
            f.since[l - 1] = '\0';
    }
    if ((rc = open_log(cmd, &o, MV_AUDIT_READONLY, &log)) != 0)
        return rc;
    if (mv_audit_foreach(log, 0, show_event, &f, &err) != MV_OK) {
        cli_error(cmd, "%s", err.message);
        rc = MV_EXIT_PARTIAL;
    } else if (f.failed) {
        rc = MV_EXIT_SECURITY;
    }
    mv_audit_close(log);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch.
 * ------------------------------------------------------------------------------------------- */

int cmd_audit(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } subs[] = {
        {"verify", audit_verify},   {"checkpoint", audit_checkpoint},   {"prove", audit_prove},
        {"check-proof", audit_check_proof}, {"log", audit_log},         {"pubkey", audit_pubkey},
        {"export", cli_audit_export}, {"alerts", cli_audit_alerts},
    };

    if (argc < 2) {
        help_audit(stderr);
        return MV_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        help_audit(stdout);
        return MV_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1);
    return cli_usage_error("audit", "unknown subcommand '%s'", argv[1]);
}
