/* `medveil reidentify`: the re-identifier of PS3.15 E.1.2. Each input's Encrypted Attributes
 * Sequence is opened with a recipient's private key and the original values are put back.
 * Outputs are written to temporary names readable by their owner only, the run is recorded
 * in the audit log, and only then are the outputs renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "medveil/dicom.h"
#include "medveil/keys.h"
#include "medveil/reversible.h"

typedef struct Item {
    char *path;
    int duplicate;     /* another input has the same relative path: it would share the output */
    const char *rel;   /* inside path: the part kept under OUTDIR */
    char *output;      /* final name */
    char *temp;        /* written, waiting for the audit record; NULL once renamed or dropped */
    char *sop_uid;     /* the de-identified SOP Instance UID (the audit object), may be NULL */
    int security;      /* failed with a wrong key or altered content */
} Item;

typedef struct Reid {
    Item *items;
    size_t n_items, cap_items;
    size_t root_len;
} Reid;

void help_reidentify(FILE *out)
{
    fprintf(out,
            "usage: %s reidentify [OPTIONS] FILE... --private-key KEY.pem -o OUTDIR\n"
            "\n"
            "Restores the original values that 'medveil deid --encrypt-originals-to CERT.pem'\n"
            "(or GDCM's gdcmanon -e) kept in the Encrypted Attributes Sequence (0400,0500):\n"
            "the CMS content is decrypted with the private key of one of its recipients,\n"
            "every attribute of its Modified Attributes Sequence goes back into the\n"
            "dataset, replacing the pseudonyms and dummies, and the de-identification\n"
            "markers are removed. Folders are walked recursively; each output keeps its\n"
            "path relative to the input given, under OUTDIR, and is readable by its owner\n"
            "only: it identifies the patient again. The run is recorded in the audit log\n"
            "of the home folder before any output appears under its final name.\n"
            "\n"
            "Options:\n"
            "  -o, --output-dir OUTDIR  where re-identified files go (created if missing)\n"
            "  -k, --private-key KEY.pem\n"
            "                           the recipient's private key (PEM, PKCS#8 or RSA)\n"
            "  -c, --certificate CERT.pem\n"
            "                           the recipient's certificate: only recipient infos\n"
            "                           issued to it are tried (faster with many recipients)\n"
            "      --passin-file FILE   the key's passphrase, first line of FILE (mode 0600);\n"
            "                           else $MEDVEIL_PASSPHRASE, else a prompt if the key is\n"
            "                           encrypted and a terminal is attached\n"
            "      --keep-encrypted     keep the Encrypted Attributes Sequence item that was\n"
            "                           used (default: removed)\n"
            "      --force              replace outputs that already exist\n"
            "      --home DIR           home folder of the audit log (default $MEDVEIL_HOME,\n"
            "                           else ./.medveil)\n"
            "      --as NAME            who re-identifies, for the audit log (default: the\n"
            "                           operating system user)\n"
            "      --purpose TEXT       why, for the audit log (no patient data)\n"
            "      --quiet              no summary\n"
            "  -h, --help               show this help\n"
            "\n"
            "Exit status: 0 every input re-identified; 1 some input failed (not DICOM, no\n"
            "Encrypted Attributes Sequence, output exists); 2 usage error, or a key or\n"
            "certificate that cannot be read; 3 security failure: the key is no recipient\n"
            "of a file, a file's encrypted content was altered, a wrong passphrase, a key\n"
            "file readable by others, or the audit log refused the record.\n"
            "\n"
            "Examples:\n"
            "  %s deid --key project.key --encrypt-originals-to trustee.crt in/ -o deid/\n"
            "  %s reidentify --private-key trustee.key --passin-file trustee.pass \\\n"
            "          --purpose 'incidental finding, IRB 2024-17' deid/ -o reid/\n",
            cli_program, cli_program, cli_program);
}

static int add_item(const char *path, void *arg)
{
    Reid *reid = arg;
    Item *item;

    if (reid->n_items == reid->cap_items) {
        size_t cap = reid->cap_items ? reid->cap_items * 2 : 64;
        Item *grown = realloc(reid->items, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        reid->items = grown;
        reid->cap_items = cap;
    }
    item = &reid->items[reid->n_items];
    memset(item, 0, sizeof *item);
    if ((item->path = strdup(path)) == NULL)
        return -1;
    item->rel = item->path + reid->root_len;
    while (*item->rel == '/')
        item->rel++;
    reid->n_items++;
    return 0;
}

static int by_rel(const void *a, const void *b)
{
    const Item *const *x = a, *const *y = b;
    int c = strcmp((*x)->rel, (*y)->rel);
    return c != 0 ? c : ((*x) < (*y) ? -1 : 1);
}

/* Inputs given as a/x.dcm and b/x.dcm (folders a and b) would share OUTDIR/x.dcm: all but the
 * first are marked. Returns -1 when out of memory. */
static int mark_duplicates(Reid *reid)
{
    Item **order = malloc((reid->n_items + 1) * sizeof *order);

    if (order == NULL)
        return -1;
    for (size_t i = 0; i < reid->n_items; i++)
        order[i] = &reid->items[i];
    qsort(order, reid->n_items, sizeof *order, by_rel);
    for (size_t i = 1; i < reid->n_items; i++)
        if (strcmp(order[i]->rel, order[i - 1]->rel) == 0)
            order[i]->duplicate = 1;
    free(order);
    return 0;
}

/* Writes file to a fresh temporary name beside out, mode 0600; *temp names it. The caller
 * syncs the file system once for all outputs. */
static int write_temp(MvFile *file, const char *out, char **temp, MvError *err)
{
    MvWriteOptions wopts;
    int fd;

    if (asprintf(temp, "%s.mvtmp-reid", out) < 0) {
        *temp = NULL;
        mv_error_set(err, MV_ERR_NOMEM, MV_NO_TAG, MV_NO_OFFSET, "out of memory");
        return -1;
    }
    unlink(*temp); /* a leftover of an interrupted run */
    fd = open(*temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot create the output: %s", strerror(errno));
        free(*temp);
        *temp = NULL;
        return -1;
    }
    mv_write_options_init(&wopts);
    wopts.flags |= MV_WRITE_ZERO_PREAMBLE;
    if (mv_file_write_fd(file, fd, &wopts, err) != MV_OK && !mv_file_transfer_syntax(file)->explicit_vr &&
        ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0) {
        /* A restored original that implicit VR cannot carry (bytes under a tag the dictionary
         * calls a sequence, which the input held verbatim): Explicit VR keeps its VR. */
        fprintf(stderr, "%s reidentify: %s: note: %s; written in Explicit VR Little Endian\n", cli_program, out,
                err->message);
        wopts.transfer_syntax = MV_UID_EXPLICIT_LE;
        mv_error_clear(err);
    }
    if (err->code != MV_OK || (wopts.transfer_syntax != NULL && mv_file_write_fd(file, fd, &wopts, err) != MV_OK)) {
        close(fd);
        unlink(*temp);
        free(*temp);
        *temp = NULL;
        return -1;
    }
    if (close(fd) != 0) {
        mv_error_set(err, MV_ERR_IO, MV_NO_TAG, MV_NO_OFFSET, "cannot close the output: %s", strerror(errno));
        unlink(*temp);
        free(*temp);
        *temp = NULL;
        return -1;
    }
    return 0;
}

/* Restores one input into item->temp. Returns 0 on success, 1 on a plain failure, 3 on a
 * security failure; messages are printed here. */
static int reidentify_one(const MvReidKey *key, Item *item, const char *out_dir, unsigned flags, int force)
{
    MvFile *file = NULL;
    MvReidResult res;
    MvError err;
    struct stat sb;
    MvStatus st;
    int rc = 1;

    if (asprintf(&item->output, "%s/%s", out_dir, item->rel) < 0) {
        item->output = NULL;
        cli_error("reidentify", "out of memory");
        return 1;
    }
    if (item->duplicate) {
        cli_error("reidentify", "%s: failed: another input has the same path under OUTDIR (%s)", item->path,
                  item->output);
        return 1;
    }
    if (!force && lstat(item->output, &sb) == 0) {
        cli_error("reidentify", "%s: failed: %s exists (use --force to replace it)", item->path, item->output);
        return 1;
    }
    if (mv_file_open(item->path, NULL, &file, &err) != MV_OK) {
        cli_error("reidentify", "%s: failed: %s", item->path, err.message);
        return 1;
    }
    if (mv_dataset_get_string(mv_file_dataset(file), MV_TAG(0x0008, 0x0018), &item->sop_uid, NULL) != MV_OK)
        item->sop_uid = NULL;
    st = mv_originals_restore(key, file, flags, &res, &err);
    if (st == MV_ERR_DENIED || st == MV_ERR_INTEGRITY) {
        cli_error("reidentify", "%s: security failure: %s", item->path, err.message);
        item->security = 1;
        rc = 3;
        goto out;
    }
    if (st != MV_OK) {
        cli_error("reidentify", "%s: failed: %s", item->path, err.message);
        goto out;
    }
    if (cli_make_parents(item->output) != 0) {
        cli_error("reidentify", "%s: failed: cannot create the folder of %s: %s", item->path, item->output,
                  strerror(errno));
        goto out;
    }
    if (write_temp(file, item->output, &item->temp, &err) != 0) {
        cli_error("reidentify", "%s: failed: %s: %s", item->path, item->output, err.message);
        goto out;
    }
    rc = 0;
out:
    mv_file_free(file);
    return rc;
}

/* One audit event for the items that satisfy want (success or security failure). */
static int audit_items(const char *home, const Reid *reid, int successes, const char *actor, const char *purpose)
{
    const char **objects = calloc(reid->n_items + 1, sizeof *objects);
    CliAuditEvent ev;
    size_t n = 0;
    int rc;

    if (objects == NULL) {
        cli_error("reidentify", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < reid->n_items; i++) {
        const Item *item = &reid->items[i];
        if ((successes ? item->temp != NULL : item->security) && item->sop_uid != NULL)
            objects[n++] = item->sop_uid;
    }
    memset(&ev, 0, sizeof ev);
    ev.action = "reidentify";
    ev.objects = objects;
    ev.n_objects = n;
    ev.outcome = successes ? "success" : "denied";
    ev.actor = actor;
    ev.purpose = purpose;
    ev.detail = successes ? "original values restored from the Encrypted Attributes Sequence"
                          : "wrong key or altered Encrypted Content";
    rc = cli_audit(home, &ev);
    free(objects);
    return rc;
}

int cmd_reidentify(int argc, char **argv)
{
    enum { OPT_PASSIN = 256, OPT_KEEP, OPT_FORCE, OPT_HOME, OPT_AS, OPT_PURPOSE, OPT_QUIET };
    static const struct option longopts[] = {
        {"output-dir", required_argument, NULL, 'o'},
        {"private-key", required_argument, NULL, 'k'},
        {"certificate", required_argument, NULL, 'c'},
        {"passin-file", required_argument, NULL, OPT_PASSIN},
        {"keep-encrypted", no_argument, NULL, OPT_KEEP},
        {"force", no_argument, NULL, OPT_FORCE},
        {"home", required_argument, NULL, OPT_HOME},
        {"as", required_argument, NULL, OPT_AS},
        {"purpose", required_argument, NULL, OPT_PURPOSE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out_dir = NULL, *key_path = NULL, *cert_path = NULL, *passin = NULL, *home_opt = NULL;
    const char *actor = NULL, *purpose = NULL, *home;
    uint8_t *pass = NULL;
    size_t pass_len = 0;
    int force = 0, quiet = 0, c, rc = MV_EXIT_OK, walk_failed = 0;
    size_t n_done = 0, n_failed = 0, n_security = 0;
    unsigned flags = 0;
    MvReidKey *key = NULL;
    MvError err;
    Reid reid;
    struct stat sb;

    memset(&reid, 0, sizeof reid);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:k:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out_dir = optarg; break;
        case 'k': key_path = optarg; break;
        case 'c': cert_path = optarg; break;
        case OPT_PASSIN: passin = optarg; break;
        case OPT_KEEP: flags |= MV_REID_KEEP_ENCRYPTED; break;
        case OPT_FORCE: force = 1; break;
        case OPT_HOME: home_opt = optarg; break;
        case OPT_AS: actor = optarg; break;
        case OPT_PURPOSE: purpose = optarg; break;
        case OPT_QUIET: quiet = 1; break;
        case 'h': help_reidentify(stdout); return MV_EXIT_OK;
        case ':': return cli_usage_error("reidentify", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("reidentify", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (key_path == NULL)
        return cli_usage_error("reidentify", "needs --private-key KEY.pem");
    if (out_dir == NULL)
        return cli_usage_error("reidentify", "needs -o OUTDIR");
    if (optind >= argc)
        return cli_usage_error("reidentify", "no FILE given");
    home = cli_home(home_opt);

    /* The private key: owner-only, like every secret file of medveil. */
    if (stat(key_path, &sb) == 0 && (sb.st_mode & 077) != 0) {
        cli_error("reidentify", "%s: a private key readable by others is refused (mode %03o); chmod 600 it",
                  key_path, (unsigned)(sb.st_mode & 0777));
        return MV_EXIT_SECURITY;
    }
    if (mv_reid_key_encrypted(key_path)) {
        /* DESIGN.md: a secret comes from a file, $MEDVEIL_PASSPHRASE or a prompt without echo. */
        char prompt[PATH_MAX + 32];
        MvStatus st;
        snprintf(prompt, sizeof prompt, "Passphrase of %s: ", key_path);
        if ((st = mv_secret_read(passin, "MEDVEIL_PASSPHRASE", prompt, &pass, &pass_len, &err)) != MV_OK) {
            cli_error("reidentify", "%s", err.message);
            if (st == MV_ERR_ARG)
                cli_error("reidentify", "%s is encrypted: give its passphrase with --passin-file FILE or "
                          "$MEDVEIL_PASSPHRASE, or run on a terminal", key_path);
            rc = st == MV_ERR_DENIED ? MV_EXIT_SECURITY : MV_EXIT_USAGE;
            goto out;
        }
    }
    {
        MvStatus st = mv_reid_key_load(key_path, cert_path, pass, pass_len, &key, &err);
        mv_secret_free(pass, pass_len);
        pass = NULL;
        if (st != MV_OK) {
            cli_error("reidentify", "%s", err.message);
            rc = st == MV_ERR_DENIED ? MV_EXIT_SECURITY : MV_EXIT_USAGE;
            goto out;
        }
    }
    if (cli_mkdirs(out_dir) != 0) {
        cli_error("reidentify", "%s: %s", out_dir, strerror(errno));
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    cli_walk_exclude(out_dir);
    for (int i = optind; i < argc; i++) {
        const char *arg = argv[i];
        size_t len = strlen(arg);
        while (len > 1 && arg[len - 1] == '/')
            len--;
        while (len > 0 && arg[len - 1] != '/')
            len--;
        reid.root_len = len;
        if (cli_walk(&argv[i], 1, add_item, &reid, "reidentify", &walk_failed) != 0) {
            cli_error("reidentify", "out of memory listing inputs");
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
    }

    if (mark_duplicates(&reid) != 0) {
        cli_error("reidentify", "out of memory");
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    for (size_t i = 0; i < reid.n_items; i++) {
        int r = reidentify_one(key, &reid.items[i], out_dir, flags, force);
        if (r == 3)
            n_security++;
        else if (r != 0)
            n_failed++;
    }
    /* Every output is durable under its temporary name, then the audit log says who
     * re-identified what, and only then does anything appear under its final name. */
    if (cli_sync_fs(out_dir) != 0) {
        cli_error("reidentify", "%s: cannot sync: %s", out_dir, strerror(errno));
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    if (n_security > 0 && audit_items(home, &reid, 0, actor, purpose) != 0) {
        cli_error("reidentify", "the audit log refused the record: no output was written");
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    for (size_t i = 0; i < reid.n_items; i++)
        if (reid.items[i].temp != NULL)
            n_done++;
    if (n_done > 0 && audit_items(home, &reid, 1, actor, purpose) != 0) {
        cli_error("reidentify", "the audit log refused the record: no output was written");
        rc = MV_EXIT_SECURITY;
        goto out;
    }
    for (size_t i = 0; i < reid.n_items; i++) {
        Item *item = &reid.items[i];
        if (item->temp == NULL)
            continue;
        if (rename(item->temp, item->output) != 0) {
            cli_error("reidentify", "%s: failed: cannot rename to %s: %s", item->path, item->output, strerror(errno));
            unlink(item->temp);
            n_failed++;
            n_done--;
        }
        free(item->temp);
        item->temp = NULL;
    }
    cli_sync_fs(out_dir); /* the renames */
    if (!quiet)
        fprintf(stderr, "%s reidentify: %zu re-identified, %zu failed, %zu security failures\n", cli_program, n_done,
                n_failed + (size_t)walk_failed, n_security);
    if (n_security > 0)
        rc = MV_EXIT_SECURITY;
    else if (n_failed > 0 || walk_failed > 0)
        rc = MV_EXIT_PARTIAL;
out:
    mv_secret_free(pass, pass_len);
    for (size_t i = 0; i < reid.n_items; i++) {
        if (reid.items[i].temp != NULL)
            unlink(reid.items[i].temp);
        free(reid.items[i].temp);
        free(reid.items[i].path);
        free(reid.items[i].output);
        free(reid.items[i].sop_uid);
    }
    free(reid.items);
    mv_reid_key_free(key);
    return rc;
}
