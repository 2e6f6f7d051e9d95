/* `medveil dump`: every element of each file, as an indented text listing or as the
 * DICOM JSON model (PS3.18 F.2). A file that cannot be read is reported on stderr with the
 * file, tag and offset, and makes the exit status 1; the others are still dumped. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "medveil/dicom.h"

typedef struct DumpCtx {
    int json;
    int n_ok, n_failed, n_json;
    MvReadOptions ropts;
    MvDumpOptions dopts;
    MvJsonOptions jopts;
} DumpCtx;

void help_dump(FILE *out)
{
    fprintf(out,
            "usage: %s dump [OPTIONS] FILE|FOLDER...\n"
            "\n"
            "Prints every element of each DICOM file: tag, VR, value, length, VM and keyword,\n"
            "with the items of sequences indented, in the layout of dcmdump. Folders are read\n"
            "recursively. Text is shown in UTF-8 whatever its Specific Character Set.\n"
            "\n"
            "Options:\n"
            "  -j, --json              print the DICOM JSON model (PS3.18 Annex F) instead;\n"
            "                          several files give a JSON array of objects\n"
            "      --bulk              with --json, include every binary value as InlineBinary\n"
            "                          (by default values over --bulk-threshold are left out)\n"
            "      --bulk-threshold N  largest binary value inlined without --bulk (1024)\n"
            "      --pretty            with --json, indent the output\n"
            "      --meta              with --json, include the File Meta Information\n"
            "      --no-meta           in text, leave out the File Meta Information\n"
            "  -w, --width N           cut text values after N characters (64)\n"
            "  -f, --full              never cut values\n"
            "  -o, --offsets           start each line with the element's byte offset\n"
            "      --max-length BYTES  refuse elements longer than BYTES (K, M, G suffixes)\n"
            "      --max-depth N       refuse sequences nested deeper than N (64)\n"
            "  -h, --help              show this help\n"
            "\n"
            "Exit status: 0 every file was read; 1 some file could not be read (each is named\n"
            "on stderr with the offset and tag where reading stopped); 2 usage error.\n"
            "\n"
            "Examples:\n"
            "  %s dump scan.dcm\n"
            "  %s dump --json --pretty scan.dcm | less\n"
            "  %s dump -o --full study/ > study.txt\n",
            cli_program, cli_program, cli_program, cli_program);
}

static int dump_one(const char *path, void *arg)
{
    DumpCtx *ctx = arg;
    MvFile *file = NULL;
    MvError err;
    MvStatus st;

    st = mv_file_open(path, &ctx->ropts, &file, &err);
    if (st != MV_OK) {
        cli_error("dump", "%s", err.message);
        ctx->n_failed++;
        return 0;
    }
    if (ctx->json) {
        if (ctx->n_json++ > 0)
            fputs(",\n", stdout);
        st = mv_json_write(file, stdout, &ctx->jopts, &err);
    } else {
        st = mv_dump_write(file, stdout, &ctx->dopts, &err);
    }
    if (st != MV_OK) {
        cli_error("dump", "%s: %s", path, err.message);
        ctx->n_failed++;
    } else {
        ctx->n_ok++;
    }
    mv_file_free(file);
    return 0;
}

int cmd_dump(int argc, char **argv)
{
    enum { OPT_BULK = 256, OPT_BULK_THRESHOLD, OPT_PRETTY, OPT_META, OPT_NO_META, OPT_MAX_LENGTH, OPT_MAX_DEPTH };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"bulk", no_argument, NULL, OPT_BULK},
        {"bulk-threshold", required_argument, NULL, OPT_BULK_THRESHOLD},
        {"pretty", no_argument, NULL, OPT_PRETTY},
        {"meta", no_argument, NULL, OPT_META},
        {"no-meta", no_argument, NULL, OPT_NO_META},
        {"width", required_argument, NULL, 'w'},
        {"full", no_argument, NULL, 'f'},
        {"offsets", no_argument, NULL, 'o'},
        {"max-length", required_argument, NULL, OPT_MAX_LENGTH},
        {"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    DumpCtx ctx;
    unsigned long long n;
    int c, multi, rc;
    static char outbuf[1 << 20];

    memset(&ctx, 0, sizeof ctx);
    mv_read_options_init(&ctx.ropts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":jw:foh", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': ctx.json = 1; break;
        case OPT_BULK: ctx.jopts.flags |= MV_JSON_BULK; break;
        case OPT_BULK_THRESHOLD:
            if (cli_parse_size(optarg, &n) != 0 || n == 0)
                return cli_usage_error("dump", "--bulk-threshold needs a positive byte count, not '%s'", optarg);
            ctx.jopts.bulk_threshold = (size_t)n;
            break;
        case OPT_PRETTY: ctx.jopts.flags |= MV_JSON_PRETTY; break;
        case OPT_META: ctx.jopts.flags |= MV_JSON_META; break;
        case OPT_NO_META: ctx.dopts.flags |= MV_DUMP_NO_META; break;
        case 'w':
            if (cli_parse_size(optarg, &n) != 0 || n == 0 || n > 1000000)
                return cli_usage_error("dump", "--width needs a number of characters, not '%s'", optarg);
            ctx.dopts.max_value_chars = (size_t)n;
            break;
        case 'f': ctx.dopts.flags |= MV_DUMP_FULL; break;
        case 'o': ctx.dopts.flags |= MV_DUMP_OFFSETS; break;
        case OPT_MAX_LENGTH:
            if (cli_parse_size(optarg, &n) != 0 || n == 0)
                return cli_usage_error("dump", "--max-length needs a byte count like 64M, not '%s'", optarg);
            ctx.ropts.max_element_length = n;
            break;
        case OPT_MAX_DEPTH:
            if (cli_parse_size(optarg, &n) != 0 || n == 0 || n > 10000)
                return cli_usage_error("dump", "--max-depth needs a number from 1 to 10000, not '%s'", optarg);
            ctx.ropts.max_depth = (uint32_t)n;
            break;
        case 'h': help_dump(stdout); return MV_EXIT_OK;
        case ':': return cli_usage_error("dump", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("dump", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("dump", "no FILE given");
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    multi = argc - optind > 1;
    if (!multi) {
        /* One folder argument may still expand to several files. */
        struct stat sb;
        multi = stat(argv[optind], &sb) == 0 && S_ISDIR(sb.st_mode);
    }
    if (ctx.json && multi)
        fputs("[\n", stdout);
    rc = cli_walk(argv + optind, argc - optind, dump_one, &ctx, "dump", &ctx.n_failed);
    if (ctx.json && multi)
        fputs("\n]\n", stdout);
    else if (ctx.json && ctx.n_json > 0)
        fputs("\n", stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("dump", "cannot write to standard output");
        return MV_EXIT_PARTIAL;
    }
    if (rc != 0)
        return MV_EXIT_PARTIAL;
    return ctx.n_failed > 0 ? MV_EXIT_PARTIAL : MV_EXIT_OK;
}
