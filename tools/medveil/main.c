/* Entry point of the medveil command-line tool: git-style subcommands, each with its own
 * --help. Only the public API in include/medveil/ is used. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "medveil/dicom.h"

const char *cli_program = "medveil";

static int cmd_help(int argc, char **argv);
static void help_help(FILE *out);
static int cmd_version(int argc, char **argv);
static void help_version(FILE *out);

static const CliCommand commands[] = {
    {"audit", "verify, prove and export the tamper-evident audit log", cmd_audit, help_audit},
    {"convert", "rewrite a DICOM file, in another uncompressed transfer syntax or with edits", cmd_convert,
     help_convert},
    {"deid", "de-identify DICOM files and folders (PS3.15 Annex E, keyed pseudonyms)", cmd_deid, help_deid},
    {"dump", "print every element of DICOM files, as text or DICOM JSON", cmd_dump, help_dump},
    {"help", "show help for a subcommand", cmd_help, help_help},
    {"keygen", "make a new random project key for keyed pseudonyms", cmd_keygen, help_keygen},
    {"preview", "render one frame of a DICOM image to PNG, with detected text boxes", cmd_preview, help_preview},
    {"reidentify", "restore original values from the Encrypted Attributes Sequence", cmd_reidentify,
     help_reidentify},
    {"vault", "keep identified images encrypted: init, put, get, ls, rm, rotate, fsck ...", cmd_vault, help_vault},
    {"verify", "check a de-identification run independently: leaks, UIDs, dates; a score", cmd_verify, help_verify},
    {"version", "print the version", cmd_version, help_version},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s %s: ", cli_program, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s %s: ", cli_program, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s help %s' for more information.\n", cli_program, cmd);
    return MV_EXIT_USAGE;
}

int cli_parse_size(const char *text, unsigned long long *out)
{
    char *end;
    unsigned long long v, mult = 1;

    if (text == NULL || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0)
        return -1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1ull << 10; end++; break;
    case 'm': case 'M': mult = 1ull << 20; end++; break;
    case 'g': case 'G': mult = 1ull << 30; end++; break;
    default: return -1;
    }
    if (*end != '\0' || (v != 0 && mult > ~0ull / v))
        return -1;
    *out = v * mult;
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [--version] [--help] COMMAND [ARGS...]\n"
            "\n"
            "medveil protects patients' privacy in medical images: it reads and writes DICOM\n"
            "exactly, and (as its capabilities land) de-identifies, encrypts and audits them.\n"
            "\n"
            "Commands:\n",
            cli_program);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Run '%s help COMMAND' or '%s COMMAND --help' for a command's options.\n"
            "Exit status: 0 all done; 1 done, but some inputs failed; 2 usage error;\n"
            "3 integrity or security failure. See medveil(1) for more.\n",
            cli_program, cli_program);
}

static const CliCommand *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void help_help(FILE *out)
{
    fprintf(out, "usage: %s help [COMMAND]\n\nShows the help of COMMAND, or the list of commands.\n", cli_program);
}

static int cmd_help(int argc, char **argv)
{
    const CliCommand *c;

    if (argc < 2) {
        usage(stdout);
        return MV_EXIT_OK;
    }
    c = find_command(argv[1]);
    if (c == NULL)
        return cli_usage_error("help", "unknown command '%s'", argv[1]);
    c->help(stdout);
    return MV_EXIT_OK;
}

static void help_version(FILE *out)
{
    fprintf(out, "usage: %s version\n\nPrints the version of the tool and the library.\n", cli_program);
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("medveil %s\n", mv_version());
    return MV_EXIT_OK;
}

int main(int argc, char **argv)
{
    const CliCommand *c;
    struct rlimit no_core = {0, 0};

    /* A core dump of this process would hold patient data: never write one. */
    setrlimit(RLIMIT_CORE, &no_core);
    if (argc < 2) {
        usage(stderr);
        return MV_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return MV_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
        return cmd_version(0, NULL);
    c = find_command(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "%s: '%s' is not a command. See '%s --help'.\n", cli_program, argv[1], cli_program);
        return MV_EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
