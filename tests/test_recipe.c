/* Unit tests of recipes (src/deid/recipe.c, format in docs/recipes.md): parsing of every
 * action and target form, rule precedence, private creator resolution, quarantine
 * conditions, CSV map tables, every error message with its line, the SHA-256 of the loaded
 * bytes, and that a failed load leaves the recipe as it was. Files go to a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "deid/deid_int.h"
#include "medveil/dicom.h"

#define V "medveil-recipe 1\n"

/* ---- Helpers --------------------------------------------------------------------- */

static char tmp_dir[64];
static char *written[64];
static size_t n_written;

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/mv_recipe_XXXXXX");
    return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    for (size_t i = n_written; i-- > 0;) {
        struct stat st;
        if (stat(written[i], &st) == 0 && S_ISDIR(st.st_mode))
            rmdir(written[i]);
        else
            unlink(written[i]);
        free(written[i]);
    }
    n_written = 0;
    return rmdir(tmp_dir);
}

/* The full path of name in the temporary folder (a static buffer per call slot). */
static const char *path_of(const char *name)
{
    static char paths[4][512];
    static int slot;
    char *p = paths[slot++ % 4];

    snprintf(p, 512, "%s/%s", tmp_dir, name);
    return p;
}

static void remember(const char *path)
{
    for (size_t i = 0; i < n_written; i++)
        if (strcmp(written[i], path) == 0)
            return;
    assert_true(n_written < sizeof written / sizeof written[0]);
    written[n_written] = strdup(path);
    assert_non_null(written[n_written]);
    n_written++;
}

static void make_dir(const char *name)
{
    const char *path = path_of(name);

    if (mkdir(path, 0700) != 0)
        assert_int_equal(access(path, F_OK), 0);
    remember(path);
}

static const char *write_bytes(const char *name, const void *bytes, size_t len)
{
    const char *path = path_of(name);
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    if (len > 0)
        assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    remember(path);
    return path;
}

static const char *write_text(const char *name, const char *text)
{
    return write_bytes(name, text, strlen(text));
}

/* Loads text (written as name) into *recipe and returns the status. */
static MvStatus load_text(MvRecipe **recipe, const char *name, const char *text, MvError *err)
{
    const char *path = write_text(name, text);

    return mv__recipe_load(recipe, path, err);
}

static MvRecipe *load_ok(const char *text)
{
    MvRecipe *recipe = NULL;
    MvError err;

    mv_error_clear(&err);
    if (load_text(&recipe, "ok.recipe", text, &err) != MV_OK)
        fail_msg("unexpected error: %s", err.message);
    assert_non_null(recipe);
    return recipe;
}

/* The load of text fails with MV_ERR_ARG and the message "PATH:" + expected; a NULL
 * recipe stays NULL. */
static void assert_load_error_code(const char *text, MvStatus code, const char *expected)
{
    MvRecipe *recipe = NULL;
    MvError err;
    char want[1024];
    const char *path = write_text("bad.recipe", text);

    mv_error_clear(&err);
    assert_int_equal(mv__recipe_load(&recipe, path, &err), code);
    assert_int_equal(err.code, code);
    assert_null(recipe);
    snprintf(want, sizeof want, "%s:%s", path, expected);
    assert_string_equal(err.message, want);
}

static void assert_load_error(const char *text, const char *expected)
{
    assert_load_error_code(text, MV_ERR_ARG, expected);
}

static MvFile *new_file(void)
{
    MvFile *file = NULL;

    assert_int_equal(mv_file_new(&file), MV_OK);
    return file;
}

static void set_string(MvDataset *ds, uint32_t tag, MvVr vr, const char *value)
{
    MvError err;

    if (mv_dataset_set_string(ds, tag, vr, value, &err) != MV_OK)
        fail_msg("set (%04X,%04X): %s", MV_TAG_GROUP(tag), MV_TAG_ELEMENT(tag), err.message);
}

/* The action of the rule for tag in ds, or -1 when no rule applies. */
static int action_of(const MvRecipe *recipe, const MvDataset *ds, uint32_t tag)
{
    const MvRecipeRule *rule = mv__recipe_rule(recipe, ds, tag);

    return rule == NULL ? -1 : (int)rule->action;
}

static int line_of(const MvRecipe *recipe, const MvDataset *ds, uint32_t tag)
{
    const MvRecipeRule *rule = mv__recipe_rule(recipe, ds, tag);

    return rule == NULL ? -1 : rule->line;
}

/* The hex SHA-256 of the concatenated files. */
static void sha256_files(const char *const *paths, size_t n, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int md_len = 0;

    assert_non_null(ctx);
    assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < n; i++) {
        FILE *f = fopen(paths[i], "rb");
        char buf[4096];
        size_t got;

        assert_non_null(f);
        while ((got = fread(buf, 1, sizeof buf, f)) > 0)
            assert_int_equal(EVP_DigestUpdate(ctx, buf, got), 1);
        fclose(f);
    }
    assert_int_equal(EVP_DigestFinal_ex(ctx, md, &md_len), 1);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- Actions and targets ------------------------------------------------------------ */

static void test_every_action(void **state)
{
    MvRecipe *recipe;
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    const MvRecipeRule *rule;

    (void)state;
    write_text("ids.csv", "P1,S1\n");
    recipe = load_ok("# every action once\n" V "\n"
                     "keep PatientSex\n"
                     "remove PatientAddress\n"
                     "empty ReferringPhysicianName\n"
                     "replace InstitutionName \"Research \\\"Site\\\" A\\\\B\"\n"
                     "pseudonymize OtherPatientIDs\n"
                     "shift StudyDate\n"
                     "clean StudyDescription\n"
                     "uid StudyInstanceUID\n"
                     "map PatientID ids.csv\n"
                     "map AccessionNumber ids.csv else pseudonymize\n"
                     "map StudyID ids.csv else remove\n"
                     "map AdmissionID ids.csv else quarantine\n");
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0010, 0x0040)), MV_RA_KEEP);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0010, 0x1040)), MV_RA_REMOVE);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0008, 0x0090)), MV_RA_EMPTY);
    rule = mv__recipe_rule(recipe, ds, MV_TAG(0x0008, 0x0080));
    assert_non_null(rule);
    assert_int_equal(rule->action, MV_RA_REPLACE);
    assert_string_equal(rule->literal, "Research \"Site\" A\\B");
    assert_int_equal(rule->line, 7);
    assert_string_equal(rule->file, path_of("ok.recipe"));
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0010, 0x1000)), MV_RA_PSEUDONYMIZE);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0008, 0x0020)), MV_RA_SHIFT);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0008, 0x1030)), MV_RA_CLEAN);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0020, 0x000D)), MV_RA_UID);

    rule = mv__recipe_rule(recipe, ds, MV_TAG(0x0010, 0x0020));
    assert_non_null(rule);
    assert_int_equal(rule->action, MV_RA_MAP);
    assert_non_null(rule->map);
    assert_int_equal(rule->map_missing, MV_RA_KEEP); /* default: quarantine */
    assert_string_equal(mv__recipe_map_lookup(rule, "P1"), "S1");
    rule = mv__recipe_rule(recipe, ds, MV_TAG(0x0008, 0x0050));
    assert_int_equal(rule->map_missing, MV_RA_PSEUDONYMIZE);
    rule = mv__recipe_rule(recipe, ds, MV_TAG(0x0020, 0x0010));
    assert_int_equal(rule->map_missing, MV_RA_REMOVE);
    rule = mv__recipe_rule(recipe, ds, MV_TAG(0x0038, 0x0010));
    assert_int_equal(rule->map_missing, MV_RA_KEEP);
    /* One table named twice in a file is loaded once. */
    assert_ptr_equal(rule->map, mv__recipe_rule(recipe, ds, MV_TAG(0x0010, 0x0020))->map);

    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0010, 0x0010)), -1);
    mv__recipe_free(recipe);
    mv_file_free(file);
}

static void test_target_forms(void **state)
{
    MvRecipe *recipe;

    (void)state;
    recipe = load_ok(V "keep PatientName\n"
                       "remove (0010,0020)\n"
                       "empty 0010,0030\n"
                       "clean 00100040\n"
                       "remove (0008,002a)\n"
                       "remove ( 0008 , 0050 )   # blanks inside parentheses\n"
                       "remove (50xx,xxxx)\n"
                       "empty (60xx,4000)\n"
                       "clean (0019,xxxx)\n"
                       "keep 70XX,0001\n"
                       "shift OverlayRows\n"
                       "keep\t\tPatientAge\t# tabs and a comment\n");
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x0010)), MV_RA_KEEP);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x0020)), MV_RA_REMOVE);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x0030)), MV_RA_EMPTY);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x0040)), MV_RA_CLEAN);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0008, 0x002A)), MV_RA_REMOVE);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0008, 0x0050)), MV_RA_REMOVE);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x1010)), MV_RA_KEEP);
    /* (50xx,xxxx) */
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x5000, 0x0000)), MV_RA_REMOVE);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x50FE, 0x3000)), MV_RA_REMOVE);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x5100, 0x3000)), -1);
    /* (60xx,4000) and the keyword of the repeating entry (60xx,0010) */
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x6002, 0x4000)), MV_RA_EMPTY);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x6002, 0x4001)), -1);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x601E, 0x0010)), MV_RA_SHIFT);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x601E, 0x0011)), -1);
    /* (0019,xxxx): every element of the group, creators too, with or without a dataset */
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0019, 0x0010)), MV_RA_CLEAN);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0019, 0x10AB)), MV_RA_CLEAN);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0021, 0x10AB)), -1);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x7012, 0x0001)), MV_RA_KEEP);
    mv__recipe_free(recipe);
}

/* ---- Precedence ------------------------------------------------------------------ */

static void test_precedence(void **state)
{
    MvRecipe *recipe;
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    set_string(ds, MV_TAG(0x0019, 0x0010), MV_VR_LO, "ACME");
    recipe = load_ok(V "remove (xxxx,xxxx)\n"            /* 2: 0 fixed bits */
                       "empty (60xx,xxxx)\n"             /* 3: 8 */
                       "clean (60xx,40xx)\n"             /* 4: 16 */
                       "keep (60xx,4000)\n"              /* 5: 24 */
                       "shift (60xx,4000)\n"             /* 6: 24, later: wins */
                       "uid (6000,xxxx)\n"               /* 7: 16, same as line 4 */
                       "keep (0019,xxxx)\n"              /* 8: mask */
                       "remove (0019,\"ACME\",xx)\n"     /* 9: creator, any offset */
                       "empty (0019,\"ACME\",0x)\n"      /* 10: creator, 4 bits */
                       "clean (0019,\"ACME\",01)\n"      /* 11: creator, fixed offset */
                       "keep (0019,1001)\n"              /* 12: tag beats creator */
                       "keep PatientName\n"              /* 13 */
                       "remove (0010,0010)\n"            /* 14: same tag, later: wins */
                       "empty (0010,xxxx)\n");           /* 15: a mask never beats a tag */
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x6000, 0x4000)), 6);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x6000, 0x4000)), MV_RA_SHIFT);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x6002, 0x4000)), 6);
    /* (6000,4001): lines 4 and 7 both have 16 fixed bits; 7 was loaded last. */
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x6000, 0x4001)), 7);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x6002, 0x4001)), 4);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x6002, 0x3000)), 3);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x0008, 0x0020)), 2);
    /* Private block 10 of group 0019 belongs to ACME. */
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x0019, 0x1001)), 12);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x0019, 0x1002)), 10);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x0019, 0x1011)), 9);
    /* Block 11 has no creator: only the masks apply. */
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x0019, 0x1101)), 8);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x0019, 0x0010)), 8);
    /* Without a dataset no creator is known. */
    assert_int_equal(line_of(recipe, NULL, MV_TAG(0x0019, 0x1002)), 8);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x0010, 0x0010)), 14);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x0010, 0x0020)), 15);
    mv__recipe_free(recipe);
    mv_file_free(file);
}

static void test_two_recipes_append(void **state)
{
    MvRecipe *recipe = NULL;
    MvError err;
    const MvRecipeRule *rule;

    (void)state;
    assert_int_equal(load_text(&recipe, "a.recipe", V "keep PatientName\nkeep PatientID\n"
                                                      "quarantine \"from a\" if Modality == \"OT\"\n",
                               &err),
                     MV_OK);
    assert_int_equal(load_text(&recipe, "b.recipe", V "remove PatientID\nempty (0010,xxxx)\n"
                                                      "quarantine \"from b\" if Modality present\n",
                               &err),
                     MV_OK);
    rule = mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0010));
    assert_int_equal(rule->action, MV_RA_KEEP);
    assert_string_equal(rule->file, path_of("a.recipe"));
    /* The same tag in both: the later file wins. */
    rule = mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0020));
    assert_int_equal(rule->action, MV_RA_REMOVE);
    assert_string_equal(rule->file, path_of("b.recipe"));
    assert_int_equal(rule->line, 2);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x0030)), MV_RA_EMPTY);
    {
        MvFile *file = new_file();
        MvDataset *ds = mv_file_dataset(file);
        char reason[256];

        set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "OT");
        assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 1);
        assert_string_equal(reason, "from a");
        set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "CT");
        assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 1);
        assert_string_equal(reason, "from b");
        mv_file_free(file);
    }
    mv__recipe_free(recipe);
}

/* ---- Private creators ------------------------------------------------------------- */

static void test_private_creator(void **state)
{
    MvRecipe *recipe;
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    set_string(ds, MV_TAG(0x0019, 0x0010), MV_VR_LO, "SIEMENS MR HEADER");
    set_string(ds, MV_TAG(0x0019, 0x100C), MV_VR_IS, "1000");
    set_string(ds, MV_TAG(0x0019, 0x100D), MV_VR_IS, "7");
    set_string(ds, MV_TAG(0x0019, 0x0011), MV_VR_LO, "OTHER VENDOR");
    set_string(ds, MV_TAG(0x0019, 0x110C), MV_VR_IS, "1");
    set_string(ds, MV_TAG(0x0029, 0x0012), MV_VR_LO, "SIEMENS CSA HEADER ");
    set_string(ds, MV_TAG(0x0029, 0x1208), MV_VR_CS, "X");
    set_string(ds, MV_TAG(0x0029, 0x1210), MV_VR_CS, "Y");
    recipe = load_ok(V "keep (0019,\"SIEMENS MR HEADER\",0C)\n"
                       "clean (0029, \" SIEMENS CSA HEADER  \", xx)\n"
                       "keep (0021,\"SIEMENS MR HEADER\",0C)\n");
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0019, 0x100C)), MV_RA_KEEP);
    assert_int_equal(line_of(recipe, ds, MV_TAG(0x0019, 0x100C)), 2);
    /* Another offset of the block, the creator element itself, another creator's block. */
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0019, 0x100D)), -1);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0019, 0x0010)), -1);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0019, 0x110C)), -1);
    /* Every element of the CSA block (block 12), the creator trimmed on both sides. */
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0029, 0x1208)), MV_RA_CLEAN);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0029, 0x1210)), MV_RA_CLEAN);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0029, 0x1010)), -1);
    mv__recipe_free(recipe);

    /* The creator moves to block 42: the rule follows it. */
    mv_file_free(file);
    file = new_file();
    ds = mv_file_dataset(file);
    set_string(ds, MV_TAG(0x0019, 0x0042), MV_VR_LO, "SIEMENS MR HEADER");
    set_string(ds, MV_TAG(0x0019, 0x420C), MV_VR_IS, "1000");
    recipe = load_ok(V "keep (0019,\"SIEMENS MR HEADER\",0C)\n");
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0019, 0x420C)), MV_RA_KEEP);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0019, 0x100C)), -1);
    /* Creators compare exactly, case included. */
    mv__recipe_free(recipe);
    recipe = load_ok(V "keep (0019,\"siemens mr header\",0C)\n");
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0019, 0x420C)), -1);
    mv__recipe_free(recipe);
    mv_file_free(file);
}

/* ---- Quarantine ------------------------------------------------------------------ */

/* 1 if the one-rule recipe "quarantine "hit" if CONDITION" matches ds. */
static int condition_holds(const MvDataset *ds, const char *condition)
{
    char text[1024], reason[256] = "";
    MvRecipe *recipe;
    int hit;

    snprintf(text, sizeof text, V "quarantine \"hit\" if %s\n", condition);
    recipe = load_ok(text);
    hit = mv__recipe_quarantine(recipe, ds, reason, sizeof reason);
    if (hit)
        assert_string_equal(reason, "hit");
    mv__recipe_free(recipe);
    return hit;
}

static void test_quarantine_conditions(void **state)
{
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    MvError err;

    (void)state;
    set_string(ds, MV_TAG(0x0008, 0x0005), MV_VR_CS, "ISO_IR 192");
    set_string(ds, MV_TAG(0x0008, 0x0008), MV_VR_CS, "DERIVED\\SECONDARY\\SCREEN SAVE");
    set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "SC");
    set_string(ds, MV_TAG(0x0008, 0x0080), MV_VR_LO, "Klinikum S\xC3\xBC" "d");
    set_string(ds, MV_TAG(0x0028, 0x0301), MV_VR_CS, "YES");
    set_string(ds, MV_TAG(0x0008, 0x103E), MV_VR_LO, "");
    set_string(ds, MV_TAG(0x0019, 0x0010), MV_VR_LO, "ACME");
    set_string(ds, MV_TAG(0x0019, 0x1001), MV_VR_LO, "SECRET");
    assert_int_equal(mv_dataset_set_uint(ds, MV_TAG(0x0028, 0x0010), MV_VR_US, 512, &err), MV_OK);

    assert_true(condition_holds(ds, "Modality == \"SC\""));
    assert_false(condition_holds(ds, "Modality == \"sc\""));
    assert_false(condition_holds(ds, "Modality == \"S\""));
    assert_true(condition_holds(ds, "Modality != \"CT\""));
    assert_false(condition_holds(ds, "Modality != \"SC\""));
    assert_true(condition_holds(ds, "Modality == \"SC\" and BurnedInAnnotation == \"YES\""));
    assert_false(condition_holds(ds, "Modality == \"SC\" and BurnedInAnnotation == \"NO\""));
    assert_false(condition_holds(ds, "Modality == \"OT\" and BurnedInAnnotation == \"YES\""));
    /* Multi-valued: == matches any value, ~ any substring of a value, case-insensitively. */
    assert_true(condition_holds(ds, "ImageType == \"SECONDARY\""));
    assert_true(condition_holds(ds, "ImageType == \"SCREEN SAVE\""));
    assert_false(condition_holds(ds, "ImageType == \"DERIVED\\\\SECONDARY\""));
    assert_false(condition_holds(ds, "ImageType != \"DERIVED\""));
    assert_true(condition_holds(ds, "ImageType ~ \"screen\""));
    assert_false(condition_holds(ds, "ImageType ~ \"SECONDARY\\\\SCREEN\""));
    assert_true(condition_holds(ds, "InstitutionName == \"Klinikum S\xC3\xBC" "d\""));
    assert_true(condition_holds(ds, "InstitutionName ~ \"KLINIKUM\""));
    assert_true(condition_holds(ds, "InstitutionName ~ \"\""));
    /* An empty value is present and equals "". */
    assert_true(condition_holds(ds, "SeriesDescription present"));
    assert_true(condition_holds(ds, "SeriesDescription == \"\""));
    assert_false(condition_holds(ds, "SeriesDescription ~ \"x\""));
    /* Absent elements: == and ~ never hold, != always does. */
    assert_true(condition_holds(ds, "StudyDescription absent"));
    assert_false(condition_holds(ds, "StudyDescription present"));
    assert_false(condition_holds(ds, "StudyDescription == \"\""));
    assert_false(condition_holds(ds, "StudyDescription ~ \"\""));
    assert_true(condition_holds(ds, "StudyDescription != \"x\""));
    assert_false(condition_holds(ds, "Modality absent"));
    /* Binary integers compare as decimal text. */
    assert_true(condition_holds(ds, "Rows == \"512\""));
    assert_false(condition_holds(ds, "Rows == \"0512\""));
    /* A private element by its creator; tags by number. */
    assert_true(condition_holds(ds, "(0019,\"ACME\",01) == \"SECRET\""));
    assert_false(condition_holds(ds, "(0019,\"ACME\",02) present"));
    assert_true(condition_holds(ds, "(0019,\"OTHER\",01) absent"));
    assert_true(condition_holds(ds, "(0008,0060) == \"SC\" and 0028,0301 present"));
    mv_file_free(file);
}

static void test_quarantine_first_match(void **state)
{
    MvRecipe *recipe;
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);
    char reason[256], small[8];

    (void)state;
    recipe = load_ok(V "quarantine \"modality not released\" if Modality == \"OT\"\n"
                       "quarantine \"no modality\" if Modality absent\n"
                       "quarantine \"any OT or SC\" if Modality ~ \"T\"\n"
                       "quarantine \"duplicate reason never reported\" if Modality absent\n");
    strcpy(reason, "untouched");
    assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 1);
    assert_string_equal(reason, "no modality");
    set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "OT");
    assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 1);
    assert_string_equal(reason, "modality not released");
    assert_int_equal(mv__recipe_quarantine(recipe, ds, small, sizeof small), 1);
    assert_string_equal(small, "modalit");
    assert_int_equal(mv__recipe_quarantine(recipe, ds, NULL, 0), 1);
    set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "CT");
    assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 1);
    assert_string_equal(reason, "any OT or SC");
    set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "MR");
    strcpy(reason, "untouched");
    assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 0);
    assert_string_equal(reason, "untouched");
    mv__recipe_free(recipe);
    mv_file_free(file);
}

/* ---- Errors ---------------------------------------------------------------------- */

static void test_version_errors(void **state)
{
    (void)state;
    assert_load_error("", "1: missing version line 'medveil-recipe 1'");
    assert_load_error("# only a comment\n\n   \n", "1: missing version line 'medveil-recipe 1'");
    assert_load_error("keep PatientName\n", "1: missing version line 'medveil-recipe 1'");
    assert_load_error("# header\n\nkeep PatientName\n" V, "3: missing version line 'medveil-recipe 1'");
    assert_load_error("medveil-recipe\n", "1: missing version line 'medveil-recipe 1'");
    assert_load_error("medveil-recipe 2\n", "1: unsupported recipe version '2' (this medveil reads version 1)");
    assert_load_error("medveil-recipe 1 extra\n", "1: unexpected 'extra' at the end of the line");
    assert_load_error(V V, "2: unknown action 'medveil-recipe'");
}

static void test_rule_errors(void **state)
{
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {V "kepp PatientName\n", "2: unknown action 'kepp'"},
        {V "Keep PatientName\n", "2: unknown action 'Keep'"},
        {V "keep PatientNme\n", "2: 'PatientNme' is not a tag or keyword"},
        {V "keep\n", "2: expected a target after keep"},
        {V "keep # comment\n", "2: expected a target after keep"},
        {V "remove \"PatientName\"\n", "2: expected a target after remove"},
        {V "keep (0010,001G)\n", "2: '(0010,001G)' is not a tag or keyword"},
        {V "keep (0010,0010\n", "2: '(0010,0010' is not a tag or keyword"},
        {V "keep (0010,0010)x\n", "2: unexpected 'x' at the end of the line"},
        {V "keep 0010,00100\n", "2: '0010,00100' is not a tag or keyword"},
        {V "keep 0010;0010\n", "2: '0010;0010' is not a tag or keyword"},
        {V "keep (0010 0010)\n", "2: '(0010 0010)' is not a tag or keyword"},
        {V "keep PatientName PatientID\n", "2: unexpected 'PatientID' at the end of the line"},
        {V "keep PatientName \"x\"\n", "2: unexpected quoted value at the end of the line"},
        {V "replace InstitutionName\n", "2: expected a quoted value after replace"},
        {V "replace InstitutionName Research\n", "2: expected a quoted value after replace"},
        {V "replace InstitutionName \"Research\n", "2: unterminated quote"},
        {V "replace InstitutionName \"Research\\\"\n", "2: unterminated quote"},
        {V "replace InstitutionName \"a\\nb\"\n",
         "2: unknown escape in a quoted value (only \\\" and \\\\ are escapes)"},
        {V "replace InstitutionName \"a\"b\n", "2: text after a closing quote"},
        {V "replace InstitutionName \"a\" \"b\"\n", "2: unexpected quoted value at the end of the line"},
        {V "keep (0018,\"ACME\",0C)\n", "2: group 0018 in '(0018,\"ACME\",0C)' is not a private group"},
        {V "keep (0007,\"ACME\",0C)\n", "2: group 0007 in '(0007,\"ACME\",0C)' is not a private group"},
        {V "keep (00x9,\"ACME\",0C)\n", "2: the group of '(00x9,\"ACME\",0C)' must be four hex digits"},
        {V "keep (0019,\"  \",0C)\n", "2: empty private creator in '(0019,\"  \",0C)'"},
        {V "keep (0019,\"ACME\",0G)\n", "2: '(0019,\"ACME\",0G)' is not a tag or keyword"},
        {V "keep (0019,\"ACME\",100C)\n", "2: '(0019,\"ACME\",100C)' is not a tag or keyword"},
        {V "keep (0019,\"ACME)\n", "2: unterminated quote"},
        {V "keep (0019,\"A\\qB\",0C)\n", "2: unknown escape in a quoted value (only \\\" and \\\\ are escapes)"},
        {V "map PatientID\n", "2: expected a table file after map"},
        {V "map PatientID \"\"\n", "2: expected a table file after map"},
        {V "map PatientID t.csv otherwise\n",
         "2: expected 'else' or the end of the line after the table file, found 'otherwise'"},
        {V "map PatientID t.csv \"else\"\n", "2: expected 'else' or the end of the line after the table file"},
        {V "map PatientID t.csv else keep\n", "2: expected pseudonymize, remove or quarantine after else"},
        {V "map PatientID t.csv else\n", "2: expected pseudonymize, remove or quarantine after else"},
        {V "map PatientID t.csv else remove now\n", "2: unexpected 'now' at the end of the line"},
        {V "quarantine Modality == \"OT\"\n", "2: expected a quoted reason after quarantine"},
        {V "quarantine\n", "2: expected a quoted reason after quarantine"},
        {V "quarantine \"\" if Modality present\n", "2: empty quarantine reason"},
        {V "quarantine \"r\" when Modality present\n", "2: expected 'if' after the quarantine reason"},
        {V "quarantine \"r\"\n", "2: expected 'if' after the quarantine reason"},
        {V "quarantine \"r\" if\n", "2: expected a target after 'if'"},
        {V "quarantine \"r\" if Modality present and\n", "2: expected a target after 'and'"},
        {V "quarantine \"r\" if Modality = \"OT\"\n", "2: expected ==, !=, ~, present or absent after Modality"},
        {V "quarantine \"r\" if Modality\n", "2: expected ==, !=, ~, present or absent after Modality"},
        {V "quarantine \"r\" if (0008,0060) \"OT\"\n",
         "2: expected ==, !=, ~, present or absent after (0008,0060)"},
        {V "quarantine \"r\" if Modality == OT\n", "2: expected a quoted value after =="},
        {V "quarantine \"r\" if Modality ~\n", "2: expected a quoted value after ~"},
        {V "quarantine \"r\" if Modality present or PatientID absent\n",
         "2: expected 'and' or the end of the line, found 'or'"},
        {V "quarantine \"r\" if Modality present \"x\"\n",
         "2: expected 'and' or the end of the line, found a quoted value"},
        {V "quarantine \"r\" if (60xx,3000) present\n",
         "2: a condition needs one element, but '(60xx,3000)' names many"},
        {V "quarantine \"r\" if OverlayData present\n",
         "2: a condition needs one element, but 'OverlayData' names many"},
        {V "quarantine \"r\" if (0019,\"ACME\",xx) present\n",
         "2: a condition needs one element, but '(0019,\"ACME\",xx)' names many"},
        {V "quarantine \"r\" if Modality == \"OT\"x\n", "2: text after a closing quote"},
        {"# c\r\n\r\nmedveil-recipe 1\r\n\r\n  # indented comment\r\nkepp X\r\n", "6: unknown action 'kepp'"},
        {"\xEF\xBB\xBF" V "kepp X\n", "2: unknown action 'kepp'"},
        {V "replace InstitutionName \"\xC3\x28\"\n", "2: not valid UTF-8"},
        {V "replace InstitutionName \"\xED\xA0\x80\"\n", "2: not valid UTF-8"},
        {V "keep PatientName\n" "keep\tPatientID\n" "\n" "remove Pati\xC3\xA9ntID\n",
         "5: 'Pati\xC3\xA9ntID' is not a tag or keyword"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_load_error(cases[i].text, cases[i].message);
}

static void test_limit_errors(void **state)
{
    char *text;
    size_t len = 0, cap = 64u << 20;
    MvRecipe *recipe = NULL;
    MvError err;
    const char *path;

    (void)state;
    text = malloc(cap);
    assert_non_null(text);

    /* A NUL byte. */
    memcpy(text, V "keep Patient\0Name\n", sizeof V "keep Patient\0Name\n" - 1);
    path = write_bytes("nul.recipe", text, sizeof V "keep Patient\0Name\n" - 1);
    assert_int_equal(mv__recipe_load(&recipe, path, &err), MV_ERR_ARG);
    assert_true(strstr(err.message, "nul.recipe:2: contains a NUL byte") != NULL);

    /* 4096 bytes are a line, 4097 too many. */
    len = (size_t)snprintf(text, cap, V "#");
    memset(text + len, 'a', 4095);
    len += 4095;
    text[len] = '\0';
    recipe = load_ok(text);
    mv__recipe_free(recipe);
    recipe = NULL;
    text[len++] = 'a';
    text[len] = '\0';
    assert_load_error(text, "2: line longer than 4096 bytes");

    /* A quarantine reason of 255 bytes is fine, 256 are too many. */
    len = (size_t)snprintf(text, cap, V "quarantine \"");
    memset(text + len, 'r', 255);
    len += 255;
    len += (size_t)snprintf(text + len, cap - len, "\" if Modality present\n");
    recipe = load_ok(text);
    mv__recipe_free(recipe);
    recipe = NULL;
    len = (size_t)snprintf(text, cap, V "quarantine \"");
    memset(text + len, 'r', 256);
    len += 256;
    snprintf(text + len, cap - len, "\" if Modality present\n");
    assert_load_error(text, "2: quarantine reason longer than 255 bytes");

    /* 100000 rules (both kinds count) are fine, one more is not. */
    len = (size_t)snprintf(text, cap, V);
    for (int i = 0; i < 99999; i++)
        len += (size_t)snprintf(text + len, cap - len, "keep (0009,%04X)\n", (unsigned)(i & 0xFFFF));
    len += (size_t)snprintf(text + len, cap - len, "quarantine \"q\" if Modality absent\n");
    recipe = load_ok(text);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0009, 0x1234)), MV_RA_KEEP);
    /* The limit holds over every loaded file. */
    assert_int_equal(load_text(&recipe, "more.recipe", V "keep PatientName\n", &err), MV_ERR_ARG);
    assert_true(strstr(err.message, "more.recipe:2: more than 100000 rules") != NULL);
    mv__recipe_free(recipe);
    recipe = NULL;
    snprintf(text + len, cap - len, "keep PatientName\n");
    assert_load_error(text, "100002: more than 100000 rules");
    free(text);
}

static void test_file_errors(void **state)
{
    MvRecipe *recipe = NULL;
    MvError err;
    char want[600];

    (void)state;
    assert_int_equal(mv__recipe_load(&recipe, path_of("missing.recipe"), &err), MV_ERR_IO);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path_of("missing.recipe"));
    assert_string_equal(err.message, want);
    assert_null(recipe);
    make_dir("folder.recipe");
    assert_int_equal(mv__recipe_load(&recipe, path_of("folder.recipe"), &err), MV_ERR_ARG);
    snprintf(want, sizeof want, "%s: not a regular file", path_of("folder.recipe"));
    assert_string_equal(err.message, want);
    assert_null(recipe);
}

/* ---- Map tables ------------------------------------------------------------------- */

static void test_map_lookup(void **state)
{
    MvRecipe *recipe;
    const MvRecipeRule *rule;

    (void)state;
    make_dir("tables");
    write_text("tables/ids.csv", "\xEF\xBB\xBF" "Original , Replacement\r\n"
                                 "P1,S1\r\n"
                                 "\r\n"
                                 "  P2  ,  S2  \r\n"
                                 "\"P,3\",\"S \"\"3\"\"\"\r\n"
                                 "  \" P4 \" , S4\r\n"
                                 "Pat\xC3\xA9,S\xC3\xA9\n"
                                 "P10,S10");
    write_text("tables/names.csv", "DOE^JOHN,SUBJECT^ONE\n");
    write_text("tables/sub.recipe", V "map PatientID ids.csv else pseudonymize\n"
                                      "map PatientName \"names.csv\" else remove\n");
    {
        MvError err;
        recipe = NULL;
        if (mv__recipe_load(&recipe, path_of("tables/sub.recipe"), &err) != MV_OK)
            fail_msg("%s", err.message);
    }
    rule = mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0020));
    assert_non_null(rule);
    assert_string_equal(mv__recipe_map_lookup(rule, "P1"), "S1");
    assert_string_equal(mv__recipe_map_lookup(rule, "  P1 "), "S1");
    assert_string_equal(mv__recipe_map_lookup(rule, "P2"), "S2");
    assert_string_equal(mv__recipe_map_lookup(rule, "P,3"), "S \"3\"");
    assert_string_equal(mv__recipe_map_lookup(rule, "P4"), "S4");
    assert_string_equal(mv__recipe_map_lookup(rule, "Pat\xC3\xA9"), "S\xC3\xA9");
    assert_string_equal(mv__recipe_map_lookup(rule, "P10"), "S10");
    assert_null(mv__recipe_map_lookup(rule, "P"));
    assert_null(mv__recipe_map_lookup(rule, "p1"));
    assert_null(mv__recipe_map_lookup(rule, "P100"));
    assert_null(mv__recipe_map_lookup(rule, ""));
    assert_null(mv__recipe_map_lookup(rule, "Original"));
    assert_null(mv__recipe_map_lookup(NULL, "P1"));
    assert_null(mv__recipe_map_lookup(mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0010)), "P1"));
    assert_string_equal(mv__recipe_map_lookup(mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0010)), "DOE^JOHN"),
                        "SUBJECT^ONE");
    /* A non-map rule has no table. */
    mv__recipe_free(recipe);
    recipe = load_ok(V "keep PatientID\n");
    assert_null(mv__recipe_map_lookup(mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0020)), "P1"));
    mv__recipe_free(recipe);
}

static void test_map_large(void **state)
{
    size_t cap = 32u << 20, len = 0;
    char *csv = malloc(cap), value[32];
    MvRecipe *recipe;
    const MvRecipeRule *rule;

    (void)state;
    assert_non_null(csv);
    /* 1000000 rows, written in descending order so that the table must be sorted. */
    for (int i = 999999; i >= 0; i--)
        len += (size_t)snprintf(csv + len, cap - len, "ID%07d,S%d\n", i, i);
    write_bytes("big.csv", csv, len);
    recipe = load_ok(V "map PatientID big.csv\n");
    rule = mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0020));
    for (int i = 0; i < 1000000; i += 99991) {
        char want[32];
        snprintf(value, sizeof value, "ID%07d", i);
        snprintf(want, sizeof want, "S%d", i);
        assert_string_equal(mv__recipe_map_lookup(rule, value), want);
    }
    assert_string_equal(mv__recipe_map_lookup(rule, "ID0999999"), "S999999");
    assert_null(mv__recipe_map_lookup(rule, "ID1000000"));
    mv__recipe_free(recipe);

    /* One row more is an error; a header line does not count as a row. */
    snprintf(csv + len, cap - len, "ID1000000,S\n");
    write_text("big.csv", csv);
    assert_load_error(V "map PatientID big.csv\n", "2: map table big.csv:1000001: more than 1000000 rows");
    write_bytes("big.csv", "original,replacement\n", 21);
    {
        FILE *f = fopen(path_of("big.csv"), "ab");
        assert_non_null(f);
        assert_int_equal(fwrite(csv, 1, len, f), len);
        fclose(f);
    }
    recipe = load_ok(V "map PatientID big.csv\n");
    mv__recipe_free(recipe);
    free(csv);
}

static void test_map_errors(void **state)
{
    static const struct {
        const char *csv;
        const char *message;
    } cases[] = {
        {"PX1,S1,extra\n", "2: map table t.csv:1: expected 2 columns, found 3"},
        {"original,replacement\nPX1\n", "2: map table t.csv:2: expected 2 columns, found 1"},
        {"original,replacement\nPX1,S1\nPX2,S2\nPX1,S3\n", "2: map table t.csv:4: duplicate original (first on line 2)"},
        {"PX9,S0\nPX1,S1\n PX1 ,S2\nPX9,S3\nPX1,S4\n", "2: map table t.csv:3: duplicate original (first on line 2)"},
        {"PX1,S1\n\"PX1\",S2\n", "2: map table t.csv:2: duplicate original (first on line 1)"},
        {"PX1,S1\n,S2\n", "2: map table t.csv:2: empty original"},
        {"PX1,S1\n  \"\"  ,S2\n", "2: map table t.csv:2: empty original"},
        {"PX1,\n", "2: map table t.csv:1: empty replacement"},
        {"\"PX1,S1\n", "2: map table t.csv:1: unterminated quote"},
        {"\"PX1\"x,S1\n", "2: map table t.csv:1: text after a closing quote"},
        {"PX1,S\xC3\n", "2: map table t.csv:1: not valid UTF-8"},
        {"original,replacement\n", NULL}, /* no rows: fine */
    };
    MvRecipe *recipe = NULL;
    MvError err;
    char want[600];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text("t.csv", cases[i].csv);
        if (cases[i].message == NULL) {
            recipe = load_ok(V "map PatientID t.csv\n");
            assert_null(mv__recipe_map_lookup(mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0020)), "PX1"));
            mv__recipe_free(recipe);
            recipe = NULL;
            continue;
        }
        assert_load_error(V "map PatientID t.csv\n", cases[i].message);
        /* Messages never carry a value of the table. */
        assert_int_equal(load_text(&recipe, "bad.recipe", V "map PatientID t.csv\n", &err), MV_ERR_ARG);
        {
            const char *tail = err.message + strlen(path_of("bad.recipe"));
            assert_null(strstr(tail, "PX"));
            assert_null(strstr(tail, "S1"));
        }
    }
    /* A NUL byte and an over-long line. */
    write_bytes("t.csv", "PX1,S\0\n", 7);
    assert_load_error(V "map PatientID t.csv\n", "2: map table t.csv:1: contains a NUL byte");
    {
        char line[5000];
        memset(line, 'a', sizeof line);
        line[2000] = ',';
        line[4097] = '\n';
        write_bytes("t.csv", line, 4098);
        assert_load_error(V "map PatientID t.csv\n", "2: map table t.csv:1: line longer than 4096 bytes");
        line[4096] = '\n';
        write_bytes("t.csv", line, 4097);
        recipe = load_ok(V "map PatientID t.csv\n");
        mv__recipe_free(recipe);
        recipe = NULL;
    }
    /* A missing table: the recipe's line, the table's name as written, MV_ERR_IO. */
    assert_load_error_code(V "keep PatientName\nmap PatientID nowhere.csv else remove\n", MV_ERR_IO,
                           "3: map table nowhere.csv: cannot open: No such file or directory");
    /* Syntax errors on the line come before the table is read. */
    assert_load_error(V "map PatientID nowhere.csv else keep\n",
                      "2: expected pseudonymize, remove or quarantine after else");
    /* Absolute paths are used as given. */
    snprintf(want, sizeof want, V "map PatientID %s\n", path_of("t.csv"));
    write_text("t.csv", "PX1,S1\n");
    recipe = load_ok(want);
    assert_string_equal(mv__recipe_map_lookup(mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0020)), "PX1"), "S1");
    mv__recipe_free(recipe);
}

/* ---- Hash, appending, failure ------------------------------------------------------ */

static void test_hash(void **state)
{
    MvRecipe *recipe = NULL;
    MvError err;
    char want[65], first[65];
    const char *paths[4];

    (void)state;
    assert_string_equal(mv__recipe_hash(NULL), "");
    paths[0] = strdup(write_text("h1.recipe", V "keep PatientSex\nmap PatientID h.csv\n"));
    paths[1] = strdup(write_text("h.csv", "P1,S1\n"));
    paths[2] = strdup(write_text("h2.recipe", V "keep PatientAge\n"));
    assert_int_equal(mv__recipe_load(&recipe, paths[0], &err), MV_OK);
    sha256_files(paths, 2, want);
    assert_string_equal(mv__recipe_hash(recipe), want);
    assert_int_equal(strlen(mv__recipe_hash(recipe)), 64);
    snprintf(first, sizeof first, "%s", mv__recipe_hash(recipe));
    /* A second recipe: the hash covers every file in load order. */
    assert_int_equal(mv__recipe_load(&recipe, paths[2], &err), MV_OK);
    sha256_files(paths, 3, want);
    assert_string_equal(mv__recipe_hash(recipe), want);
    assert_string_not_equal(mv__recipe_hash(recipe), first);
    mv__recipe_free(recipe);
    recipe = NULL;

    /* One byte changed in the recipe (a space), then one in the table. */
    write_text("h1.recipe", V "keep  PatientSex\nmap PatientID h.csv\n");
    assert_int_equal(mv__recipe_load(&recipe, paths[0], &err), MV_OK);
    assert_string_not_equal(mv__recipe_hash(recipe), first);
    sha256_files(paths, 2, want);
    assert_string_equal(mv__recipe_hash(recipe), want);
    mv__recipe_free(recipe);
    recipe = NULL;
    write_text("h1.recipe", V "keep PatientSex\nmap PatientID h.csv\n");
    write_text("h.csv", "P1,S2\n");
    assert_int_equal(mv__recipe_load(&recipe, paths[0], &err), MV_OK);
    assert_string_not_equal(mv__recipe_hash(recipe), first);
    mv__recipe_free(recipe);
    recipe = NULL;
    write_text("h.csv", "P1,S1\n");
    assert_int_equal(mv__recipe_load(&recipe, paths[0], &err), MV_OK);
    assert_string_equal(mv__recipe_hash(recipe), first);
    mv__recipe_free(recipe);
    for (int i = 0; i < 3; i++)
        free((void *)paths[i]);
}

static void test_failed_load_unchanged(void **state)
{
    MvRecipe *recipe = NULL, *before;
    MvError err;
    const MvRecipeRule *rule;
    char hash[65], reason[256];
    MvFile *file = new_file();
    MvDataset *ds = mv_file_dataset(file);

    (void)state;
    write_text("u.csv", "P1,S1\n");
    assert_int_equal(load_text(&recipe, "good.recipe", V "keep PatientName\nempty (0010,xxxx)\n"
                                                         "map PatientID u.csv\n"
                                                         "quarantine \"good\" if Modality present\n",
                               &err),
                     MV_OK);
    before = recipe;
    rule = mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0010));
    snprintf(hash, sizeof hash, "%s", mv__recipe_hash(recipe));
    set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "OT");

    /* Fails on the last line, after rules, a table and a quarantine rule were parsed. */
    write_text("u2.csv", "P9,S9\n");
    assert_int_equal(load_text(&recipe, "bad.recipe", V "remove PatientName\nremove (0010,xxxx)\n"
                                                        "map PatientID u2.csv\n"
                                                        "quarantine \"bad\" if Modality present\n"
                                                        "kepp PatientID\n",
                               &err),
                     MV_ERR_ARG);
    assert_ptr_equal(recipe, before);
    assert_ptr_equal(mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0010)), rule);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x0030)), MV_RA_EMPTY);
    assert_string_equal(mv__recipe_map_lookup(mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0020)), "P1"), "S1");
    assert_null(mv__recipe_map_lookup(mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0020)), "P9"));
    assert_string_equal(mv__recipe_hash(recipe), hash);
    assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 1);
    assert_string_equal(reason, "good");
    /* A missing file, too. */
    assert_int_equal(mv__recipe_load(&recipe, path_of("absent.recipe"), &err), MV_ERR_IO);
    assert_ptr_equal(recipe, before);
    assert_string_equal(mv__recipe_hash(recipe), hash);
    /* A later good load still works and sees only the good rules before it. */
    assert_int_equal(load_text(&recipe, "next.recipe", V "keep PatientAge\n", &err), MV_OK);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x1010)), MV_RA_KEEP);
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x0010)), MV_RA_KEEP);
    /* Pointers handed out before stay valid after another load. */
    assert_int_equal(rule->action, MV_RA_KEEP);
    assert_int_equal(rule->line, 2);
    mv__recipe_free(recipe);
    mv_file_free(file);
}

static void test_null_and_empty(void **state)
{
    MvRecipe *recipe;
    char reason[16] = "x";

    (void)state;
    mv__recipe_free(NULL);
    assert_null(mv__recipe_rule(NULL, NULL, MV_TAG(0x0010, 0x0010)));
    assert_int_equal(mv__recipe_quarantine(NULL, NULL, reason, sizeof reason), 0);
    /* A recipe with only the version line is valid and empty. */
    recipe = load_ok("# nothing to do\n" V);
    assert_null(mv__recipe_rule(recipe, NULL, MV_TAG(0x0010, 0x0010)));
    assert_int_equal(strlen(mv__recipe_hash(recipe)), 64);
    mv__recipe_free(recipe);
    /* No final newline. */
    recipe = load_ok(V "keep PatientName");
    assert_int_equal(action_of(recipe, NULL, MV_TAG(0x0010, 0x0010)), MV_RA_KEEP);
    mv__recipe_free(recipe);
}

/* The shipped example loads and says what docs/recipes.md says it does. */
static void test_example_recipe(void **state)
{
    const char *source = getenv("MV_SOURCE_DIR");
    char path[1024];
    MvRecipe *recipe = NULL;
    MvError err;
    MvFile *file;
    MvDataset *ds;
    const MvRecipeRule *rule;
    char reason[256];

    (void)state;
    if (source == NULL)
        skip();
    snprintf(path, sizeof path, "%s/examples/recipes/research.recipe", source);
    if (mv__recipe_load(&recipe, path, &err) != MV_OK)
        fail_msg("%s", err.message);
    file = new_file();
    ds = mv_file_dataset(file);
    set_string(ds, MV_TAG(0x0019, 0x0010), MV_VR_LO, "SIEMENS MR HEADER");
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0010, 0x0040)), MV_RA_KEEP);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0010, 0x1010)), MV_RA_KEEP);
    rule = mv__recipe_rule(recipe, ds, MV_TAG(0x0008, 0x0080));
    assert_int_equal(rule->action, MV_RA_REPLACE);
    assert_string_equal(rule->literal, "Research Site");
    rule = mv__recipe_rule(recipe, ds, MV_TAG(0x0010, 0x0020));
    assert_int_equal(rule->action, MV_RA_MAP);
    assert_int_equal(rule->map_missing, MV_RA_KEEP);
    assert_string_equal(mv__recipe_map_lookup(rule, "FAKE-MRN-0003"), "SUBJ-003");
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0008, 0x0020)), MV_RA_SHIFT);
    assert_int_equal(action_of(recipe, ds, MV_TAG(0x0019, 0x100C)), MV_RA_KEEP);
    set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "SC");
    assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 0);
    set_string(ds, MV_TAG(0x0028, 0x0301), MV_VR_CS, "YES");
    assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 1);
    assert_string_equal(reason, "secondary capture with burned-in annotation");
    set_string(ds, MV_TAG(0x0008, 0x0060), MV_VR_CS, "OT");
    assert_int_equal(mv__recipe_quarantine(recipe, ds, reason, sizeof reason), 1);
    assert_string_equal(reason, "modality not released");
    mv__recipe_free(recipe);
    mv_file_free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_action),
        cmocka_unit_test(test_target_forms),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_two_recipes_append),
        cmocka_unit_test(test_private_creator),
        cmocka_unit_test(test_quarantine_conditions),
        cmocka_unit_test(test_quarantine_first_match),
        cmocka_unit_test(test_version_errors),
        cmocka_unit_test(test_rule_errors),
        cmocka_unit_test(test_limit_errors),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_map_lookup),
        cmocka_unit_test(test_map_large),
        cmocka_unit_test(test_map_errors),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_failed_load_unchanged),
        cmocka_unit_test(test_null_and_empty),
        cmocka_unit_test(test_example_recipe),
    };

    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
