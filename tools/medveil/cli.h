/* Shared declarations of the medveil command-line tool: the subcommand table, exit
 * statuses of the DESIGN.md contract, and small helpers every subcommand uses. */
#ifndef MV_CLI_H
#define MV_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Exit statuses (DESIGN.md "The command line"). */
enum {
    MV_EXIT_OK = 0,        /* all done */
    MV_EXIT_PARTIAL = 1,   /* done, but some inputs failed */
    MV_EXIT_USAGE = 2,     /* usage or configuration error */
    MV_EXIT_SECURITY = 3   /* integrity or security failure */
};

typedef struct CliCommand {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *out);
} CliCommand;

extern const char *cli_program;

int cmd_dump(int argc, char **argv);
void help_dump(FILE *out);
int cmd_convert(int argc, char **argv);
void help_convert(FILE *out);
int cmd_deid(int argc, char **argv);
void help_deid(FILE *out);
int cmd_keygen(int argc, char **argv);
void help_keygen(FILE *out);
int cmd_verify(int argc, char **argv);
void help_verify(FILE *out);
int cmd_vault(int argc, char **argv);
void help_vault(FILE *out);
int cmd_audit(int argc, char **argv);
void help_audit(FILE *out);
int cmd_preview(int argc, char **argv);
void help_preview(FILE *out);
int cmd_reidentify(int argc, char **argv);
void help_reidentify(FILE *out);

/* Prints "medveil CMD: message" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a usage error and a hint to run --help; returns MV_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a byte count with an optional K/M/G suffix; 0 on success. */
int cli_parse_size(const char *text, unsigned long long *out);

/* Calls fn for every regular file under each path (directories recursively, in name
 * order); errors reaching a path are reported and counted in *n_failed. */
typedef int (*CliFileFn)(const char *path, void *ctx);
int cli_walk(char **paths, int n_paths, CliFileFn fn, void *ctx, const char *cmd, int *n_failed);
/* Makes cli_walk skip the folder dir (an output folder inside an input folder). */
void cli_walk_exclude(const char *dir);
/* mkdir -p: 0 on success, -1 with errno set. */
int cli_mkdirs(const char *dir);
/* Creates every missing folder above the file path; remembers, per thread, the last
 * parent made, since files of one folder usually come together. */
int cli_make_parents(const char *path);
/* One syncfs(2) of the file system that holds the folder dir: everything written there
 * (files and renames) is durable afterwards. Cheaper than an fsync per file for a batch.
 * 0, or -1 with errno set. */
int cli_sync_fs(const char *dir);

/* Before OCR: re-executes the program once with OMP_THREAD_LIMIT=1 (cli_pixel.c) unless it
 * is already set; returns only if nothing was done or the exec failed. */
void cli_pixel_env(void);

/* The home folder (DESIGN.md): opt when not NULL, else $MEDVEIL_HOME, else ./.medveil. */
const char *cli_home(const char *opt);

/* One audit event (issue 6). Objects are opaque vault ids or UIDs, never names or IDs. */
typedef struct CliAuditEvent {
    const char *action;         /* "vault.put", "vault.get", "deid", "auth.unlock" ... */
    const char *const *objects; /* may be NULL when n_objects is 0 */
    size_t n_objects;
    const char *outcome;        /* "success", "failure" or "denied" */
    const char *actor;          /* --as; NULL: the OS user */
    const char *purpose;        /* --purpose; may be NULL */
    const char *detail;         /* short free text without patient data; may be NULL */
} CliAuditEvent;
/* Appends ev durably to the audit log of HOME (creating it on first use). Every command that
 * reads or changes protected data calls it before reporting success. Returns 0, or -1 after
 * printing why: the command must then fail with MV_EXIT_SECURITY. */
int cli_audit(const char *home, const CliAuditEvent *ev);
/* Appends n events with one write and one fsync (all or none); 0, or -1 after printing why. */
int cli_audit_many(const char *home, const CliAuditEvent *evs, size_t n);

#endif
