/* `medveil keygen`: a new random 256-bit project key for keyed pseudonyms, written to a
 * file of mode 0600 that is never overwritten. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "medveil/deid.h"

void help_keygen(FILE *out)
{
    fprintf(out,
            "usage: %s keygen -o FILE\n"
            "\n"
            "Writes a new random 256-bit project key to FILE (mode 0600; an existing file is\n"
            "never overwritten) and prints its public fingerprint. `medveil deid --key FILE`\n"
            "derives every pseudonym, UID and date shift from it with HMAC-SHA256, so the same\n"
            "input gives the same output on every machine, in every run, in any order. Keep the\n"
            "key secret and backed up: whoever has it can test guesses of original identifiers;\n"
            "whoever loses it can no longer produce matching pseudonyms for new data.\n"
            "\n"
            "Options:\n"
            "  -o, --output FILE   where to write the key (required)\n"
            "  -h, --help          show this help\n"
            "\n"
            "Exit status: 0 written; 1 the file exists or cannot be written; 2 usage error.\n",
            cli_program);
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    uint8_t key[MV_KEY_BYTES];
    char fingerprint[24];
    MvError err;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': path = optarg; break;
        case 'h': help_keygen(stdout); return MV_EXIT_OK;
        case ':': return cli_usage_error("keygen", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("keygen", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (path == NULL || optind != argc)
        return cli_usage_error("keygen", "needs -o FILE and nothing else");
    if (mv_key_generate(path, &err) != MV_OK) {
        cli_error("keygen", "%s", err.message);
        return MV_EXIT_PARTIAL;
    }
    if (mv_key_load(path, key, &err) != MV_OK) {
        cli_error("keygen", "%s", err.message);
        return MV_EXIT_PARTIAL;
    }
    mv_key_fingerprint(key, fingerprint);
    mv_wipe(key, sizeof key);
    printf("wrote %s (fingerprint %s)\n", path, fingerprint);
    return MV_EXIT_OK;
}
