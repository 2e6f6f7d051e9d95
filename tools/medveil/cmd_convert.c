/* `medveil convert`: reads one DICOM file and writes it again, in its own transfer syntax
 * or another uncompressed one, optionally with elements set or removed by tag path. The
 * output appears only when complete; unchanged elements keep their exact bytes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "medveil/dicom.h"

#define MAX_EDITS 256

void help_convert(FILE *out)
{
    fprintf(out,
            "usage: %s convert [OPTIONS] INPUT OUTPUT\n"
            "\n"
            "Reads INPUT and writes it to OUTPUT as DICOM Part 10. Elements that are not\n"
            "changed keep their exact bytes; the File Meta Information is rebuilt (group\n"
            "length recomputed). OUTPUT is written under a temporary name, synced and renamed,\n"
            "so it is either complete or untouched. Use - as OUTPUT for standard output.\n"
            "\n"
            "Encoding (default: keep the input's transfer syntax):\n"
            "  -i, --implicit          Implicit VR Little Endian\n"
            "  -e, --explicit          Explicit VR Little Endian\n"
            "  -b, --big-endian        Explicit VR Big Endian (retired, for old systems)\n"
            "  -z, --deflate[=LEVEL]   Deflated Explicit VR Little Endian (LEVEL 1-9)\n"
            "  -t, --transfer-syntax UID\n"
            "                          any of the above by UID; an encapsulated (compressed)\n"
            "                          input can only be written in its own syntax\n"
            "\n"
            "Edits, applied in order:\n"
            "  -s, --set PATH=VALUE    set a text element; PATH is a tag, a keyword or a path\n"
            "                          into sequences: ReferencedSeriesSequence[0].SeriesInstanceUID\n"
            "                          (missing sequences and the next item are created)\n"
            "  -r, --remove PATH       remove an element (an error if absent)\n"
            "\n"
            "  -n, --no-sync           do not fsync the output (faster; for pipelines)\n"
            "      --zero-preamble     write 128 zero bytes as preamble, whatever the input had\n"
            "  -h, --help              show this help\n"
            "\n"
            "Exit status: 0 written; 1 the input could not be read or written (nothing is\n"
            "left at OUTPUT); 2 usage error.\n"
            "\n"
            "Examples:\n"
            "  %s convert -e in.dcm out.dcm\n"
            "  %s convert --set PatientName=Anonymous^Test --remove 0010,1040 in.dcm out.dcm\n",
            cli_program, cli_program, cli_program);
}

int cmd_convert(int argc, char **argv)
{
    enum { OPT_ZERO_PREAMBLE = 256 };
    static const struct option longopts[] = {
        {"implicit", no_argument, NULL, 'i'},
        {"explicit", no_argument, NULL, 'e'},
        {"big-endian", no_argument, NULL, 'b'},
        {"deflate", optional_argument, NULL, 'z'},
        {"transfer-syntax", required_argument, NULL, 't'},
        {"set", required_argument, NULL, 's'},
        {"remove", required_argument, NULL, 'r'},
        {"no-sync", no_argument, NULL, 'n'},
        {"zero-preamble", no_argument, NULL, OPT_ZERO_PREAMBLE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    MvWriteOptions wopts;
    MvFile *file = NULL;
    MvError err;
    const char *edits[MAX_EDITS];
    char kinds[MAX_EDITS];
    int n_edits = 0, c, rc = MV_EXIT_OK;
    unsigned long long level;

    mv_write_options_init(&wopts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":iebz::t:s:r:nh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': wopts.transfer_syntax = MV_UID_IMPLICIT_LE; break;
        case 'e': wopts.transfer_syntax = MV_UID_EXPLICIT_LE; break;
        case 'b': wopts.transfer_syntax = MV_UID_EXPLICIT_BE; break;
        case 'z':
            wopts.transfer_syntax = MV_UID_DEFLATED_LE;
            if (optarg != NULL) {
                if (cli_parse_size(optarg, &level) != 0 || level < 1 || level > 9)
                    return cli_usage_error("convert", "--deflate level must be 1 to 9, not '%s'", optarg);
                wopts.deflate_level = (int)level;
            }
            break;
        case 't':
            if (mv_ts_lookup(optarg) == NULL)
                return cli_usage_error("convert", "'%s' is not a transfer syntax UID medveil knows", optarg);
            wopts.transfer_syntax = optarg;
            break;
        case 's': case 'r':
            if (n_edits == MAX_EDITS)
                return cli_usage_error("convert", "more than %d edits", MAX_EDITS);
            if (c == 's' && strchr(optarg, '=') == NULL)
                return cli_usage_error("convert", "--set needs PATH=VALUE, not '%s'", optarg);
            kinds[n_edits] = (char)c;
            edits[n_edits++] = optarg;
            break;
        case 'n': wopts.flags |= MV_WRITE_NO_SYNC; break;
        case OPT_ZERO_PREAMBLE: wopts.flags |= MV_WRITE_ZERO_PREAMBLE; break;
        case 'h': help_convert(stdout); return MV_EXIT_OK;
        case ':': return cli_usage_error("convert", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("convert", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("convert", "needs exactly an INPUT and an OUTPUT");
    if (mv_file_open(argv[optind], NULL, &file, &err) != MV_OK) {
        cli_error("convert", "%s", err.message);
        return MV_EXIT_PARTIAL;
    }
    for (int i = 0; i < n_edits && rc == MV_EXIT_OK; i++) {
        MvStatus st;
        if (kinds[i] == 's') {
            const char *eq = strchr(edits[i], '=');
            char *path = strndup(edits[i], (size_t)(eq - edits[i]));
            if (path == NULL) {
                cli_error("convert", "out of memory");
                rc = MV_EXIT_PARTIAL;
                break;
            }
            st = mv_path_set_string(mv_file_dataset(file), path, eq + 1, &err);
            free(path);
        } else {
            st = mv_path_remove(mv_file_dataset(file), edits[i], &err);
        }
        if (st != MV_OK) {
            cli_error("convert", "%s: %s", kinds[i] == 's' ? "--set" : "--remove", err.message);
            rc = st == MV_ERR_ARG ? MV_EXIT_USAGE : MV_EXIT_PARTIAL;
        }
    }
    if (rc == MV_EXIT_OK) {
        MvStatus st = strcmp(argv[optind + 1], "-") == 0 ? mv_file_write_fd(file, 1, &wopts, &err)
                                                          : mv_file_write(file, argv[optind + 1], &wopts, &err);
        if (st != MV_OK) {
            cli_error("convert", "%s", err.message);
            rc = MV_EXIT_PARTIAL;
        }
    }
    mv_file_free(file);
    return rc;
}
