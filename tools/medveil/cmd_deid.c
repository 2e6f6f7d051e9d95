/* `medveil deid`: the batch run. Inputs are expanded into a list of files; worker threads
 * de-identify them in any order (pseudonyms are keyed, so order does not matter), write
 * each output atomically, and send what cannot be released to quarantine with a reason.
 * A rerun skips outputs that already exist; Ctrl-C stops after the files in progress. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "medveil/deid.h"
#include "medveil/dicom.h"
#include "medveil/pixel_clean.h"
#include "medveil/reversible.h"

enum { LAYOUT_MIRROR, LAYOUT_HIERARCHY };
enum { ST_PENDING, ST_DONE, ST_EXISTS, ST_QUARANTINED, ST_SKIPPED, ST_FAILED };
static const char *status_names[] = {"pending", "deidentified", "exists", "quarantined", "skipped", "failed"};

typedef struct Job {
    char *path;
    const char *rel;   /* inside path: the part kept under OUTDIR */
    uint64_t size;
    int status;
    char *output;
    char *reason;
    char study[65]; /* the output's (pseudonymous) Study Instance UID, for the audit log */
    char *pixel_decision; /* clean-pixel-data: why the pixels were or were not read */
    int pixel_read, pixel_masked;
} Job;

typedef struct Run {
    MvDeidConfig *cfg;
    MvRecipients *recipients; /* --encrypt-originals-to: NULL when not reversible */
    const char *out_dir;
    char *quarantine_dir;
    int layout, force, sync_each, no_sync, progress;
    Job *jobs;
    size_t n_jobs, cap_jobs;
    size_t root_len;
    atomic_size_t next;
    atomic_size_t n_finished;
    atomic_uint_fast64_t bytes_done;
    atomic_size_t n_quarantined;
    pthread_mutex_t lock;
    time_t started;
    MvPixelReview *review;
} Run;

/* The job a worker thread is on, for the pixel report callback. */
static _Thread_local Job *current_job;

/* Keeps the pixel decision of the current job for the JSON report; feeds --review. */
static void on_pixel_report(void *ctx, const char *name, const MvPixelReport *report)
{
    Run *run = ctx;

    if (current_job != NULL) {
        free(current_job->pixel_decision);
        current_job->pixel_decision = strdup(report->decision);
        current_job->pixel_read = report->scanned;
        current_job->pixel_masked = 0;
        for (size_t i = 0; i < report->n_boxes; i++)
            current_job->pixel_masked += report->boxes[i].masked;
    }
    if (run->review != NULL)
        mv_pixel_review_add(run->review, name, report);
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void help_deid(FILE *out)
{
    fprintf(out,
            "usage: %s deid [OPTIONS] INPUT... -o OUTDIR\n"
            "\n"
            "De-identifies DICOM files and folders (recursively) with the PS3.15 Annex E Basic\n"
            "Application Level Confidentiality Profile and the options you choose. Every\n"
            "replacement UID, patient pseudonym and date shift is derived with HMAC-SHA256 under\n"
            "the project key, so the same input gives the same output in every run, on every\n"
            "machine, in any order. A file that cannot be fully de-identified is never written\n"
            "to OUTDIR: it goes to the quarantine folder with the reason. Non-DICOM files are\n"
            "skipped and reported. A rerun skips outputs that already exist.\n"
            "\n"
            "Options:\n"
            "  -o, --output-dir OUTDIR  where de-identified files go (created if missing)\n"
            "  -k, --key FILE           project key from 'medveil keygen'; without it a random\n"
            "                           key is used and pseudonyms match no other run\n"
            "      --option NAME        a PS3.15 option (repeatable): retain-safe-private,\n"
            "                           retain-uids, retain-device-identity,\n"
            "                           retain-institution-identity,\n"
            "                           retain-patient-characteristics, retain-long-full-dates,\n"
            "                           retain-long-modified-dates, clean-descriptors,\n"
            "                           clean-structured-content, clean-graphics,\n"
            "                           clean-pixel-data (find burned-in text with rules and\n"
            "                           OCR, mask it, verify: docs/pixel-clean.md),\n"
            "                           clean-recognizable-visual-features (quarantine head\n"
            "                           CT/MR and photographs)\n"
            "      --pixel-rules FILE   more pixel region rules (docs/pixel-clean.md), after the\n"
            "                           starter set; repeatable; needs clean-pixel-data\n"
            "      --no-starter-rules   leave the built-in starter pixel rules out\n"
            "      --mask-all-text      mask every word OCR reads, not only identifiers\n"
            "      --scan-all-pixels    read every image, whatever its header says\n"
            "      --review FILE.html   a reviewer-only page (mode 0600, holds identifiers) with\n"
            "                           before/after thumbnails of every image whose pixels\n"
            "                           changed or that was quarantined by a pixel reason\n"
            "  -r, --recipe FILE        rules that override the profile (docs/recipes.md);\n"
            "                           repeatable, later files win\n"
            "      --safe-private FILE  more safe private attributes, lines CREATOR,GGGG,EE\n"
            "      --date-range MIN:MAX days of the per-patient date shift (default 1:3650)\n"
            "  -q, --quarantine DIR     where files that must not be released go, each with a\n"
            "                           .reason file (default: OUTDIR-quarantine)\n"
            "      --report FILE.json   every input with its status, the profile, options,\n"
            "                           recipe hash and the key's fingerprint (never the key)\n"
            "      --layout mirror|hierarchy\n"
            "                           mirror (default) keeps relative paths, which may hold\n"
            "                           names: prefer hierarchy, PATIENT/STUDY/SERIES/SOP.dcm\n"
            "      --encrypt-originals-to CERT.pem\n"
            "                           reversible de-identification (PS3.15 E.1.2): the\n"
            "                           original of every changed attribute goes, encrypted\n"
            "                           to the certificate(s), into the Encrypted Attributes\n"
            "                           Sequence; repeatable; 'medveil reidentify' restores\n"
            "      --rsa-pkcs1v15       RSA PKCS#1 v1.5 key transport instead of RSA-OAEP,\n"
            "                           for old readers\n"
            "      --cms-auth-enveloped AES-256-GCM AuthEnvelopedData instead of AES-256-CBC:\n"
            "                           tampering is detected, fewer tools read it\n"
            "  -j, --jobs N             worker threads (default: the number of cores)\n"
            "      --force              rewrite outputs that already exist\n"
            "      --sync-each          fsync every output (default: one sync at the end)\n"
            "      --no-sync            no sync at all (a pipeline that syncs later)\n"
            "      --quiet              no progress bar and no summary\n"
            "      --home DIR           home folder whose audit log records the run (default\n"
            "                           $MEDVEIL_HOME, else ./.medveil): one event per output\n"
            "                           study (its new Study Instance UID) and a summary\n"
            "      --as NAME            the actor named in the audit log (default: OS user)\n"
            "      --purpose TEXT       why the run is made, recorded in the audit log\n"
            "  -h, --help               show this help\n"
            "\n"
            "Exit status: 0 every input de-identified (or already done); 1 some input was\n"
            "quarantined, skipped or failed, or the run was interrupted (rerun to finish);\n"
            "2 usage or configuration error (a missing or malformed key file too); 3 the key\n"
            "file is readable by others than its owner, or the run could not be recorded in\n"
            "the audit log.\n"
            "\n"
            "Examples:\n"
            "  %s keygen -o project.key\n"
            "  %s deid --key project.key --layout hierarchy --report run.json in/ -o out/\n"
            "  %s deid --key project.key --option retain-long-modified-dates \\\n"
            "          --option clean-descriptors --recipe research.recipe in/ -o out/\n"
            "  %s deid --key project.key --option clean-pixel-data --review review.html \\\n"
            "          us/ -o out/\n"
            "  %s deid --key project.key --encrypt-originals-to trustee.crt in/ -o out/\n"
            "          (reversible: see 'medveil help reidentify' and docs/reversible.md)\n",
            cli_program, cli_program, cli_program, cli_program, cli_program, cli_program);
}

static int add_job(const char *path, void *arg)
{
    Run *run = arg;
    struct stat sb;
    Job *job;

    if (run->n_jobs == run->cap_jobs) {
        size_t cap = run->cap_jobs ? run->cap_jobs * 2 : 256;
        Job *grown = realloc(run->jobs, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        run->jobs = grown;
        run->cap_jobs = cap;
    }
    job = &run->jobs[run->n_jobs];
    memset(job, 0, sizeof *job);
    job->path = strdup(path);
    if (job->path == NULL)
        return -1;
    job->rel = job->path + run->root_len;
    while (*job->rel == '/')
        job->rel++;
    job->size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    run->n_jobs++;
    return 0;
}


/* 1 if the bytes of path look like DICOM at all (so a parse failure means a damaged
 * DICOM file, not some other kind of file). */
static int looks_like_dicom(const char *path)
{
    unsigned char head[136];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    n = read(fd, head, sizeof head);
    close(fd);
    if (n >= 132 && memcmp(head + 128, "DICM", 4) == 0)
        return 1;
    if (n >= 4 && memcmp(head, "DICM", 4) == 0)
        return 1;
    /* A bare dataset starts with a low even group: (0002,xxxx) or (0008,xxxx). */
    return n >= 8 && (head[0] == 0x02 || head[0] == 0x08) && head[1] == 0x00;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out;
    char buf[65536], tmp[PATH_MAX];
    size_t n;
    int rc = 0;

    if (in == NULL)
        return -1;
    /* Quarantined files hold identifying data: readable by their owner only. */
    if (snprintf(tmp, sizeof tmp, "%s.mvtmp-q", to) >= (int)sizeof tmp) {
        fclose(in);
        return -1;
    }
    {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || (out = fdopen(fd, "wb")) == NULL) {
            if (fd >= 0)
                close(fd);
            fclose(in);
            return -1;
        }
    }
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (ferror(in))
        rc = -1;
    fclose(in);
    if (fclose(out) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, to) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static void set_reason(Job *job, const char *reason)
{
    free(job->reason);
    job->reason = strdup(reason);
}

/* The original goes to quarantine with a .reason file beside it. */
static void quarantine(Run *run, Job *job, const char *reason)
{
    char dest[PATH_MAX], why[PATH_MAX + 8];
    FILE *f;

    job->status = ST_QUARANTINED;
    set_reason(job, reason);
    atomic_fetch_add(&run->n_quarantined, 1);
    if (snprintf(dest, sizeof dest, "%s/%s", run->quarantine_dir, job->rel) >= (int)sizeof dest ||
        cli_make_parents(dest) != 0 || copy_file(job->path, dest) != 0) {
        pthread_mutex_lock(&run->lock);
        cli_error("deid", "%s: cannot copy to quarantine %s", job->path, run->quarantine_dir);
        pthread_mutex_unlock(&run->lock);
        return;
    }
    snprintf(why, sizeof why, "%s.reason", dest);
    {
        int fd = open(why, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (f == NULL && fd >= 0)
            close(fd);
    }
    if (f != NULL) {
        fprintf(f, "%s\n", reason);
        fclose(f);
    }
    job->output = strdup(dest);
}

static void process(Run *run, Job *job)
{
    MvFile *file = NULL;
    MvDeidResult res;
    MvError err;
    MvWriteOptions wopts;
    char out[PATH_MAX];
    struct stat sb;

    if (run->layout == LAYOUT_MIRROR) {
        if (snprintf(out, sizeof out, "%s/%s", run->out_dir, job->rel) >= (int)sizeof out) {
            job->status = ST_FAILED;
            set_reason(job, "output path too long");
            return;
        }
        if (!run->force && stat(out, &sb) == 0) {
            job->status = ST_EXISTS;
            job->output = strdup(out);
            return;
        }
    }
    if (mv_file_open(job->path, NULL, &file, &err) != MV_OK) {
        if (!looks_like_dicom(job->path)) {
            job->status = ST_SKIPPED;
            set_reason(job, "not a DICOM file");
        } else {
            quarantine(run, job, err.message);
        }
        return;
    }
    if (mv_deid_file(run->cfg, file, &res, &err) != MV_OK) {
        quarantine(run, job, err.message[0] ? err.message : "de-identification failed");
        mv_file_free(file);
        return;
    }
    if (res.outcome == MV_DEID_QUARANTINE) {
        quarantine(run, job, res.reason);
        mv_file_free(file);
        return;
    }
    if (run->recipients != NULL) {
        /* The originals, from a second parse of the untouched input (docs/reversible.md). */
        MvFile *original = NULL;
        if (mv_file_open(job->path, NULL, &original, &err) != MV_OK ||
            mv_originals_encrypt(run->recipients, mv_file_dataset(original), file, NULL, &err) != MV_OK) {
            quarantine(run, job, err.message);
            mv_file_free(original);
            mv_file_free(file);
            return;
        }
        mv_file_free(original);
    }
    if (run->layout == LAYOUT_HIERARCHY) {
        /* A file without SOP Instance UID (a DICOMDIR, a broken file) is named by a keyed
         * UID of its input path: unique, stable, and no trace of the path. */
        char instance[65];
        if (res.sop_uid[0])
            snprintf(instance, sizeof instance, "%s", res.sop_uid);
        else
            mv_deid_uid(run->cfg, job->path, instance);
        if (snprintf(out, sizeof out, "%s/%s/%s/%s/%s.dcm", run->out_dir, res.patient_pseudonym,
                     res.study_uid[0] ? res.study_uid : "no-study", res.series_uid[0] ? res.series_uid : "no-series",
                     instance) >= (int)sizeof out) {
            job->status = ST_FAILED;
            set_reason(job, "output path too long");
            mv_file_free(file);
            return;
        }
        if (!run->force && stat(out, &sb) == 0) {
            job->status = ST_EXISTS;
            job->output = strdup(out);
            mv_file_free(file);
            return;
        }
    }
    mv_write_options_init(&wopts);
    if (!run->sync_each)
        wopts.flags |= MV_WRITE_NO_SYNC;
    wopts.flags |= MV_WRITE_ZERO_PREAMBLE;
    if (cli_make_parents(out) != 0) {
        job->status = ST_FAILED;
        set_reason(job, "cannot create the output folder");
    } else if (mv_file_write(file, out, &wopts, &err) != MV_OK) {
        job->status = ST_FAILED;
        set_reason(job, err.message);
    } else {
        job->status = ST_DONE;
        job->output = strdup(out);
        memcpy(job->study, res.study_uid, sizeof job->study);
    }
    mv_file_free(file);
}

/* Makes every output durable with one syncfs of the output's file system (sync(2) if that
 * fails). */
static void sync_outputs(const char *dir)
{
    if (cli_sync_fs(dir) != 0)
        sync();
}

static int by_rel(const void *a, const void *b)
{
    const Job *const *x = a, *const *y = b;
    int c = strcmp((*x)->rel, (*y)->rel);
    return c != 0 ? c : ((*x) < (*y) ? -1 : 1);
}

/* In the mirror layout two inputs with the same relative path (a/x.dcm and b/x.dcm given
 * as a and b) would share an output: all but the first fail, naming the way out. */
static void mark_collisions(Run *run)
{
    Job **order = malloc(run->n_jobs * sizeof *order);

    if (order == NULL)
        return;
    for (size_t i = 0; i < run->n_jobs; i++)
        order[i] = &run->jobs[i];
    qsort(order, run->n_jobs, sizeof *order, by_rel);
    for (size_t i = 1; i < run->n_jobs; i++)
        if (strcmp(order[i]->rel, order[i - 1]->rel) == 0) {
            order[i]->status = ST_FAILED;
            set_reason(order[i], "another input has the same relative path; use --layout hierarchy");
        }
    free(order);
}

static void *worker(void *arg)
{
    Run *run = arg;

    while (!stop_requested) {
        size_t i = atomic_fetch_add(&run->next, 1);
        if (i >= run->n_jobs)
            break;
        if (run->jobs[i].status != ST_PENDING) {
            atomic_fetch_add(&run->n_finished, 1);
            continue;
        }
        current_job = &run->jobs[i];
        process(run, &run->jobs[i]);
        current_job = NULL;
        atomic_fetch_add(&run->bytes_done, run->jobs[i].size);
        atomic_fetch_add(&run->n_finished, 1);
    }
    mv_pixel_ocr_release();
    return NULL;
}

static void show_progress(Run *run, uint64_t total_bytes, int final)
{
    size_t done = atomic_load(&run->n_finished);
    uint64_t bytes = atomic_load(&run->bytes_done);
    double secs = difftime(time(NULL), run->started);
    double rate = secs > 0 ? (double)bytes / secs : 0;
    double eta = rate > 0 ? (double)(total_bytes - bytes) / rate : 0;
    int width = 24, filled = run->n_jobs ? (int)((double)width * (double)done / (double)run->n_jobs) : width;

    fprintf(stderr, "\r[%.*s%*s] %zu/%zu files  %.0f MB  %.1f MB/s  ETA %d:%02d  quarantined %zu", filled,
            "########################", width - filled, "", done, run->n_jobs, (double)bytes / 1e6, rate / 1e6,
            (int)eta / 60, (int)eta % 60, atomic_load(&run->n_quarantined));
    if (final)
        fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_report(Run *run, const char *path, const int counts[6], int interrupted)
{
    json_t *root = json_object(), *files = json_array(), *opts = json_array(), *c = json_object();
    char tmp[PATH_MAX];
    unsigned options = mv_deid_config_options(run->cfg);
    int rc = 0;

    for (unsigned bit = 1; bit != 0 && bit <= MV_OPT_CLEAN_RECOGNIZABLE_VISUAL_FEATURES; bit <<= 1)
        if (options & bit)
            json_array_append_new(opts, json_string(mv_deid_option_name(bit)));
    for (int s = ST_PENDING; s <= ST_FAILED; s++)
        json_object_set_new(c, status_names[s], json_integer(counts[s]));
    json_object_set_new(root, "tool", json_string("medveil"));
    json_object_set_new(root, "version", json_string(mv_version()));
    json_object_set_new(root, "profile", json_string("PS3.15 Annex E Basic Application Level Confidentiality Profile"));
    json_object_set_new(root, "method", json_string(mv_deid_config_method(run->cfg)));
    json_object_set_new(root, "options", opts);
    json_object_set_new(root, "recipe_sha256", json_string(mv_deid_config_recipe_hash(run->cfg)));
    json_object_set_new(root, "key_fingerprint", json_string(mv_deid_config_fingerprint(run->cfg)));
    json_object_set_new(root, "random_key", json_boolean(mv_deid_config_random_key(run->cfg)));
    json_object_set_new(root, "interrupted", json_boolean(interrupted));
    json_object_set_new(root, "counts", c);
    if (run->recipients != NULL) {
        /* Reversible runs: who can re-identify (certificate fingerprints, never a key). */
        json_t *certs = json_array();
        for (size_t i = 0; i < mv_recipients_count(run->recipients); i++) {
            char fp[72];
            mv_recipients_fingerprint(run->recipients, i, fp);
            json_array_append_new(certs, json_string(fp));
        }
        json_object_set_new(root, "encrypted_originals_to", certs);
    }
    for (size_t i = 0; i < run->n_jobs; i++) {
        const Job *job = &run->jobs[i];
        json_t *f = json_object();
        json_object_set_new(f, "input", json_string(job->path));
        json_object_set_new(f, "output", job->output ? json_string(job->output) : json_null());
        json_object_set_new(f, "status", json_string(status_names[job->status]));
        if (job->reason != NULL)
            json_object_set_new(f, "reason", json_string(job->reason));
        if (job->pixel_decision != NULL) {
            json_t *px = json_object();
            json_object_set_new(px, "read", json_boolean(job->pixel_read));
            json_object_set_new(px, "decision", json_string(job->pixel_decision));
            json_object_set_new(px, "masked_boxes", json_integer(job->pixel_masked));
            json_object_set_new(f, "pixel", px);
        }
        json_array_append_new(files, f);
    }
    json_object_set_new(root, "files", files);
    snprintf(tmp, sizeof tmp, "%s.mvtmp-report", path);
    if (json_dump_file(root, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) != 0 || fsync_path(tmp) != 0 ||
        rename(tmp, path) != 0) {
        unlink(tmp);
        rc = -1;
    }
    json_decref(root);
    return rc;
}

static int by_study(const void *a, const void *b)
{
    return strcmp(((const Job *)a)->study, ((const Job *)b)->study);
}

/* Records the run in the audit log of HOME: one event per output study (objects: the new,
 * pseudonymous Study Instance UID; never an original value) and one summary event. The jobs
 * are reordered. 0, or -1 when the log cannot be written (the run then fails). */
static int audit_run(Run *run, const char *home, const char *actor, const char *purpose, const int counts[6],
                     int interrupted)
{
    CliAuditEvent *evs = NULL;
    char **details = NULL, **objects = NULL, summary[256];
    size_t n_ev = 0, cap = 1;
    int rc = -1;

    qsort(run->jobs, run->n_jobs, sizeof *run->jobs, by_study);
    for (size_t i = 0; i < run->n_jobs; i++)
        if (i == 0 || strcmp(run->jobs[i].study, run->jobs[i - 1].study) != 0)
            cap++; /* at most one event per group of jobs with the same study */
    evs = calloc(cap, sizeof *evs);
    details = calloc(cap, sizeof *details);
    objects = calloc(cap, sizeof *objects);
    if (evs == NULL || details == NULL || objects == NULL)
        goto nomem;
    for (size_t i = 0; i < run->n_jobs;) {
        size_t j = i, n_done = 0;
        while (j < run->n_jobs && strcmp(run->jobs[j].study, run->jobs[i].study) == 0) {
            n_done += run->jobs[j].status == ST_DONE;
            j++;
        }
        if (n_done > 0) {
            const char *study = run->jobs[i].study[0] ? run->jobs[i].study : "none";
            if (asprintf(&objects[n_ev], "study:%s", study) < 0 ||
                asprintf(&details[n_ev], "%zu instances de-identified; key %s", n_done,
                         mv_deid_config_fingerprint(run->cfg)) < 0) {
                objects[n_ev] = details[n_ev] = NULL;
                goto nomem;
            }
            evs[n_ev].action = "deid";
            evs[n_ev].objects = (const char *const *)&objects[n_ev];
            evs[n_ev].n_objects = 1;
            evs[n_ev].outcome = "success";
            evs[n_ev].actor = actor;
            evs[n_ev].purpose = purpose;
            evs[n_ev].detail = details[n_ev];
            n_ev++;
        }
        i = j;
    }
    snprintf(summary, sizeof summary, "run%s: %d de-identified, %d already done, %d quarantined, %d skipped, "
             "%d failed; key %s",
             interrupted ? " interrupted" : "", counts[ST_DONE], counts[ST_EXISTS], counts[ST_QUARANTINED],
             counts[ST_SKIPPED], counts[ST_FAILED], mv_deid_config_fingerprint(run->cfg));
    evs[n_ev].action = "deid";
    evs[n_ev].outcome = counts[ST_QUARANTINED] + counts[ST_FAILED] + counts[ST_PENDING] > 0 || interrupted
                            ? "failure" : "success";
    evs[n_ev].actor = actor;
    evs[n_ev].purpose = purpose;
    evs[n_ev].detail = summary;
    n_ev++;
    rc = cli_audit_many(home, evs, n_ev);
    goto out;
nomem:
    cli_error("deid", "out of memory recording the run in the audit log");
out:
    for (size_t i = 0; i < cap && objects != NULL && details != NULL; i++) {
        free(objects[i]);
        free(details[i]);
    }
    free(objects);
    free(details);
    free(evs);
    return rc;
}

int cmd_deid(int argc, char **argv)
{
    enum { OPT_OPTION = 256, OPT_SAFE_PRIVATE, OPT_DATE_RANGE, OPT_REPORT, OPT_LAYOUT, OPT_FORCE, OPT_SYNC, OPT_QUIET,
           OPT_NO_SYNC, OPT_HOME, OPT_AS, OPT_PURPOSE, OPT_PIXEL_RULES, OPT_NO_STARTER, OPT_MASK_ALL, OPT_SCAN_ALL,
           OPT_REVIEW, OPT_ENCRYPT_TO, OPT_PKCS1V15, OPT_AUTH_ENVELOPED };
    static const struct option longopts[] = {
        {"output-dir", required_argument, NULL, 'o'},
        {"key", required_argument, NULL, 'k'},
        {"option", required_argument, NULL, OPT_OPTION},
        {"recipe", required_argument, NULL, 'r'},
        {"safe-private", required_argument, NULL, OPT_SAFE_PRIVATE},
        {"date-range", required_argument, NULL, OPT_DATE_RANGE},
        {"quarantine", required_argument, NULL, 'q'},
        {"report", required_argument, NULL, OPT_REPORT},
        {"layout", required_argument, NULL, OPT_LAYOUT},
        {"jobs", required_argument, NULL, 'j'},
        {"force", no_argument, NULL, OPT_FORCE},
        {"sync-each", no_argument, NULL, OPT_SYNC},
        {"no-sync", no_argument, NULL, OPT_NO_SYNC},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"encrypt-originals-to", required_argument, NULL, OPT_ENCRYPT_TO},
        {"rsa-pkcs1v15", no_argument, NULL, OPT_PKCS1V15},
        {"cms-auth-enveloped", no_argument, NULL, OPT_AUTH_ENVELOPED},
        {"home", required_argument, NULL, OPT_HOME},
        {"as", required_argument, NULL, OPT_AS},
        {"purpose", required_argument, NULL, OPT_PURPOSE},
        {"pixel-rules", required_argument, NULL, OPT_PIXEL_RULES},
        {"no-starter-rules", no_argument, NULL, OPT_NO_STARTER},
        {"mask-all-text", no_argument, NULL, OPT_MASK_ALL},
        {"scan-all-pixels", no_argument, NULL, OPT_SCAN_ALL},
        {"review", required_argument, NULL, OPT_REVIEW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Run run;
    MvError err;
    const char *key_path = NULL, *report = NULL, *quarantine_dir = NULL;
    const char *home_opt = NULL, *actor = NULL, *purpose = NULL;
    unsigned long long n;
    long n_threads = sysconf(_SC_NPROCESSORS_ONLN);
    int c, rc = MV_EXIT_OK, quiet = 0, counts[6] = {0}, n_certs = 0;
    unsigned rev_flags = 0;
    char **certs = NULL;
    pthread_t *threads = NULL;
    uint64_t total_bytes = 0;
    struct sigaction sa, old_int, old_term;
    /* Pixel options (docs/pixel-clean.md). */
    MvPixelCleanConfig pixel;
    MvPixelRules *pixel_rules = NULL;
    MvPixelReview *review = NULL;
    const char *review_path = NULL, *rule_files[64];
    size_t n_rule_files = 0;
    int no_starter = 0, pixel_only_opts = 0;

    mv_pixel_clean_config_init(&pixel);
    memset(&run, 0, sizeof run);
    pthread_mutex_init(&run.lock, NULL);
    if (mv_deid_config_new(&run.cfg, &err) != MV_OK) {
        cli_error("deid", "%s", err.message);
        return MV_EXIT_PARTIAL;
    }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:k:r:q:j:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': run.out_dir = optarg; break;
        case 'k': key_path = optarg; break;
        case OPT_OPTION: {
            unsigned opt = mv_deid_option_from_name(optarg);
            if (opt == 0) {
                rc = cli_usage_error("deid", "unknown option name '%s' (see the list in --help)", optarg);
                goto out;
            }
            if (mv_deid_config_add_options(run.cfg, opt, &err) != MV_OK) {
                rc = cli_usage_error("deid", "%s", err.message);
                goto out;
            }
            break;
        }
        case 'r':
            if (mv_deid_config_load_recipe(run.cfg, optarg, &err) != MV_OK) {
                cli_error("deid", "%s", err.message);
                rc = MV_EXIT_USAGE;
                goto out;
            }
            break;
        case OPT_SAFE_PRIVATE:
            if (mv_deid_config_load_safe_private(run.cfg, optarg, &err) != MV_OK) {
                cli_error("deid", "%s", err.message);
                rc = MV_EXIT_USAGE;
                goto out;
            }
            break;
        case OPT_DATE_RANGE: {
            int lo, hi;
            char extra;
            if (sscanf(optarg, "%d:%d%c", &lo, &hi, &extra) != 2 ||
                mv_deid_config_set_date_range(run.cfg, lo, hi, &err) != MV_OK) {
                rc = cli_usage_error("deid", "--date-range needs MIN:MAX days, 0 <= MIN <= MAX <= 36500");
                goto out;
            }
            break;
        }
        case 'q': quarantine_dir = optarg; break;
        case OPT_REPORT: report = optarg; break;
        case OPT_LAYOUT:
            if (strcmp(optarg, "mirror") == 0)
                run.layout = LAYOUT_MIRROR;
            else if (strcmp(optarg, "hierarchy") == 0)
                run.layout = LAYOUT_HIERARCHY;
            else {
                rc = cli_usage_error("deid", "--layout is mirror or hierarchy, not '%s'", optarg);
                goto out;
            }
            break;
        case 'j':
            if (cli_parse_size(optarg, &n) != 0 || n < 1 || n > 256) {
                rc = cli_usage_error("deid", "--jobs needs a number from 1 to 256, not '%s'", optarg);
                goto out;
            }
            n_threads = (long)n;
            break;
        case OPT_FORCE: run.force = 1; break;
        case OPT_SYNC: run.sync_each = 1; break;
        case OPT_NO_SYNC: run.no_sync = 1; break;
        case OPT_QUIET: quiet = 1; break;
        case OPT_ENCRYPT_TO: {
            char **grown = realloc(certs, (size_t)(n_certs + 1) * sizeof *grown);
            if (grown == NULL) {
                cli_error("deid", "out of memory");
                rc = MV_EXIT_PARTIAL;
                goto out;
            }
            certs = grown;
            certs[n_certs++] = optarg;
            break;
        }
        case OPT_PKCS1V15: rev_flags |= MV_REV_RSA_PKCS1V15; break;
        case OPT_AUTH_ENVELOPED: rev_flags |= MV_REV_AUTH_ENVELOPED; break;
        case OPT_HOME: home_opt = optarg; break;
        case OPT_AS: actor = optarg; break;
        case OPT_PURPOSE: purpose = optarg; break;
        case OPT_PIXEL_RULES:
            if (n_rule_files == sizeof rule_files / sizeof rule_files[0]) {
                rc = cli_usage_error("deid", "at most 64 --pixel-rules files");
                goto out;
            }
            rule_files[n_rule_files++] = optarg;
            pixel_only_opts = 1;
            break;
        case OPT_NO_STARTER: no_starter = 1; pixel_only_opts = 1; break;
        case OPT_MASK_ALL: pixel.flags |= MV_PIXEL_MASK_ALL_TEXT; pixel_only_opts = 1; break;
        case OPT_SCAN_ALL: pixel.flags |= MV_PIXEL_SCAN_ALL; pixel_only_opts = 1; break;
        case OPT_REVIEW: review_path = optarg; break;
        case 'h': help_deid(stdout); goto out;
        case ':': rc = cli_usage_error("deid", "option '%s' needs a value", argv[optind - 1]); goto out;
        default: rc = cli_usage_error("deid", "unknown option '%s'", argv[optind - 1]); goto out;
        }
    }
    if (run.out_dir == NULL) {
        rc = cli_usage_error("deid", "needs -o OUTDIR");
        goto out;
    }
    if (optind >= argc) {
        rc = cli_usage_error("deid", "no INPUT given");
        goto out;
    }
    if (mv_deid_config_options(run.cfg) & MV_OPT_CLEAN_PIXEL_DATA)
        cli_pixel_env(); /* nothing has been done yet: a re-execution is harmless */
    if (pixel_only_opts && !(mv_deid_config_options(run.cfg) & MV_OPT_CLEAN_PIXEL_DATA)) {
        rc = cli_usage_error("deid", "--pixel-rules, --no-starter-rules, --mask-all-text and --scan-all-pixels "
                                     "need --option clean-pixel-data");
        goto out;
    }
    if (review_path != NULL && !(mv_deid_config_options(run.cfg) &
                                 (MV_OPT_CLEAN_PIXEL_DATA | MV_OPT_CLEAN_RECOGNIZABLE_VISUAL_FEATURES))) {
        rc = cli_usage_error("deid", "--review needs --option clean-pixel-data or clean-recognizable-visual-features");
        goto out;
    }
    if (mv_deid_config_options(run.cfg) & (MV_OPT_CLEAN_PIXEL_DATA | MV_OPT_CLEAN_RECOGNIZABLE_VISUAL_FEATURES)) {
        /* The starter rules first, then the user's files in order: every matching rule applies. */
        if (mv_pixel_rules_new(&pixel_rules) != MV_OK ||
            (!no_starter && mv_pixel_rules_load_starter(pixel_rules, &err) != MV_OK)) {
            cli_error("deid", "cannot load the starter pixel rules");
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
        for (size_t i = 0; i < n_rule_files; i++)
            if (mv_pixel_rules_load(pixel_rules, rule_files[i], &err) != MV_OK) {
                cli_error("deid", "%s", err.message);
                rc = MV_EXIT_USAGE;
                goto out;
            }
        pixel.rules = pixel_rules;
        /* Tests of the verification only (tests/t_pixel_clean.py): masks are not drawn, so
         * every file with burned-in identifiers must end in quarantine. */
        if (getenv("MEDVEIL_TEST_BROKEN_MASKS") != NULL)
            pixel.flags |= MV_PIXEL_TEST_BROKEN_MASKS;
        if (review_path != NULL) {
            if (mv_pixel_review_new(&review) != MV_OK) {
                cli_error("deid", "out of memory");
                rc = MV_EXIT_PARTIAL;
                goto out;
            }
            pixel.flags |= MV_PIXEL_THUMBNAILS;
            run.review = review;
        }
        pixel.review = on_pixel_report;
        pixel.review_ctx = &run;
        mv_deid_config_set_pixel(run.cfg, &pixel);
    }
    if (key_path != NULL) {
        uint8_t key[MV_KEY_BYTES];
        MvStatus st = mv_key_load(key_path, key, &err);
        if (st != MV_OK) {
            cli_error("deid", "%s", err.message);
            rc = st == MV_ERR_DENIED ? MV_EXIT_SECURITY : MV_EXIT_USAGE;
            goto out;
        }
        mv_deid_config_set_key(run.cfg, key);
        mv_wipe(key, sizeof key);
    } else if (!quiet) {
        fprintf(stderr, "%s deid: warning: no --key: a random key is used, so pseudonyms and UIDs will not match "
                        "any other run\n", cli_program);
    }
    if (rev_flags != 0 && n_certs == 0) {
        rc = cli_usage_error("deid", "--rsa-pkcs1v15 and --cms-auth-enveloped need --encrypt-originals-to CERT.pem");
        goto out;
    }
    if (n_certs > 0) {
        if (mv_recipients_new(rev_flags, &run.recipients, &err) != MV_OK) {
            cli_error("deid", "%s", err.message);
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
        for (int i = 0; i < n_certs; i++)
            if (mv_recipients_add_file(run.recipients, certs[i], &err) != MV_OK) {
                cli_error("deid", "%s", err.message);
                rc = MV_EXIT_USAGE;
                goto out;
            }
    }
    if (cli_mkdirs(run.out_dir) != 0) {
        cli_error("deid", "%s: %s", run.out_dir, strerror(errno));
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    cli_walk_exclude(run.out_dir);
    if (quarantine_dir != NULL) {
        run.quarantine_dir = strdup(quarantine_dir);
    } else {
        /* OUTDIR-quarantine beside OUTDIR, never inside it: "out/" gives "out-quarantine". */
        size_t len = strlen(run.out_dir);
        while (len > 1 && run.out_dir[len - 1] == '/')
            len--;
        if (asprintf(&run.quarantine_dir, "%.*s-quarantine", (int)len, run.out_dir) < 0)
            run.quarantine_dir = NULL;
    }
    if (run.quarantine_dir == NULL) {
        cli_error("deid", "out of memory");
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    if (cli_mkdirs(run.quarantine_dir) != 0) {
        cli_error("deid", "%s: %s", run.quarantine_dir, strerror(errno));
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    cli_walk_exclude(run.quarantine_dir);

    for (int i = optind; i < argc; i++) {
        const char *arg = argv[i];
        size_t len = strlen(arg);
        int walk_failed = 0;
        while (len > 1 && arg[len - 1] == '/')
            len--;
        while (len > 0 && arg[len - 1] != '/')
            len--;
        run.root_len = len;
        if (cli_walk(&argv[i], 1, add_job, &run, "deid", &walk_failed) != 0) {
            cli_error("deid", "out of memory listing inputs");
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
        if (walk_failed)
            rc = MV_EXIT_PARTIAL;
    }
    for (size_t i = 0; i < run.n_jobs; i++)
        total_bytes += run.jobs[i].size;
    if (run.layout == LAYOUT_MIRROR)
        mark_collisions(&run);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    run.progress = !quiet && isatty(2);
    run.started = time(NULL);
    if (n_threads < 1)
        n_threads = 1;
    if ((size_t)n_threads > run.n_jobs && run.n_jobs > 0)
        n_threads = (long)run.n_jobs;
    threads = calloc((size_t)n_threads, sizeof *threads);
    if (threads == NULL) {
        cli_error("deid", "out of memory");
        rc = MV_EXIT_PARTIAL;
        goto restore;
    }
    for (long t = 0; t < n_threads; t++)
        if (pthread_create(&threads[t], NULL, worker, &run) != 0) {
            cli_error("deid", "cannot start worker threads");
            stop_requested = 1;
            n_threads = t;
            rc = MV_EXIT_PARTIAL;
            break;
        }
    while (run.progress && atomic_load(&run.n_finished) < run.n_jobs && !stop_requested) {
        show_progress(&run, total_bytes, 0);
        usleep(200000);
    }
    for (long t = 0; t < n_threads; t++)
        pthread_join(threads[t], NULL);
    if (run.progress)
        show_progress(&run, total_bytes, 1);
    if (!run.sync_each && !run.no_sync)
        sync_outputs(run.out_dir); /* one sync for the whole run: outputs are durable before we say so */

    for (size_t i = 0; i < run.n_jobs; i++) {
        const Job *job = &run.jobs[i];
        counts[job->status]++;
        if (job->status == ST_SKIPPED || job->status == ST_FAILED || job->status == ST_QUARANTINED)
            if (!quiet || job->status == ST_FAILED)
                cli_error("deid", "%s: %s: %s", job->path, status_names[job->status],
                          job->reason ? job->reason : "");
    }
    if (counts[ST_QUARANTINED] + counts[ST_SKIPPED] + counts[ST_FAILED] + counts[ST_PENDING] > 0)
        rc = MV_EXIT_PARTIAL;
    if (stop_requested)
        fprintf(stderr, "%s deid: interrupted; %d files not processed: rerun the same command to finish\n",
                cli_program, counts[ST_PENDING]);
    if (review != NULL && mv_pixel_review_write(review, review_path, &err) != MV_OK) {
        cli_error("deid", "%s", err.message);
        rc = MV_EXIT_PARTIAL;
    }
    if (report != NULL && write_report(&run, report, counts, stop_requested != 0) != 0) {
        cli_error("deid", "%s: cannot write the report", report);
        rc = MV_EXIT_PARTIAL;
    }
    if (audit_run(&run, cli_home(home_opt), actor, purpose, counts, stop_requested != 0) != 0)
        rc = MV_EXIT_SECURITY;
    if (!quiet)
        fprintf(stderr,
                "%s deid: %d de-identified, %d already done, %d quarantined (in %s), %d skipped, %d failed; key %s\n",
                cli_program, counts[ST_DONE], counts[ST_EXISTS], counts[ST_QUARANTINED], run.quarantine_dir,
                counts[ST_SKIPPED], counts[ST_FAILED], mv_deid_config_fingerprint(run.cfg));
restore:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
out:
    free(threads);
    for (size_t i = 0; i < run.n_jobs; i++) {
        free(run.jobs[i].path);
        free(run.jobs[i].output);
        free(run.jobs[i].reason);
        free(run.jobs[i].pixel_decision);
    }
    free(run.jobs);
    free(run.quarantine_dir);
    free(certs);
    mv_recipients_free(run.recipients);
    mv_deid_config_free(run.cfg);
    mv_pixel_rules_free(pixel_rules);
    mv_pixel_review_free(review);
    pthread_mutex_destroy(&run.lock);
    return rc;
}
