/* `medveil preview`: one frame of a DICOM image as a windowed PNG, with the boxes that
 * clean-pixel-data would see (rule regions, identifiers, other words) drawn when asked,
 * so a person can check what the cleaner finds before and after a run. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "medveil/dicom.h"
#include "medveil/pixel_clean.h"

void help_preview(FILE *out)
{
    fprintf(out,
            "usage: %s preview FILE -o OUT.png [--frame N] [--boxes] [--window C,W]\n"
            "\n"
            "Renders one frame of a DICOM image to an 8-bit PNG: monochrome images through a\n"
            "window (the file's first Window Center/Width, else the frame's full range;\n"
            "MONOCHROME1 is shown inverted), colour images as they are. With --boxes the\n"
            "frame is read with OCR as 'deid --option clean-pixel-data' reads it, and the\n"
            "boxes are drawn: blue, regions of matching pixel rules; red, words that match an\n"
            "identifier of the file or an identifier-shaped pattern (these would be masked);\n"
            "yellow, other words read. The words are listed on stderr with their boxes.\n"
            "The PNG may show patient data: it is written with mode 0600.\n"
            "\n"
            "Options:\n"
            "  -o, --output FILE.png   where to write the PNG (required)\n"
            "  -f, --frame N           frame number, 1-based (default 1)\n"
            "  -b, --boxes             draw rule regions and OCR boxes (see above)\n"
            "  -w, --window C,W        window center and width in modality units (after\n"
            "                          Rescale Slope/Intercept), e.g. 40,400 for CT soft tissue\n"
            "      --pixel-rules FILE  rules used for --boxes instead of the starter set\n"
            "                          (format in docs/pixel-clean.md); repeatable\n"
            "  -h, --help              show this help\n"
            "\n"
            "Exit status: 0 written; 1 the file cannot be read or decoded, or the frame does\n"
            "not exist; 2 usage error (a malformed rules file too).\n"
            "\n"
            "Examples:\n"
            "  %s preview us.dcm -o us.png --boxes\n"
            "  %s preview ct.dcm -o ct.png --window 40,400\n"
            "  %s preview cine.dcm -o f10.png --frame 10\n",
            cli_program, cli_program, cli_program, cli_program);
}

int cmd_preview(int argc, char **argv)
{
    enum { OPT_RULES = 256 };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},  {"frame", required_argument, NULL, 'f'},
        {"boxes", no_argument, NULL, 'b'},         {"window", required_argument, NULL, 'w'},
        {"pixel-rules", required_argument, NULL, OPT_RULES}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    MvPixelPreviewOptions opts;
    MvPixelReport report;
    MvPixelRules *rules = NULL;
    MvFile *file = NULL;
    MvError err;
    const char *output = NULL;
    unsigned long long frame = 1;
    int c, rc = MV_EXIT_OK;

    memset(&report, 0, sizeof report);
    mv_pixel_preview_options_init(&opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:f:bw:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'f':
            if (cli_parse_size(optarg, &frame) != 0 || frame < 1 || frame > 0xFFFFFFFFull) {
                rc = cli_usage_error("preview", "--frame needs a frame number from 1, not '%s'", optarg);
                goto out;
            }
            break;
        case 'b': opts.boxes = 1; break;
        case 'w': {
            char extra;
            if (sscanf(optarg, "%lf,%lf%c", &opts.center, &opts.width, &extra) != 2 || !(opts.width >= 1) ||
                opts.center != opts.center) {
                rc = cli_usage_error("preview", "--window needs CENTER,WIDTH with WIDTH >= 1, not '%s'", optarg);
                goto out;
            }
            opts.has_window = 1;
            break;
        }
        case OPT_RULES:
            if (rules == NULL && mv_pixel_rules_new(&rules) != MV_OK) {
                cli_error("preview", "out of memory");
                rc = MV_EXIT_PARTIAL;
                goto out;
            }
            if (mv_pixel_rules_load(rules, optarg, &err) != MV_OK) {
                cli_error("preview", "%s", err.message);
                rc = MV_EXIT_USAGE;
                goto out;
            }
            break;
        case 'h': help_preview(stdout); goto out;
        case ':': rc = cli_usage_error("preview", "option '%s' needs a value", argv[optind - 1]); goto out;
        default: rc = cli_usage_error("preview", "unknown option '%s'", argv[optind - 1]); goto out;
        }
    }
    if (optind != argc - 1) {
        rc = cli_usage_error("preview", optind >= argc ? "no FILE given" : "one FILE at a time");
        goto out;
    }
    if (output == NULL) {
        rc = cli_usage_error("preview", "needs -o OUT.png");
        goto out;
    }
    if (opts.boxes)
        cli_pixel_env();
    opts.frame = (size_t)(frame - 1);
    opts.rules = rules;
    if (mv_file_open(argv[optind], NULL, &file, &err) != MV_OK) {
        cli_error("preview", "%s", err.message);
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    if (mv_pixel_preview(file, &opts, output, &report, &err) != MV_OK) {
        cli_error("preview", "%s: %s", argv[optind], err.message);
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    for (size_t i = 0; i < report.n_boxes; i++) {
        const MvPixelBox *b = &report.boxes[i];
        fprintf(stderr, "%s %d,%d %dx%d %s%s conf %.0f: %s\n", b->source == MV_BOX_RULE ? "rule" : "ocr ", b->x,
                b->y, b->width, b->height, b->kind, b->masked && b->source == MV_BOX_OCR ? " (masked)" : "",
                (double)b->confidence, b->text);
    }
out:
    mv_pixel_report_clear(&report);
    mv_file_free(file);
    mv_pixel_rules_free(rules);
    mv_pixel_ocr_release();
    return rc;
}
