/* `medveil convert`: reads one DICOM file and writes it again, in its own transfer syntax
 * or another one (compressed pixel data is decoded and re-encoded through pixel.h when
 * asked), optionally with elements set or removed by tag path. The output appears only
 * when complete; unchanged elements keep their exact bytes. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "medveil/dicom.h"
#include "medveil/pixel.h"

#define MAX_EDITS 256

void help_convert(FILE *out)
{
    fprintf(out,
            "usage: %s convert [OPTIONS] INPUT OUTPUT\n"
            "       %s convert [OPTIONS] INPUT... -o OUTDIR\n"
            "\n"
            "Reads INPUT and writes it to OUTPUT as DICOM Part 10. Elements that are not\n"
            "changed keep their exact bytes; the File Meta Information is rebuilt (group\n"
            "length recomputed). OUTPUT is written under a temporary name, synced and renamed,\n"
            "so it is either complete or untouched. Use - as OUTPUT for standard output.\n"
            "With -o, every file of the INPUT files and folders is written under OUTDIR with\n"
            "the same relative path (a folder's own name is kept); files that cannot be read\n"
            "are named on stderr and the others are still written.\n"
            "\n"
            "Encoding (default: keep the input's transfer syntax):\n"
            "  -i, --implicit          Implicit VR Little Endian\n"
            "  -e, --explicit          Explicit VR Little Endian\n"
            "  -b, --big-endian        Explicit VR Big Endian (retired, for old systems)\n"
            "  -z, --deflate[=LEVEL]   Deflated Explicit VR Little Endian (LEVEL 1-9)\n"
            "  -t, --transfer-syntax UID\n"
            "                          any of the above by UID, or a lossless compressed\n"
            "                          syntax the pixels are re-encoded in: RLE Lossless\n"
            "                          1.2.840.10008.1.2.5, JPEG Lossless SV1 1.2.840.10008.1.2.4.70,\n"
            "                          JPEG-LS Lossless 1.2.840.10008.1.2.4.80, JPEG 2000\n"
            "                          Lossless 1.2.840.10008.1.2.4.90; an uncompressed\n"
            "                          target decodes a compressed input (as --decompress)\n"
            "  -d, --decompress        decode compressed pixel data (RLE, JPEG, JPEG-LS,\n"
            "                          JPEG 2000) and write it native, in Explicit VR Little\n"
            "                          Endian unless -i/-b/-z says otherwise; colour stored as\n"
            "                          YBR_FULL_422 or lossy JPEG YBR becomes RGB; lossy inputs\n"
            "                          keep Lossy Image Compression \"01\" (see docs/pixel.md)\n"
            "\n"
            "Edits, applied in order:\n"
            "  -s, --set PATH=VALUE    set a text element; PATH is a tag, a keyword or a path\n"
            "                          into sequences: ReferencedSeriesSequence[0].SeriesInstanceUID\n"
            "                          (missing sequences and the next item are created)\n"
            "  -r, --remove PATH       remove an element (an error if absent)\n"
            "\n"
            "  -o, --output-dir OUTDIR write every input under OUTDIR (created if missing)\n"
            "  -q, --quiet             no progress line on a terminal\n"
            "  -n, --no-sync           do not fsync the output (faster; for pipelines)\n"
            "      --zero-preamble     write 128 zero bytes as preamble, whatever the input had\n"
            "  -h, --help              show this help\n"
            "\n"
            "Exit status: 0 all written; 1 some input could not be read or written (nothing\n"
            "is left at its OUTPUT); 2 usage error.\n"
            "\n"
            "Examples:\n"
            "  %s convert -e in.dcm out.dcm\n"
            "  %s convert --set PatientName=Anonymous^Test --remove 0010,1040 in.dcm out.dcm\n"
            "  %s convert -e -o converted/ study1/ study2/\n"
            "  %s convert --decompress jpeg.dcm native.dcm\n"
            "  %s convert -t 1.2.840.10008.1.2.5 native.dcm rle.dcm\n",
            cli_program, cli_program, cli_program, cli_program, cli_program, cli_program, cli_program);
}

typedef struct ConvertCtx {
    MvWriteOptions wopts;
    const char **edits;
    const char *kinds;
    int n_edits;
    int decompress;        /* --decompress */
    const char *out_dir;
    const char *root;      /* the INPUT argument being walked */
    size_t root_len;       /* length of root's parent prefix, kept out of output paths */
    int n_ok, n_failed, usage_failed, progress;
} ConvertCtx;

/* Applies the --set/--remove edits in order. Returns an exit status. */
static int apply_edits(ConvertCtx *ctx, MvFile *file, const char *name)
{
    MvError err;

    for (int i = 0; i < ctx->n_edits; i++) {
        MvStatus st;
        if (ctx->kinds[i] == 's') {
            const char *eq = strchr(ctx->edits[i], '=');
            char *path = strndup(ctx->edits[i], (size_t)(eq - ctx->edits[i]));
            if (path == NULL) {
                cli_error("convert", "out of memory");
                return MV_EXIT_PARTIAL;
            }
            st = mv_path_set_string(mv_file_dataset(file), path, eq + 1, &err);
            free(path);
        } else {
            st = mv_path_remove(mv_file_dataset(file), ctx->edits[i], &err);
        }
        if (st != MV_OK) {
            cli_error("convert", "%s: %s: %s", name, ctx->kinds[i] == 's' ? "--set" : "--remove", err.message);
            return st == MV_ERR_ARG ? MV_EXIT_USAGE : MV_EXIT_PARTIAL;
        }
    }
    return MV_EXIT_OK;
}


/* Decodes the pixel data and encodes it again in the syntax asked for, when the pixels
 * must change encoding: --decompress of encapsulated data, or a compressed target. */
static int transcode_pixels(ConvertCtx *ctx, MvFile *file, const char *name)
{
    const MvTransferSyntax *from = mv_file_transfer_syntax(file);
    const MvTransferSyntax *to = ctx->wopts.transfer_syntax ? mv_ts_lookup(ctx->wopts.transfer_syntax) : NULL;
    MvPixelEncodeOptions popts;
    MvImage *image = NULL;
    MvError err;
    /* An uncompressed target (-e/-i/-b/-z or --decompress) of a compressed input needs the
     * pixels decoded; a compressed target needs them encoded. */
    int needed = (to != NULL && to->encapsulated && to != from) ||
                 ((ctx->decompress || (to != NULL && !to->encapsulated)) && from != NULL && from->encapsulated);

    if (!needed || mv_dataset_find(mv_file_dataset(file), MV_TAG_PIXEL_DATA) == NULL)
        return MV_EXIT_OK;
    mv_pixel_encode_options_init(&popts);
    popts.transfer_syntax = to != NULL ? to->uid : MV_UID_EXPLICIT_LE;
    if (mv_image_decode(file, NULL, &image, &err) != MV_OK ||
        mv_image_encode(file, image, &popts, &err) != MV_OK) {
        mv_image_free(image);
        cli_error("convert", "%s", err.message);
        return MV_EXIT_PARTIAL;
    }
    mv_image_free(image);
    (void)name;
    return MV_EXIT_OK;
}

static int convert_one(ConvertCtx *ctx, const char *in, const char *out)
{
    MvFile *file = NULL;
    MvError err;
    int rc;

    if (mv_file_open(in, NULL, &file, &err) != MV_OK) {
        cli_error("convert", "%s", err.message);
        return MV_EXIT_PARTIAL;
    }
    rc = transcode_pixels(ctx, file, in);
    if (rc == MV_EXIT_OK)
        rc = apply_edits(ctx, file, in);
    if (rc == MV_EXIT_OK) {
        MvStatus st = strcmp(out, "-") == 0 ? mv_file_write_fd(file, 1, &ctx->wopts, &err)
                                            : mv_file_write(file, out, &ctx->wopts, &err);
        if (st != MV_OK) {
            cli_error("convert", "%s: %s", in, err.message);
            rc = MV_EXIT_PARTIAL;
        }
    }
    mv_file_free(file);
    return rc;
}

static int convert_into_dir(const char *path, void *arg)
{
    ConvertCtx *ctx = arg;
    char out[PATH_MAX];
    const char *rel = path + ctx->root_len;
    int rc, n;

    while (*rel == '/')
        rel++;
    n = snprintf(out, sizeof out, "%s/%s", ctx->out_dir, rel);
    if (n < 0 || (size_t)n >= sizeof out || cli_make_parents(out) != 0) {
        cli_error("convert", "%s: cannot create the output folder under %s", path, ctx->out_dir);
        ctx->n_failed++;
        return 0;
    }
    rc = convert_one(ctx, path, out);
    if (rc == MV_EXIT_OK)
        ctx->n_ok++;
    else if (rc == MV_EXIT_USAGE)
        ctx->usage_failed = 1;
    else
        ctx->n_failed++;
    if (ctx->progress && (ctx->n_ok + ctx->n_failed) % 100 == 0)
        fprintf(stderr, "\rconverted %d files, %d failed", ctx->n_ok, ctx->n_failed);
    return ctx->usage_failed ? -1 : 0;
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
        {"decompress", no_argument, NULL, 'd'},
        {"set", required_argument, NULL, 's'},
        {"remove", required_argument, NULL, 'r'},
        {"output-dir", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"no-sync", no_argument, NULL, 'n'},
        {"zero-preamble", no_argument, NULL, OPT_ZERO_PREAMBLE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ConvertCtx ctx;
    const char *edits[MAX_EDITS];
    char kinds[MAX_EDITS];
    int c, quiet = 0, n_edits = 0;
    unsigned long long level;

    memset(&ctx, 0, sizeof ctx);
    mv_write_options_init(&ctx.wopts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":iebz::t:ds:r:o:qnh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': ctx.wopts.transfer_syntax = MV_UID_IMPLICIT_LE; break;
        case 'e': ctx.wopts.transfer_syntax = MV_UID_EXPLICIT_LE; break;
        case 'b': ctx.wopts.transfer_syntax = MV_UID_EXPLICIT_BE; break;
        case 'z':
            ctx.wopts.transfer_syntax = MV_UID_DEFLATED_LE;
            if (optarg != NULL) {
                if (cli_parse_size(optarg, &level) != 0 || level < 1 || level > 9)
                    return cli_usage_error("convert", "--deflate level must be 1 to 9, not '%s'", optarg);
                ctx.wopts.deflate_level = (int)level;
            }
            break;
        case 't':
            if (mv_ts_lookup(optarg) == NULL)
                return cli_usage_error("convert", "'%s' is not a transfer syntax UID medveil knows", optarg);
            ctx.wopts.transfer_syntax = optarg;
            break;
        case 'd': ctx.decompress = 1; break;
        case 's': case 'r':
            if (n_edits == MAX_EDITS)
                return cli_usage_error("convert", "more than %d edits", MAX_EDITS);
            if (c == 's' && strchr(optarg, '=') == NULL)
                return cli_usage_error("convert", "--set needs PATH=VALUE (edit %d has no '=')", n_edits + 1);
            kinds[n_edits] = (char)c;
            edits[n_edits++] = optarg;
            break;
        case 'o': ctx.out_dir = optarg; break;
        case 'q': quiet = 1; break;
        case 'n': ctx.wopts.flags |= MV_WRITE_NO_SYNC; break;
        case OPT_ZERO_PREAMBLE: ctx.wopts.flags |= MV_WRITE_ZERO_PREAMBLE; break;
        case 'h': help_convert(stdout); return MV_EXIT_OK;
        case ':': return cli_usage_error("convert", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("convert", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (ctx.decompress && ctx.wopts.transfer_syntax != NULL && mv_ts_lookup(ctx.wopts.transfer_syntax)->encapsulated)
        return cli_usage_error("convert", "--decompress writes native pixel data; it cannot go with a compressed -t");
    ctx.edits = edits;
    ctx.kinds = kinds;
    ctx.n_edits = n_edits;
    if (ctx.out_dir == NULL) {
        if (argc - optind != 2)
            return cli_usage_error("convert", "needs an INPUT and an OUTPUT, or INPUT... -o OUTDIR");
        return convert_one(&ctx, argv[optind], argv[optind + 1]);
    }
    if (argc - optind < 1)
        return cli_usage_error("convert", "no INPUT given");
    if (cli_mkdirs(ctx.out_dir) != 0) {
        cli_error("convert", "%s: %s", ctx.out_dir, strerror(errno));
        return MV_EXIT_PARTIAL;
    }
    cli_walk_exclude(ctx.out_dir);
    ctx.progress = !quiet && isatty(2);
    for (int i = optind; i < argc && !ctx.usage_failed; i++) {
        /* Output paths keep the input's last component: in/a/x.dcm -> OUTDIR/a/x.dcm. */
        const char *arg = argv[i];
        size_t len = strlen(arg);
        while (len > 1 && arg[len - 1] == '/')
            len--;
        while (len > 0 && arg[len - 1] != '/')
            len--;
        ctx.root_len = len;
        cli_walk(&argv[i], 1, convert_into_dir, &ctx, "convert", &ctx.n_failed);
    }
    if (ctx.progress)
        fprintf(stderr, "\r\033[K");
    if (!quiet)
        fprintf(stderr, "%s convert: %d written, %d failed\n", cli_program, ctx.n_ok, ctx.n_failed);
    if (ctx.usage_failed)
        return MV_EXIT_USAGE;
    return ctx.n_failed > 0 ? MV_EXIT_PARTIAL : MV_EXIT_OK;
}
