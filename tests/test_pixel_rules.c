/* Unit tests of the pixel-clean parts that need no image: the rules format (every error
 * with its file and line, a failed load leaves the set as it was, every operator, regions
 * in pixels and percentages), the starter set (built-in copy equal to
 * data/pixel-rules/starter.rules), identifier matching of OCR words (name parts, OCR
 * confusions, edit distance, date forms, patterns, whole-word rule for short names), and
 * the recognizable-visual-features check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "medveil/deid.h"
#include "medveil/dicom.h"
#include "medveil/pixel_clean.h"
#include "pixel/clean_int.h"

#define MAGIC "medveil-pixel-rules 1\n"

/* ---- rules parsing ---------------------------------------------------------------- */

static void assert_parse_error(const char *text, const char *expected)
{
    MvPixelRules *rules = NULL;
    MvError err;

    assert_int_equal(mv_pixel_rules_new(&rules), MV_OK);
    mv_error_clear(&err);
    assert_int_equal(mv_pixel_rules_parse(rules, "my.rules", text, strlen(text), &err), MV_ERR_ARG);
    assert_int_equal(mv_pixel_rules_count(rules), 0);
    if (strcmp(err.message, expected) != 0)
        fail_msg("error\n  got:  %s\n  want: %s", err.message, expected);
    mv_pixel_rules_free(rules);
}

static void test_rules_ok(void **state)
{
    const char *text = MAGIC "# a comment\n\nrule \"US band\"\n  when Modality = US\n  when Rows >= 480\n"
                             "  mask 0 0 100% 7%\n  mask 10, 20, 30, 40\n  scan\nend\n"
                             "rule screens\n  when ImageType contains SCREEN SAVE\n  quarantine \"no screens\"\nend\n";
    MvPixelRules *rules = NULL;
    MvError err;

    (void)state;
    assert_int_equal(mv_pixel_rules_new(&rules), MV_OK);
    if (mv_pixel_rules_parse(rules, "ok.rules", text, strlen(text), &err) != MV_OK)
        fail_msg("%s", err.message);
    assert_int_equal(mv_pixel_rules_count(rules), 2);
    assert_string_equal(rules->rules[0].name, "US band");
    assert_int_equal(rules->rules[0].line, 4);
    assert_int_equal(rules->rules[0].n_conds, 2);
    assert_int_equal(rules->rules[0].n_rects, 2);
    assert_int_equal(rules->rules[0].scan, 1);
    assert_int_equal(rules->rules[1].quarantine, 1);
    assert_string_equal(rules->rules[1].reason, "no screens");
    {
        MvPxBox b = mv__region_box(&rules->rules[0].rects[0], 800, 600);
        assert_int_equal(b.x0, 0);
        assert_int_equal(b.x1, 800);
        assert_int_equal(b.y1, 42);
        b = mv__region_box(&rules->rules[0].rects[1], 35, 600);
        assert_int_equal(b.x0, 10);
        assert_int_equal(b.x1, 35); /* clipped to the image */
        assert_int_equal(b.y0, 20);
        assert_int_equal(b.y1, 60);
    }
    mv_pixel_rules_free(rules);
}

static void test_rules_errors(void **state)
{
    (void)state;
    assert_parse_error("rule x\n", "my.rules:1: the first line must be 'medveil-pixel-rules 1'");
    assert_parse_error("", "my.rules:1: empty rules file: the first line must be 'medveil-pixel-rules 1'");
    assert_parse_error(MAGIC "mask 0 0 1 1\n",
                       "my.rules:2: 'mask' outside a rule (rules start with 'rule NAME')");
    assert_parse_error(MAGIC "rule a\n  mask 1 2 3\nend\n", "my.rules:3: 'mask' takes four values: X Y WIDTH HEIGHT");
    assert_parse_error(MAGIC "rule a\n  mask 1 2 3 4 5\nend\n",
                       "my.rules:3: 'mask' takes four values: X Y WIDTH HEIGHT");
    assert_parse_error(MAGIC "rule a\n  mask 0 0 120% 4\nend\n",
                       "my.rules:3: 'mask' values are pixels (0..65535) or percentages (0%..100%)");
    assert_parse_error(MAGIC "rule a\n  mask 0 0 -4 4\nend\n",
                       "my.rules:3: 'mask' values are pixels (0..65535) or percentages (0%..100%)");
    assert_parse_error(MAGIC "rule a\n  mask 0 0 0 4\nend\n", "my.rules:3: 'mask' width and height must not be zero");
    assert_parse_error(MAGIC "rule a\n  when NoSuchKeyword = 1\n  scan\nend\n",
                       "my.rules:3: unknown attribute 'NoSuchKeyword'");
    assert_parse_error(MAGIC "rule a\n  when Modality US\n  scan\nend\n",
                       "my.rules:3: expected =, !=, ~, contains, >=, <=, absent or present after 'Modality'");
    assert_parse_error(MAGIC "rule a\n  when Modality =\n  scan\nend\n",
                       "my.rules:3: missing value after the operator for 'Modality'");
    assert_parse_error(MAGIC "rule a\n  when Rows >= many\n  scan\nend\n", "my.rules:3: 'many' is not a number");
    assert_parse_error(MAGIC "rule a\n  when Modality absent US\n  scan\nend\n",
                       "my.rules:3: 'absent' and 'present' take no value");
    assert_parse_error(MAGIC "rule a\n  when Modality = US\nend\n",
                       "my.rules:4: rule 'a' has no action (mask, quarantine, scan or skip)");
    assert_parse_error(MAGIC "rule a\n  scan\n", "my.rules:3: rule 'a' has no 'end'");
    assert_parse_error(MAGIC "rule a\n  scan\nrule b\n", "my.rules:4: 'rule' inside rule 'a' (missing 'end')");
    assert_parse_error(MAGIC "rule a\n  blur 1 2 3 4\nend\n",
                       "my.rules:3: unknown word 'blur' (expected when, mask, quarantine, scan, skip or end)");
    assert_parse_error(MAGIC "rule\n", "my.rules:2: 'rule' needs a name");
    assert_parse_error(MAGIC "rule a\n  scan now\nend\n", "my.rules:3: 'scan' takes nothing after it");
}

static void test_rules_failed_load_keeps_set(void **state)
{
    const char *good = MAGIC "rule a\n  scan\nend\n";
    const char *bad = MAGIC "rule b\n  scan\nend\nrule c\n  mask 1\nend\n";
    MvPixelRules *rules = NULL;
    MvError err;

    (void)state;
    assert_int_equal(mv_pixel_rules_new(&rules), MV_OK);
    assert_int_equal(mv_pixel_rules_parse(rules, "a", good, strlen(good), &err), MV_OK);
    assert_int_equal(mv_pixel_rules_parse(rules, "b", bad, strlen(bad), &err), MV_ERR_ARG);
    assert_int_equal(mv_pixel_rules_count(rules), 1);
    assert_int_equal(mv_pixel_rules_load(rules, "/nonexistent/x.rules", &err), MV_ERR_IO);
    assert_non_null(strstr(err.message, "/nonexistent/x.rules"));
    mv_pixel_rules_free(rules);
}

static MvFile *header(const char *modality, const char *image_type, unsigned rows)
{
    MvFile *file = NULL;
    MvDataset *ds;

    assert_int_equal(mv_file_new(&file), MV_OK);
    ds = mv_file_dataset(file);
    if (modality != NULL)
        assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, modality, NULL), MV_OK);
    if (image_type != NULL)
        assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0008), MV_VR_CS, image_type, NULL), MV_OK);
    if (rows > 0)
        assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0010), MV_VR_US, rows, NULL), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0070), MV_VR_LO, "GE Healthcare", NULL), MV_OK);
    return file;
}

/* 1 if the one rule of text matches file. */
static int matches(const char *conds, MvFile *file)
{
    char text[512];
    MvPixelRules *rules = NULL;
    MvError err;
    int hit;

    snprintf(text, sizeof text, MAGIC "rule r\n%s  scan\nend\n", conds);
    assert_int_equal(mv_pixel_rules_new(&rules), MV_OK);
    if (mv_pixel_rules_parse(rules, "m", text, strlen(text), &err) != MV_OK)
        fail_msg("%s", err.message);
    hit = mv__rule_matches(&rules->rules[0], mv_file_dataset(file));
    mv_pixel_rules_free(rules);
    return hit;
}

static void test_rules_matching(void **state)
{
    MvFile *us = header("US", "DERIVED\\SECONDARY\\SCREEN SAVE", 600);

    (void)state;
    assert_true(matches("when Modality = US\n", us));
    assert_true(matches("when Modality = us\n", us)); /* case-insensitive */
    assert_false(matches("when Modality = CT\n", us));
    assert_true(matches("when Modality != CT\n", us));
    assert_true(matches("when Manufacturer ~ ge*\n", us));
    assert_false(matches("when Manufacturer ~ Philips*\n", us));
    assert_true(matches("when ImageType contains SCREEN SAVE\n", us));
    assert_false(matches("when ImageType contains SCREEN\n", us));
    assert_true(matches("when Rows >= 480\n  when Rows <= 600\n", us));
    assert_false(matches("when Rows >= 601\n", us));
    assert_true(matches("when Rows = 600\n", us));
    assert_true(matches("when (0008,0060) = US\n", us));
    assert_true(matches("when PatientName absent\n", us));
    assert_false(matches("when PatientName present\n", us));
    assert_false(matches("when Modality = US\n  when Rows = 480\n", us)); /* every condition must hold */
    mv_file_free(us);
}

static void test_starter_rules(void **state)
{
    char path[1024];
    const char *src = getenv("MV_SOURCE_DIR");
    FILE *f;
    char *buf;
    long len;
    MvPixelRules *rules = NULL;
    MvError err;

    (void)state;
    if (src != NULL)
        snprintf(path, sizeof path, "%s/data/pixel-rules/starter.rules", src);
    else
        snprintf(path, sizeof path, "%s/../data/pixel-rules/starter.rules", __FILE__);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    if (strcmp(buf, mv_pixel_rules_starter_text()) != 0)
        fail_msg("src/pixel/rules_starter.c is not a copy of %s: regenerate it", path);
    free(buf);
    assert_int_equal(mv_pixel_rules_new(&rules), MV_OK);
    if (mv_pixel_rules_load_starter(rules, &err) != MV_OK)
        fail_msg("%s", err.message);
    assert_true(mv_pixel_rules_count(rules) >= 5);
    mv_pixel_rules_free(rules);
}

/* ---- identifiers ------------------------------------------------------------------------ */

typedef struct Case {
    const char *text;
    int line;
    int want;
} Case;

static void run_cases(const MvPxIds *ids, const Case *cases, size_t n, int all_text)
{
    MvPxWord *words = calloc(n, sizeof *words);

    assert_non_null(words);
    for (size_t i = 0; i < n; i++) {
        words[i].text = strdup(cases[i].text);
        words[i].line = cases[i].line;
    }
    mv__match_words(ids, words, n, all_text);
    for (size_t i = 0; i < n; i++)
        if (words[i].kind != cases[i].want)
            fail_msg("word '%s': kind %s, want %s", cases[i].text, mv__id_kind_name(words[i].kind),
                     mv__id_kind_name(cases[i].want));
    mv__words_free(words, n);
}

static void test_identifier_matching(void **state)
{
    MvFile *file = NULL;
    MvDataset *ds;
    MvPxIds *ids = NULL;
    const Case cases[] = {
        {"DAVIDSON,", 0, MV_ID_NAME},   /* punctuation ignored */
        {"Douglas", 0, MV_ID_NAME},     /* case ignored */
        {"DAV1DS0N", 1, MV_ID_NAME},    /* OCR confusions 1/I, 0/O */
        {"DAVIDSQN", 2, MV_ID_NAME},    /* one edit on a long token */
        {"DXVIDSQN", 3, 0},             /* two edits on an 8-character token: not a match */
        {"ID:", 4, 0},
        {"5551234567", 4, MV_ID_PATIENT_ID},
        {"555-123-4567", 5, MV_ID_PATIENT_ID}, /* separators ignored */
        {"07/22/1943", 6, MV_ID_DATE},  /* MM/DD/YYYY */
        {"22.07.1943", 7, MV_ID_DATE},  /* DD.MM.YYYY */
        {"1943-07-22", 8, MV_ID_DATE},
        {"22", 9, MV_ID_DATE},          /* DD Mon YYYY over three words */
        {"Jul", 9, MV_ID_DATE},
        {"1943", 9, MV_ID_DATE},
        {"22-JUL-1943", 10, MV_ID_DATE},
        {"Channel", 11, 0},             /* holds "ann", a short name part: whole words only */
        {"ANN", 12, MV_ID_NAME},
        {"ACC99812", 13, MV_ID_ACCESSION},
        {"12.0MHz", 14, 0},
        {"987654321", 15, MV_ID_PATTERN},  /* a long digit run */
        {"03/09/2012", 16, MV_ID_PATTERN}, /* a date shape, not this patient's */
        {"20120309", 17, MV_ID_PATTERN},
        {"5", 18, MV_ID_PATTERN},          /* 5 Mar 2011: a date shape over words */
        {"Mar", 18, MV_ID_PATTERN},
        {"2011", 18, MV_ID_PATTERN},
        {"Hello", 19, 0},
        {"ORIGINAL", 20, 0},
    };
    const Case all[] = {{"Hello", 0, MV_ID_TEXT}, {"DOUGLAS", 0, MV_ID_NAME}, {"x", 0, 0}};

    (void)state;
    assert_int_equal(mv_file_new(&file), MV_OK);
    ds = mv_file_dataset(file);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0010, 0x0010), MV_VR_PN, "DAVIDSON^DOUGLAS^ANN", NULL),
                     MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0010, 0x0020), MV_VR_LO, "5551234567", NULL), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0010, 0x0030), MV_VR_DA, "19430722", NULL), MV_OK);
    assert_int_equal(mv_dataset_set_string(ds, MV_TAG(0x0008, 0x0050), MV_VR_SH, "ACC99812", NULL), MV_OK);
    assert_int_equal(mv__pxids_collect(ds, &ids), MV_OK);
    assert_true(mv__pxids_count(ids) > 10);
    run_cases(ids, cases, sizeof cases / sizeof cases[0], 0);
    run_cases(ids, all, sizeof all / sizeof all[0], 1);
    mv__pxids_free(ids);
    mv_file_free(file);
}

static void test_canon(void **state)
{
    char out[64];

    (void)state;
    mv__canon("O'Brien-Smith", out);
    assert_string_equal(out, "08r1en5m1th");
    mv__canon("IL|0o", out);
    assert_string_equal(out, "11100");
}

/* ---- visual features --------------------------------------------------------------------- */

static int visual(const char *modality, uint32_t tag, const char *value)
{
    MvFile *file = NULL;
    char reason[256] = "";
    int hit;

    assert_int_equal(mv_file_new(&file), MV_OK);
    assert_int_equal(mv_dataset_set_string(mv_file_dataset(file), MV_TAG(0x0008, 0x0060), MV_VR_CS, modality, NULL),
                     MV_OK);
    if (tag != 0)
        assert_int_equal(mv_dataset_set_string(mv_file_dataset(file), tag, MV_VR_NONE, value, NULL), MV_OK);
    hit = mv_pixel_visual_check(mv_file_dataset(file), reason, sizeof reason);
    assert_true(hit == 0 || strstr(reason, "recognizable visual features") != NULL);
    mv_file_free(file);
    return hit;
}

static void test_visual_features(void **state)
{
    (void)state;
    assert_true(visual("CT", MV_TAG(0x0018, 0x0015), "HEAD"));
    assert_true(visual("MR", MV_TAG(0x0008, 0x1030), "MRI BRAIN W/O CONTRAST"));
    assert_true(visual("CT", MV_TAG(0x0008, 0x103E), "Sinus 1.0 axial"));
    assert_false(visual("CT", MV_TAG(0x0008, 0x1030), "CT ABDOMEN ILIAC")); /* "iac" inside a word */
    assert_false(visual("CT", MV_TAG(0x0018, 0x0015), "CHEST"));
    assert_false(visual("CR", MV_TAG(0x0018, 0x0015), "SKULL")); /* a projection: no volume */
    assert_true(visual("XC", 0, NULL));
    assert_true(visual("OT", MV_TAG(0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.77.1.4"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_ok),
        cmocka_unit_test(test_rules_errors),
        cmocka_unit_test(test_rules_failed_load_keeps_set),
        cmocka_unit_test(test_rules_matching),
        cmocka_unit_test(test_starter_rules),
        cmocka_unit_test(test_identifier_matching),
        cmocka_unit_test(test_canon),
        cmocka_unit_test(test_visual_features),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
