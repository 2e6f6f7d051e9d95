/* Unit tests of burned-in text cleaning on images made in memory (src/pixel/clean.c and
 * render.c): VOI window rendering and MONOCHROME1 inversion, the value that displays black
 * for each photometric interpretation, masks that change nothing outside their box on any
 * frame, and mv_pixel_clean_file's decisions: not decoded when the header says so, rule
 * regions masked exactly, rule quarantine with file and line, a flagged image with no
 * readable text quarantined, undecodable pixels quarantined, visual features. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "medveil/dicom.h"
#include "medveil/pixel.h"
#include "medveil/pixel_clean.h"
#include "pixel/render_int.h"

static MvImage *gradient(uint32_t rows, uint32_t cols, uint32_t frames, uint16_t spp, uint16_t bits)
{
    MvImage *img = NULL;
    MvError err;

    assert_int_equal(mv_image_new(rows, cols, frames, spp, bits, bits, 0, &img, &err), MV_OK);
    for (uint32_t f = 0; f < frames; f++)
        for (uint32_t r = 0; r < rows; r++)
            for (uint32_t c = 0; c < cols; c++)
                for (uint16_t s = 0; s < spp; s++)
                    mv_image_set_sample(img, f, r, c, s, (int64_t)((r * 7 + c * 3 + f * 11 + s) % 200) + 20);
    return img;
}

static void test_render_window(void **state)
{
    MvImage *img = NULL;
    MvError err;
    uint8_t out[4];
    double c, w;

    (void)state;
    assert_int_equal(mv_image_new(1, 4, 1, 1, 16, 12, 0, &img, &err), MV_OK);
    for (int i = 0; i < 4; i++)
        mv_image_set_sample(img, 0, 0, (uint32_t)i, 0, i * 100);
    mv__window_for(img, 0, 300, &c, &w);
    mv__render_gray(img, 0, MV_RENDER_WINDOW, c, w, out);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[3], 255);
    assert_true(out[1] > 70 && out[1] < 100);
    assert_true(out[2] > 160 && out[2] < 185);
    /* PS3.3 C.11.2.1.2.1 on modality values: intercept -1024, window 40/400 (-160..240). */
    img->rescale_intercept = -1024;
    mv_image_set_sample(img, 0, 0, 0, 0, 1024 - 200);
    mv_image_set_sample(img, 0, 0, 1, 0, 1024 + 40);
    mv_image_set_sample(img, 0, 0, 2, 0, 1024 + 300);
    mv__render_gray(img, 0, MV_RENDER_WINDOW, 40, 400, out);
    assert_int_equal(out[0], 0);
    assert_true(out[1] >= 126 && out[1] <= 129);
    assert_int_equal(out[2], 255);
    snprintf(img->photometric, sizeof img->photometric, "MONOCHROME1");
    mv__render_gray(img, 0, MV_RENDER_WINDOW, 40, 400, out);
    assert_int_equal(out[0], 255);
    assert_int_equal(out[2], 0);
    mv__render_gray(img, 0, MV_RENDER_INVERT, 40, 400, out);
    assert_int_equal(out[0], 0);
    mv_image_free(img);
}

static void test_black(void **state)
{
    MvImage *mono = gradient(4, 4, 1, 1, 16), *rgb = gradient(4, 4, 1, 3, 8);
    int64_t v[3];

    (void)state;
    mv__px_black(mono, 20, 219, v);
    assert_int_equal(v[0], 20);
    snprintf(mono->photometric, sizeof mono->photometric, "MONOCHROME1");
    mv__px_black(mono, 20, 219, v);
    assert_int_equal(v[0], 219);
    mv__px_black(rgb, 0, 255, v);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 0);
    assert_int_equal(v[2], 0);
    snprintf(rgb->photometric, sizeof rgb->photometric, "YBR_FULL");
    mv__px_black(rgb, 0, 255, v);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 128);
    assert_int_equal(v[2], 128);
    mv_image_free(mono);
    mv_image_free(rgb);
}

static void test_fill_box_only_inside(void **state)
{
    MvImage *img = gradient(20, 30, 3, 3, 8), *orig = gradient(20, 30, 3, 3, 8);
    MvPxBox box = {5, 4, 12, 9};
    const int64_t value[3] = {1, 2, 3};

    (void)state;
    mv__fill_box(img, &box, value);
    for (uint32_t f = 0; f < 3; f++)
        for (uint32_t r = 0; r < 20; r++)
            for (uint32_t c = 0; c < 30; c++)
                for (uint16_t s = 0; s < 3; s++) {
                    int inside = (int)c >= box.x0 && (int)c < box.x1 && (int)r >= box.y0 && (int)r < box.y1;
                    int64_t got = mv_image_sample(img, f, r, c, s);
                    int64_t want = inside ? value[s] : mv_image_sample(orig, f, r, c, s);
                    if (got != want)
                        fail_msg("frame %u row %u col %u sample %u: %lld, want %lld", f, r, c, s, (long long)got,
                                 (long long)want);
                }
    {
        MvPxBox g = mv__box_grow(box, 10, 30, 20);
        assert_int_equal(g.x0, 0);
        assert_int_equal(g.y0, 0);
        assert_int_equal(g.x1, 22);
        assert_int_equal(g.y1, 19);
    }
    mv_image_free(img);
    mv_image_free(orig);
}

/* A file with a 64x48 8-bit gradient and the given header values. */
static MvFile *file_with(const char *modality, const char *burned, const char *image_type, const char *body_part)
{
    MvFile *file = NULL;
    MvDataset *ds;
    MvImage *img = gradient(48, 64, 1, 1, 8);
    MvError err;

    assert_int_equal(mv_file_new(&file), MV_OK);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0016), MV_VR_UI, "1.2.840.10008.5.1.4.1.1.2", &err),
                     MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0018), MV_VR_UI, "1.2.3.4", &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, modality, &err), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0010, 0x0010), MV_VR_PN, "DOE^JOHN", &err), MV_OK);
    if (burned != NULL)
        assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0028, 0x0301), MV_VR_CS, burned, &err), MV_OK);
    if (image_type != NULL)
        assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0008), MV_VR_CS, image_type, &err), MV_OK);
    if (body_part != NULL)
        assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0018, 0x0015), MV_VR_CS, body_part, &err), MV_OK);
    if (mv_image_encode(file, img, NULL, &err) != MV_OK)
        fail_msg("%s", err.message);
    mv_image_free(img);
    return file;
}

static void clean(MvFile *file, const char *rules_text, unsigned flags, MvPixelReport *rep)
{
    MvPixelCleanConfig cfg;
    MvPixelRules *rules = NULL;
    MvError err;

    mv_pixel_clean_config_init(&cfg);
    cfg.flags |= flags;
    if (rules_text != NULL) {
        assert_int_equal(mv_pixel_rules_new(&rules), MV_OK);
        if (mv_pixel_rules_parse(rules, "t.rules", rules_text, strlen(rules_text), &err) != MV_OK)
            fail_msg("%s", err.message);
        cfg.rules = rules;
    }
    if (mv_pixel_clean_file(&cfg, file, rep, &err) != MV_OK)
        fail_msg("%s", err.message);
    mv_pixel_rules_free(rules);
}

static char *burned_of(MvFile *file)
{
    char *v = NULL;

    if (mv_dataset_get_string(mv_file_dataset(file), MV_TAG(0x0028, 0x0301), &v, NULL) != MV_OK) {
        free(v);
        return NULL;
    }
    return v;
}

static void test_not_decoded(void **state)
{
    MvFile *file = file_with("CT", "NO", "ORIGINAL\\PRIMARY\\AXIAL", NULL);
    MvPixelReport rep;

    (void)state;
    clean(file, NULL, 0, &rep);
    assert_int_equal(rep.scanned, 0);
    assert_int_equal(rep.quarantine, 0);
    assert_non_null(strstr(rep.decision, "NO"));
    mv_pixel_report_clear(&rep);
    mv_file_free(file);
    file = file_with("CT", NULL, "ORIGINAL\\PRIMARY\\AXIAL", NULL);
    clean(file, NULL, 0, &rep);
    assert_int_equal(rep.scanned, 0);
    mv_pixel_report_clear(&rep);
    mv_file_free(file);
}

static void test_rule_mask_exact(void **state)
{
    MvFile *file = file_with("OT", NULL, NULL, NULL);
    MvImage *before = NULL, *after = NULL;
    MvPixelReport rep;
    MvError err;
    char *burned;

    (void)state;
    assert_int_equal(mv_image_decode(file, NULL, &before, &err), MV_OK);
    clean(file, "medveil-pixel-rules 1\nrule band\n  when Modality = OT\n  mask 2 3 10 5\nend\n", 0, &rep);
    assert_int_equal(rep.scanned, 1);
    assert_int_equal(rep.quarantine, 0);
    assert_int_equal(rep.changed, 1);
    assert_int_equal(mv_image_decode(file, NULL, &after, &err), MV_OK);
    for (uint32_t r = 0; r < 48; r++)
        for (uint32_t c = 0; c < 64; c++) {
            int inside = c >= 2 && c < 12 && r >= 3 && r < 8;
            int64_t got = mv_image_sample(after, 0, r, c, 0);
            int64_t want = inside ? 20 : mv_image_sample(before, 0, r, c, 0); /* 20: the image minimum */
            if (got != want)
                fail_msg("row %u col %u: %lld, want %lld", r, c, (long long)got, (long long)want);
        }
    burned = burned_of(file);
    assert_non_null(burned);
    assert_string_equal(burned, "NO");
    free(burned);
    assert_int_equal(rep.n_boxes, 1);
    assert_int_equal(rep.boxes[0].source, MV_BOX_RULE);
    mv_pixel_report_clear(&rep);
    mv_image_free(before);
    mv_image_free(after);
    mv_file_free(file);
}

static void test_quarantines(void **state)
{
    MvFile *file;
    MvPixelReport rep;

    (void)state;
    file = file_with("US", NULL, NULL, NULL);
    clean(file, "medveil-pixel-rules 1\n# c\nrule \"no US\"\n  when Modality = US\n  quarantine not here\nend\n", 0,
          &rep);
    assert_int_equal(rep.quarantine, 1);
    assert_int_equal(rep.scanned, 0);
    assert_non_null(strstr(rep.reason, "'no US' (t.rules:3): not here"));
    mv_pixel_report_clear(&rep);
    mv_file_free(file);

    /* Flagged, but nothing readable: the text cannot be located. */
    file = file_with("CT", "YES", NULL, NULL);
    clean(file, "medveil-pixel-rules 1\n", 0, &rep);
    assert_int_equal(rep.quarantine, 1);
    assert_non_null(strstr(rep.reason, "no text could be read"));
    mv_pixel_report_clear(&rep);
    mv_file_free(file);

    /* Flagged and undecodable: Pixel Data shorter than the attributes say. */
    file = file_with("CT", "YES", NULL, NULL);
    assert_int_equal(mv_dataset_set_bytes(mv_file_dataset(file), MV_TAG_PIXEL_DATA, MV_VR_OB, "\1\2\3\4", 4, NULL),
                     MV_OK);
    clean(file, "medveil-pixel-rules 1\n", 0, &rep);
    assert_int_equal(rep.quarantine, 1);
    assert_non_null(strstr(rep.reason, "cannot be decoded"));
    mv_pixel_report_clear(&rep);
    mv_file_free(file);

    /* A head CT under clean-recognizable-visual-features. */
    file = file_with("CT", "NO", NULL, "HEAD");
    clean(file, NULL, MV_PIXEL_VISUAL, &rep);
    assert_int_equal(rep.quarantine, 1);
    assert_non_null(strstr(rep.reason, "recognizable visual features"));
    mv_pixel_report_clear(&rep);
    mv_file_free(file);
    mv_pixel_ocr_release();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_window), cmocka_unit_test(test_black),
        cmocka_unit_test(test_fill_box_only_inside), cmocka_unit_test(test_not_decoded),
        cmocka_unit_test(test_rule_mask_exact), cmocka_unit_test(test_quarantines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
