/* Unit tests of the PS3.6 data dictionary, tag parsing and the transfer syntax table
 * (src/dicom/dict.c and the generated dict_table.c). Every expected value is taken from
 * the standard: the few tags spelled out here are from PS3.6 Table 6-1 and PS3.5 7.6/7.8,
 * the long table below was extracted from ../shared/standard/attributes.json (the
 * standard's PS3.6 as data), and test_all_attributes walks that file entry by entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "medveil/dicom.h"

/* ---- Helpers --------------------------------------------------------------------- */

static void assert_vr(MvVr got, const char *expected)
{
    char buf[3];

    assert_string_equal(mv_vr_string(got, buf), expected);
}

/* The entry for tag, which must exist. */
static const MvDictEntry *must_lookup(uint32_t tag)
{
    const MvDictEntry *e = mv_dict_lookup(tag);

    if (e == NULL)
        fail_msg("(%04X,%04X) is not in the dictionary", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF));
    return e;
}

static uint32_t parse_ok(const char *text)
{
    uint32_t tag = 0xDEADBEEF;
    MvError err;

    mv_error_clear(&err);
    if (mv_tag_parse(text, &tag, &err) != MV_OK)
        fail_msg("mv_tag_parse(\"%s\") failed: %s", text, err.message);
    return tag;
}

/* 1 if text is rejected with MV_ERR_ARG and a message; prints what happened otherwise. */
static int parse_fails(const char *text)
{
    uint32_t tag = 0xDEADBEEF;
    MvError err;
    MvStatus st;

    mv_error_clear(&err);
    st = mv_tag_parse(text, &tag, &err);
    if (st == MV_OK) {
        print_error("mv_tag_parse(\"%s\") accepted it as %08X\n", text, (unsigned)tag);
        return 0;
    }
    if (st != MV_ERR_ARG || err.code != MV_ERR_ARG || err.message[0] == '\0') {
        print_error("mv_tag_parse(\"%s\") returned %d, err.code %d, message \"%s\"\n", text, st, err.code,
                    err.message);
        return 0;
    }
    return 1;
}

/* ---- Exact entries ----------------------------------------------------------------- */

/* PS3.6 Table 6-1: (0010,0010) Patient's Name, PatientName, PN, VM 1, not retired. */
static void test_lookup_patient_name(void **state)
{
    const MvDictEntry *e;

    (void)state;
    e = must_lookup(MV_TAG(0x0010, 0x0010));
    assert_int_equal(e->tag, 0x00100010u);
    assert_int_equal(e->mask, 0xFFFFFFFFu);
    assert_string_equal(e->keyword, "PatientName");
    assert_string_equal(e->name, "Patient's Name");
    assert_string_equal(e->vm, "1");
    assert_vr(e->vr, "PN");
    assert_int_equal(e->vr_alt, MV_VR_NONE);
    assert_int_equal(e->retired, 0);
    assert_string_equal(mv_dict_keyword(MV_TAG(0x0010, 0x0010)), "PatientName");
    assert_int_equal(mv_dict_vr(MV_TAG(0x0010, 0x0010)), MV_VR_PN);
}

/* PS3.6 Table 6-1: a few more exact entries of different kinds. */
static void test_lookup_other_exact(void **state)
{
    const MvDictEntry *e;

    (void)state;
    /* (7FE0,0010) Pixel Data, OB or OW: the exact entry wins over (7Fxx,0010). */
    e = must_lookup(MV_TAG(0x7FE0, 0x0010));
    assert_string_equal(e->keyword, "PixelData");
    assert_vr(e->vr, "OB");
    assert_vr(e->vr_alt, "OW");
    /* (0028,0106) Smallest Image Pixel Value, US or SS. */
    e = must_lookup(MV_TAG(0x0028, 0x0106));
    assert_string_equal(e->keyword, "SmallestImagePixelValue");
    assert_vr(e->vr, "US");
    assert_vr(e->vr_alt, "SS");
    /* (0028,1200) Gray Lookup Table Data, US or SS or OW (retired): first two VRs. */
    e = must_lookup(MV_TAG(0x0028, 0x1200));
    assert_string_equal(e->keyword, "GrayLookupTableData");
    assert_vr(e->vr, "US");
    assert_vr(e->vr_alt, "SS");
    assert_int_equal(e->retired, 1);
    /* (0008,1115) Referenced Series Sequence, SQ. */
    e = must_lookup(MV_TAG(0x0008, 0x1115));
    assert_string_equal(e->keyword, "ReferencedSeriesSequence");
    assert_vr(e->vr, "SQ");
    /* (0002,0000) File Meta Information Group Length is a real entry of group 0002. */
    e = must_lookup(MV_TAG(0x0002, 0x0000));
    assert_string_equal(e->keyword, "FileMetaInformationGroupLength");
    assert_vr(e->vr, "UL");
    /* (FFFE,E000) Item has no VR ("See Note 2" in PS3.6). */
    e = must_lookup(MV_TAG_ITEM);
    assert_string_equal(e->keyword, "Item");
    assert_int_equal(e->vr, MV_VR_NONE);
    /* (0018,0061) is a retired entry with no name or keyword but a VR of DS. */
    e = must_lookup(MV_TAG(0x0018, 0x0061));
    assert_string_equal(e->keyword, "");
    assert_vr(e->vr, "DS");
    assert_int_equal(e->retired, 1);
}

static void test_lookup_keyword(void **state)
{
    const MvDictEntry *e;

    (void)state;
    e = mv_dict_lookup_keyword("PatientName");
    assert_non_null(e);
    assert_int_equal(e->tag, 0x00100010u);
    e = mv_dict_lookup_keyword("PixelData");
    assert_non_null(e);
    assert_int_equal(e->tag, 0x7FE00010u);
    e = mv_dict_lookup_keyword("FileMetaInformationGroupLength");
    assert_non_null(e);
    assert_int_equal(e->tag, 0x00020000u);
    /* Keywords of repeating entries find the entry with its x digits zero. */
    e = mv_dict_lookup_keyword("OverlayData");
    assert_non_null(e);
    assert_int_equal(e->tag, 0x60003000u);
    assert_int_equal(e->mask, 0xFF00FFFFu);
    /* Case-sensitive; not a keyword; empty; NULL. */
    assert_null(mv_dict_lookup_keyword("patientname"));
    assert_null(mv_dict_lookup_keyword("PatientNam"));
    assert_null(mv_dict_lookup_keyword("PatientNameX"));
    assert_null(mv_dict_lookup_keyword("Bogus"));
    assert_null(mv_dict_lookup_keyword(""));
    assert_null(mv_dict_lookup_keyword(NULL));
}

/* ---- Repeating groups and masked entries ---------------------------------------- */

/* PS3.5 7.6: (60xx,eeee) overlay and (50xx,eeee) curve groups repeat in even groups. */
static void test_repeating_groups(void **state)
{
    const MvDictEntry *e;

    (void)state;
    /* (60xx,3000) Overlay Data, OB or OW. */
    e = must_lookup(MV_TAG(0x6002, 0x3000));
    assert_string_equal(e->keyword, "OverlayData");
    assert_int_equal(e->tag, 0x60003000u);
    assert_int_equal(e->mask, 0xFF00FFFFu);
    assert_vr(e->vr, "OB");
    assert_vr(e->vr_alt, "OW");
    assert_string_equal(mv_dict_keyword(MV_TAG(0x6002, 0x3000)), "OverlayData");
    /* PS3.5 A.1: in implicit VR, Overlay Data, Pixel Data and Waveform Data are OW. */
    assert_vr(mv_dict_vr(MV_TAG(0x6002, 0x3000)), "OW");
    assert_vr(mv_dict_vr(MV_TAG(0x6000, 0x3000)), "OW");
    assert_vr(mv_dict_vr(MV_TAG(0x601E, 0x3000)), "OW");
    assert_vr(mv_dict_vr(MV_TAG(0x7FE0, 0x0010)), "OW");
    assert_vr(mv_dict_vr(MV_TAG(0x5400, 0x1010)), "OW");
    /* (60xx,0010) Overlay Rows US. */
    e = must_lookup(MV_TAG(0x6000, 0x0010));
    assert_string_equal(e->keyword, "OverlayRows");
    assert_vr(e->vr, "US");
    e = must_lookup(MV_TAG(0x601E, 0x0011));
    assert_string_equal(e->keyword, "OverlayColumns");
    /* (50xx,0005) Curve Dimensions US, retired. */
    e = must_lookup(MV_TAG(0x5010, 0x0005));
    assert_string_equal(e->keyword, "CurveDimensions");
    assert_int_equal(e->tag, 0x50000005u);
    assert_vr(e->vr, "US");
    assert_int_equal(e->retired, 1);
    assert_vr(mv_dict_vr(MV_TAG(0x5010, 0x0005)), "US");
    /* (7Fxx,0010) Variable Pixel Data (retired), other than (7FE0,0010). */
    e = must_lookup(MV_TAG(0x7F10, 0x0010));
    assert_string_equal(e->keyword, "VariablePixelData");
    /* Odd groups are private (PS3.5 7.8): (6001,3000) is not Overlay Data. */
    assert_null(mv_dict_lookup(MV_TAG(0x6001, 0x3000)));
    assert_null(mv_dict_lookup(MV_TAG(0x5011, 0x0005)));
    /* An element that no (60xx,eeee) entry defines. */
    assert_null(mv_dict_lookup(MV_TAG(0x6000, 0x0013)));
}

/* PS3.6 entries with x digits in the element number. */
static void test_element_masks(void **state)
{
    const MvDictEntry *e;

    (void)state;
    /* (0020,31xx) Source Image IDs, CS, retired. */
    e = must_lookup(MV_TAG(0x0020, 0x3105));
    assert_string_equal(e->keyword, "SourceImageIDs");
    assert_int_equal(e->tag, 0x00203100u);
    assert_int_equal(e->mask, 0xFFFFFF00u);
    assert_vr(e->vr, "CS");
    assert_string_equal(must_lookup(MV_TAG(0x0020, 0x31FF))->keyword, "SourceImageIDs");
    /* (0028,04x0) Rows For Nth Order Coefficients US; (0028,04x3) ... Pointers AT. */
    e = must_lookup(MV_TAG(0x0028, 0x0410));
    assert_string_equal(e->keyword, "RowsForNthOrderCoefficients");
    assert_int_equal(e->mask, 0xFFFFFF0Fu);
    assert_vr(e->vr, "US");
    e = must_lookup(MV_TAG(0x0028, 0x04F3));
    assert_string_equal(e->keyword, "CoefficientCodingPointers");
    assert_vr(e->vr, "AT");
    assert_vr(mv_dict_vr(MV_TAG(0x0028, 0x04F3)), "AT");
    /* (0028,0400) is the exact entry Transform Label, not (0028,04x0). */
    e = must_lookup(MV_TAG(0x0028, 0x0400));
    assert_string_equal(e->keyword, "TransformLabel");
    assert_vr(e->vr, "LO");
    /* (0028,04x5) is defined by no entry. */
    assert_null(mv_dict_lookup(MV_TAG(0x0028, 0x0405)));
    /* (0028,08x0) Code Label, (0028,08x8) Image Data Location. */
    assert_string_equal(must_lookup(MV_TAG(0x0028, 0x0800))->keyword, "CodeLabel");
    assert_string_equal(must_lookup(MV_TAG(0x0028, 0x0838))->keyword, "ImageDataLocation");
    assert_null(mv_dict_lookup(MV_TAG(0x0028, 0x0809)));
    /* (1000,xxx0) Escape Triplet .. (1000,xxx5) Shift Table Triplet, none for xxx6. */
    e = must_lookup(MV_TAG(0x1000, 0x1230));
    assert_string_equal(e->keyword, "EscapeTriplet");
    assert_int_equal(e->mask, 0xFFFF000Fu);
    assert_string_equal(must_lookup(MV_TAG(0x1000, 0x1235))->keyword, "ShiftTableTriplet");
    assert_null(mv_dict_lookup(MV_TAG(0x1000, 0x1236)));
    /* (1010,xxxx) Zonal Map. */
    e = must_lookup(MV_TAG(0x1010, 0xABCD));
    assert_string_equal(e->keyword, "ZonalMap");
    assert_int_equal(e->mask, 0xFFFF0000u);
}

/* ---- Unknown, private and group length tags ------------------------------------- */

static void test_unknown_tags(void **state)
{
    static const uint32_t unknown[] = {
        MV_TAG(0x0010, 0x0011), MV_TAG(0x0008, 0x0003), MV_TAG(0x7FE0, 0x0050),
        MV_TAG(0x0009, 0x1010), MV_TAG(0x0011, 0x1010), MV_TAG(0x7FE1, 0x1010),
    };

    (void)state;
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const MvDictEntry *e = mv_dict_lookup(unknown[i]);
        if (e != NULL)
            fail_msg("(%04X,%04X) found as %s", MV_TAG_GROUP(unknown[i]), MV_TAG_ELEMENT(unknown[i]), e->keyword);
        assert_string_equal(mv_dict_keyword(unknown[i]), "");
        /* Implicit VR of an unknown element is UN (PS3.5 6.2.2). */
        assert_vr(mv_dict_vr(unknown[i]), "UN");
    }
}

/* PS3.5 7.8.1: (gggg,0010-00FF) of an odd group > 0008 reserve private blocks; LO. */
static void test_private_creators(void **state)
{
    static const uint32_t creators[] = {
        MV_TAG(0x0009, 0x0010), MV_TAG(0x0029, 0x0011), MV_TAG(0x7FE1, 0x00FF), MV_TAG(0xFFFD, 0x0010),
    };

    (void)state;
    for (size_t i = 0; i < sizeof creators / sizeof creators[0]; i++) {
        assert_true(MV_TAG_IS_PRIVATE_CREATOR(creators[i]));
        assert_string_equal(mv_dict_keyword(creators[i]), "PrivateCreator");
        assert_vr(mv_dict_vr(creators[i]), "LO");
    }
    /* (gggg,0100) and up are private data elements, not creators. */
    assert_false(MV_TAG_IS_PRIVATE_CREATOR(MV_TAG(0x0009, 0x0100)));
    assert_string_equal(mv_dict_keyword(MV_TAG(0x0009, 0x1000)), "");
    assert_vr(mv_dict_vr(MV_TAG(0x0009, 0x1000)), "UN");
    /* Groups 0001, 0003, 0005, 0007 and FFFF are not private groups (PS3.5 7.8). */
    assert_false(MV_TAG_IS_PRIVATE(MV_TAG(0x0007, 0x0010)));
    assert_false(MV_TAG_IS_PRIVATE_CREATOR(MV_TAG(0x0003, 0x0010)));
    /* Even groups never hold creators. */
    assert_false(MV_TAG_IS_PRIVATE_CREATOR(MV_TAG(0x0010, 0x0010)));
    assert_string_equal(mv_dict_keyword(MV_TAG(0x0010, 0x0010)), "PatientName");
}

/* PS3.5 7.2: (gggg,0000) group lengths are UL. */
static void test_group_lengths(void **state)
{
    (void)state;
    assert_vr(mv_dict_vr(MV_TAG(0x0008, 0x0000)), "UL");
    assert_vr(mv_dict_vr(MV_TAG(0x0010, 0x0000)), "UL");
    assert_vr(mv_dict_vr(MV_TAG(0x7FE0, 0x0000)), "UL");
    assert_vr(mv_dict_vr(MV_TAG(0x0009, 0x0000)), "UL");
    assert_vr(mv_dict_vr(MV_TAG(0x0002, 0x0000)), "UL");
    assert_string_equal(mv_dict_keyword(MV_TAG(0x0010, 0x0000)), "GroupLength");
    assert_string_equal(mv_dict_keyword(MV_TAG(0x0028, 0x0000)), "GroupLength");
    assert_string_equal(mv_dict_keyword(MV_TAG(0x0002, 0x0000)), "FileMetaInformationGroupLength");
}

/* ---- Tag parsing ------------------------------------------------------------------ */

static void test_tag_parse(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("(0010,0010)"), 0x00100010u);
    assert_int_equal(parse_ok("0010,0010"), 0x00100010u);
    assert_int_equal(parse_ok("00100010"), 0x00100010u);
    assert_int_equal(parse_ok("PatientName"), 0x00100010u);
    assert_int_equal(parse_ok("(7fe0,0010)"), 0x7FE00010u);
    assert_int_equal(parse_ok("7FE00010"), 0x7FE00010u);
    assert_int_equal(parse_ok("(FFFE,E000)"), 0xFFFEE000u);
    assert_int_equal(parse_ok("(0009,1010)"), 0x00091010u);
    assert_int_equal(parse_ok("ReferencedSeriesSequence"), 0x00081115u);
    assert_int_equal(parse_ok("SOPInstanceUID"), 0x00080018u);
}

static void test_tag_parse_rejects(void **state)
{
    static const char *bad[] = {
        "0010,001", "(0010,0010", "0010,0010)", "Bogus", "", "001000100", "0010001",
        "(0010,0010))", "(0010,0010)x", "x(0010,0010)", "001G,0010", "(0010;0010)", "0010 0010",
        "00,100010", "0010,,0010", "patientname", "PatientName ", " PatientName",
        "(0010,0010) ", "(00100010", "0x00100010",
    };

    size_t n_accepted = 0;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        n_accepted += !parse_fails(bad[i]);
    assert_int_equal(n_accepted, 0);
    {
        uint32_t tag;
        assert_int_equal(mv_tag_parse(NULL, &tag, NULL), MV_ERR_ARG);
        assert_int_equal(mv_tag_parse("Bogus", &tag, NULL), MV_ERR_ARG);
    }
}

/* ---- Transfer syntaxes (PS3.5 Annex A, PS3.6 Table A-1) ---------------------------- */

static void test_ts_lookup(void **state)
{
    const MvTransferSyntax *ts;

    (void)state;
    ts = mv_ts_lookup("1.2.840.10008.1.2");
    assert_non_null(ts);
    assert_string_equal(ts->uid, "1.2.840.10008.1.2");
    assert_int_equal(ts->explicit_vr, 0);
    assert_int_equal(ts->big_endian, 0);
    assert_int_equal(ts->deflated, 0);
    assert_int_equal(ts->encapsulated, 0);

    ts = mv_ts_lookup("1.2.840.10008.1.2.1");
    assert_non_null(ts);
    assert_int_equal(ts->explicit_vr, 1);
    assert_int_equal(ts->big_endian, 0);
    assert_int_equal(ts->encapsulated, 0);

    ts = mv_ts_lookup("1.2.840.10008.1.2.1.99");
    assert_non_null(ts);
    assert_int_equal(ts->explicit_vr, 1);
    assert_int_equal(ts->deflated, 1);
    assert_int_equal(ts->encapsulated, 0);

    /* Explicit VR Big Endian is retired (PS3.6 Table A-1, PS3.5 A.3). */
    ts = mv_ts_lookup("1.2.840.10008.1.2.2");
    assert_non_null(ts);
    assert_int_equal(ts->explicit_vr, 1);
    assert_int_equal(ts->big_endian, 1);
    assert_int_equal(ts->retired, 1);

    /* JPEG Baseline and RLE Lossless are encapsulated (PS3.5 A.4). */
    ts = mv_ts_lookup("1.2.840.10008.1.2.4.50");
    assert_non_null(ts);
    assert_int_equal(ts->encapsulated, 1);
    assert_int_equal(ts->explicit_vr, 1);
    ts = mv_ts_lookup("1.2.840.10008.1.2.5");
    assert_non_null(ts);
    assert_int_equal(ts->encapsulated, 1);
    ts = mv_ts_lookup("1.2.840.10008.1.2.4.90");
    assert_non_null(ts);
    assert_int_equal(ts->encapsulated, 1);
}

/* UI values are padded to even length with a NUL (PS3.5 6.2), others with a space. */
static void test_ts_lookup_padding(void **state)
{
    static const char nul_padded[] = {'1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8',
                                      '.', '1', '.', '2', '.', '1', '\0', '\0'};
    const MvTransferSyntax *ts;

    (void)state;
    ts = mv_ts_lookup(nul_padded);
    assert_non_null(ts);
    assert_string_equal(ts->uid, MV_UID_EXPLICIT_LE);
    ts = mv_ts_lookup("1.2.840.10008.1.2.1 ");
    assert_non_null(ts);
    assert_string_equal(ts->uid, MV_UID_EXPLICIT_LE);
    ts = mv_ts_lookup("1.2.840.10008.1.2  ");
    assert_non_null(ts);
    assert_string_equal(ts->uid, MV_UID_IMPLICIT_LE);

    assert_null(mv_ts_lookup("1.2.840.10008.1.2.1.9"));
    assert_null(mv_ts_lookup("1.2.840.10008.1.2."));
    assert_null(mv_ts_lookup("1.2.840.10008.1"));
    assert_null(mv_ts_lookup("1.2.840.10008.1.2.1x"));
    assert_null(mv_ts_lookup(""));
    assert_null(mv_ts_lookup(NULL));
}

/* ---- The whole dictionary against the standard -------------------------------------- */

/* Oracle: /usr/bin/python3 -c 'import json; a = json.load(open("../shared/standard/attributes.json"));
 *         print(len({e["tag"] for e in a}))'  ->  5129 (every (tag, mask) pair is unique). */
#define ATTRIBUTES_JSON_ENTRIES 5129

static void test_dict_size(void **state)
{
    (void)state;
    assert_int_equal(mv_dict_size(), ATTRIBUTES_JSON_ENTRIES);
}

typedef struct KnownTag {
    uint32_t tag;
    const char *keyword;
    const char *vr; /* first VR of the entry, "" for none */
    int retired;
} KnownTag;

/* Every 16th exact entry with a keyword of the standard's PS3.6, in tag order. Oracle:
 *   /usr/bin/python3 - <<'EOF'
 *   import json
 *   a = json.load(open('../shared/standard/attributes.json'))
 *   exact = sorted((e for e in a if 'x' not in e['tag'].lower() and e['keyword']),
 *                  key=lambda e: int(e['id'], 16))
 *   for e in exact[::16]:
 *       vr = e['valueRepresentation']
 *       vr = '' if vr in ('', 'See Note 2') else vr.split(' or ')[0]
 *       print('{0x%08Xu, "%s", "%s", %d},' % (int(e['id'], 16), e['keyword'], vr, e['retired'] == 'Y'))
 *   EOF */
static const KnownTag known_tags[] = {
    {0x00020000u, "FileMetaInformationGroupLength", "UL", 0},
    {0x00020035u, "RTVSourceIdentifier", "OB", 0},
    {0x00041430u, "DirectoryRecordType", "CS", 0},
    {0x00080013u, "InstanceCreationTime", "TM", 0},
    {0x0008002Au, "AcquisitionDateTime", "DT", 0},
    {0x00080056u, "InstanceAvailability", "CS", 0},
    {0x0008009Cu, "ConsultingPhysicianName", "PN", 0},
    {0x0008010Eu, "CodingSchemeURL", "UR", 0},
    {0x00080220u, "ResponsibleGroupCodeSequence", "SQ", 0},
    {0x0008030Du, "PrivateDataElementKeyword", "UC", 0},
    {0x0008040Cu, "FileOffsetInContainer", "UV", 0},
    {0x0008041Cu, "PriorRecordKey", "OB", 0},
    {0x00081030u, "StudyDescription", "LO", 0},
    {0x00081088u, "PyramidDescription", "LO", 0},
    {0x00081150u, "ReferencedSOPClassUID", "UI", 0},
    {0x0008119Au, "OtherFailuresSequence", "SQ", 0},
    {0x00082133u, "EventTimerSequence", "SQ", 0},
    {0x00082244u, "TransducerOrientationSequence", "SQ", 1},
    {0x00084000u, "IdentifyingComments", "LT", 1},
    {0x00089459u, "RecommendedDisplayFrameRateInFloat", "FL", 0},
    {0x00100050u, "PatientInsurancePlanCodeSequence", "SQ", 0},
    {0x00100229u, "GeneticModificationsCodeSequence", "SQ", 0},
    {0x00101081u, "BranchOfService", "LO", 0},
    {0x00102201u, "PatientSpeciesDescription", "LO", 0},
    {0x00120021u, "ClinicalTrialProtocolName", "LO", 0},
    {0x00120060u, "ClinicalTrialCoordinatingCenterName", "LO", 0},
    {0x00140025u, "ComponentManufacturingProcedure", "ST", 0},
    {0x00140103u, "SecondaryReviewTime", "TM", 0},
    {0x00141040u, "EnvironmentalConditions", "ST", 0},
    {0x00142206u, "CoordinateSystemAxisDescription", "ST", 0},
    {0x00143022u, "SensorName", "ST", 0},
    {0x00143099u, "CalibrationNotes", "LT", 0},
    {0x00144015u, "ElementDimensionB", "DS", 0},
    {0x00144032u, "AcquisitionCompressionType", "CS", 0},
    {0x00144059u, "ProbeCenterLocationZ", "DS", 0},
    {0x00144082u, "ProbeDriveNotes", "LT", 0},
    {0x0014409Cu, "TranslationRateX", "DS", 0},
    {0x00145108u, "WedgeRoofAngle", "DS", 0},
    {0x00145118u, "WedgeTotalHeight", "DS", 0},
    {0x00160009u, "OECFValues", "DS", 0},
    {0x00160019u, "SelfTimerMode", "IS", 0},
    {0x00160029u, "FocalLength", "DS", 0},
    {0x00160042u, "ExposureMode", "US", 0},
    {0x00160061u, "InteroperabilityIndex", "CS", 0},
    {0x0016007Eu, "GPSTrackRef", "CS", 0},
    {0x0016008Eu, "GPSDifferential", "IS", 0},
    {0x00180025u, "AngioFlag", "CS", 0},
    {0x0018003Au, "InterventionDescription", "ST", 0},
    {0x00180085u, "ImagedNucleus", "SH", 0},
    {0x00181007u, "CassetteID", "LO", 0},
    {0x00181022u, "VideoImageFormatAcquired", "SH", 0},
    {0x00181062u, "NominalInterval", "IS", 0},
    {0x00181075u, "RadionuclideHalfLife", "DS", 0},
    {0x00181110u, "DistanceSourceToDetector", "DS", 0},
    {0x00181143u, "ScanArc", "DS", 0},
    {0x00181161u, "TypeOfFilters", "LO", 0},
    {0x001811A5u, "CompressionContactArea", "DS", 0},
    {0x001811BFu, "ImageFilterDetailsSequence", "SQ", 0},
    {0x00181260u, "PlateType", "SH", 0},
    {0x00181402u, "CassetteOrientation", "CS", 0},
    {0x00181510u, "PositionerPrimaryAngle", "DS", 0},
    {0x00181624u, "ShutterPresentationColorCIELabValue", "US", 0},
    {0x00181712u, "RadiusOfCircularCollimator", "IS", 0},
    {0x00182042u, "TargetUID", "UI", 0},
    {0x00185020u, "ProcessingFunction", "LO", 0},
    {0x00186000u, "Sensitivity", "DS", 0},
    {0x0018602Eu, "PhysicalDeltaY", "FD", 0},
    {0x00186042u, "TMLinePositionY1Retired", "UL", 1},
    {0x00187000u, "DetectorConditionsNominalFlag", "CS", 0},
    {0x00187022u, "DetectorElementSpacing", "DS", 0},
    {0x00187048u, "GridPeriod", "DS", 0},
    {0x00189008u, "EchoPulseSequence", "CS", 0},
    {0x00189026u, "SpectrallySelectedExcitation", "CS", 0},
    {0x00189046u, "MultiCoilConfiguration", "LO", 0},
    {0x00189065u, "TimeDomainFiltering", "CS", 0},
    {0x00189084u, "ChemicalShiftSequence", "SQ", 0},
    {0x00189105u, "SlabOrientation", "FD", 0},
    {0x00189159u, "SpectroscopyAcquisitionOutOfPlanePhaseSteps", "UL", 0},
    {0x00189182u, "GradientOutput", "FD", 0},
    {0x00189226u, "MRImageFrameTypeSequence", "SQ", 0},
    {0x00189257u, "ASLContext", "CS", 0},
    {0x00189303u, "TubeAngle", "FD", 0},
    {0x00189319u, "ReconstructionAngle", "FD", 0},
    {0x00189337u, "ContrastBolusAgentNumber", "US", 0},
    {0x00189364u, "MultienergyCTCharacteristicsSequence", "SQ", 0},
    {0x00189374u, "NominalMaxEnergy", "DS", 0},
    {0x00189384u, "XRayMassAttenuationCoefficient", "DS", 0},
    {0x00189427u, "IntensifierActiveShape", "CS", 0},
    {0x00189449u, "BeamAngle", "FL", 0},
    {0x00189471u, "TableCradleTiltAngle", "FL", 0},
    {0x00189517u, "EndAcquisitionDateTime", "DT", 0},
    {0x00189546u, "BreastSupportIsocenterSecondaryAngle", "FD", 0},
    {0x00189603u, "DiffusionBValueXY", "FD", 0},
    {0x00189721u, "TerminationRelativeDensityThreshold", "FD", 0},
    {0x00189740u, "NumberOfSubsets", "US", 0},
    {0x00189769u, "IterativeReconstructionMethod", "CS", 0},
    {0x0018980Fu, "TransducerApplicationCodeSequence", "SQ", 0},
    {0x00189830u, "UpperCutoffFrequency", "FD", 0},
    {0x00189909u, "PotentialReasonsForProcedureCodeSequence", "SQ", 0},
    {0x00189919u, "InstructionPerformedDateTime", "DT", 0},
    {0x00189934u, "ReconstructionProtocolElementSequence", "SQ", 0},
    {0x00189946u, "AutoKVPLowerBound", "FD", 0},
    {0x00200019u, "ItemNumber", "IS", 0},
    {0x002000AAu, "ReportNumber", "IS", 1},
    {0x00201070u, "OtherStudyNumbers", "IS", 1},
    {0x00209056u, "StackID", "SH", 0},
    {0x00209163u, "InConcatenationTotalNumber", "US", 0},
    {0x00209248u, "EndingRespiratoryAmplitude", "FL", 0},
    {0x0020930Bu, "VolumeToTransducerRelationship", "CS", 0},
    {0x00220002u, "LightPathFilterPassBand", "US", 0},
    {0x00220012u, "StereoHorizontalPixelOffset", "FL", 0},
    {0x00220028u, "StereoPairsPresent", "CS", 0},
    {0x00220057u, "IlluminationBandwidth", "FL", 0},
    {0x00221039u, "RefractiveProcedureOccurred", "CS", 0},
    {0x00221090u, "IOLPowerSequence", "SQ", 0},
    {0x0022112Bu, "CalculationCommentType", "CS", 0},
    {0x00221220u, "UltrasoundOphthalmicAxialLengthMeasurementsSequence", "SQ", 0},
    {0x00221436u, "OphthalmicThicknessMapTypeCodeSequence", "SQ", 0},
    {0x00221513u, "TransformationAlgorithmSequence", "SQ", 0},
    {0x00221622u, "OphthalmicVolumetricPropertiesFlag", "CS", 0},
    {0x00240012u, "VisualFieldShape", "CS", 0},
    {0x00240040u, "ExcessiveFixationLosses", "CS", 0},
    {0x00240060u, "FalsePositivesQuantity", "US", 0},
    {0x00240076u, "ShortTermFluctuationProbabilityCalculated", "CS", 0},
    {0x00240094u, "SensitivityValue", "FL", 0},
    {0x00240114u, "OphthalmicPatientClinicalInformationLeftEyeSequence", "SQ", 0},
    {0x00240338u, "IndexNormalsFlag", "CS", 0},
    {0x00280031u, "ZoomFactor", "DS", 0},
    {0x00280071u, "PerimeterValue", "US", 1},
    {0x00280107u, "LargestImagePixelValue", "US", 0},
    {0x00280304u, "ReferencedColorPaletteInstanceUID", "UI", 0},
    {0x00280A04u, "PixelSpacingCalibrationDescription", "LO", 0},
    {0x00281104u, "AlphaPaletteColorLookupTableDescriptor", "US", 0},
    {0x00281223u, "SegmentedBluePaletteColorLookupTableData", "OW", 0},
    {0x00281407u, "BlendingLookupTableDescriptor", "US", 0},
    {0x00283003u, "LUTExplanation", "LO", 0},
    {0x00286110u, "MaskFrameNumbers", "US", 0},
    {0x0028700Bu, "ConfigurationID", "US", 0},
    {0x0028701Bu, "NumberOfLuminancePoints", "US", 0},
    {0x0028702Bu, "TestImageValidation", "CS", 0},
    {0x00289416u, "SubtractionItemID", "US", 0},
    {0x00289537u, "EquipmentCoordinateSystemIdentification", "CS", 0},
    {0x00321032u, "RequestingPhysician", "PN", 0},
    {0x00340002u, "FlowIdentifier", "OB", 0},
    {0x00380016u, "RouteOfAdmissions", "LO", 0},
    {0x00380064u, "IssuerOfServiceEpisodeIDSequence", "SQ", 0},
    {0x003A0203u, "ChannelLabel", "SH", 0},
    {0x003A0222u, "NotchFilterFrequency", "DS", 0},
    {0x003A0311u, "PowerlineFrequency", "DS", 0},
    {0x003A0327u, "DigitalFilterOrder", "IS", 0},
    {0x00400009u, "ScheduledProcedureStepID", "SH", 0},
    {0x00400100u, "ScheduledProcedureStepSequence", "SQ", 0},
    {0x00400275u, "RequestAttributesSequence", "SQ", 0},
    {0x00400314u, "HalfValueLayer", "DS", 0},
    {0x00400518u, "ContainerTypeCodeSequence", "SQ", 0},
    {0x00400612u, "SpecimenPreparationStepContentItemSequence", "SQ", 0},
    {0x00401005u, "RequestedProcedureLocation", "LO", 0},
    {0x00402004u, "IssueDateOfImagingServiceRequest", "DA", 0},
    {0x00404005u, "ScheduledProcedureStepStartDateTime", "DT", 0},
    {0x00404026u, "ScheduledStationClassCodeSequence", "SQ", 0},
    {0x00404052u, "ProcedureStepCancellationDateTime", "DT", 0},
    {0x00409214u, "DoubleFloatRealWorldValueFirstValueMapped", "FD", 0},
    {0x0040A032u, "ObservationDateTime", "DT", 0},
    {0x0040A078u, "AuthorObserverSequence", "SQ", 0},
    {0x0040A123u, "PersonName", "PN", 0},
    {0x0040A171u, "ObservationUID", "UI", 0},
    {0x0040A307u, "CurrentObserverTrial", "PN", 1},
    {0x0040A402u, "ObservationSubjectUIDTrial", "UI", 1},
    {0x0040A744u, "LanguageCodeSequenceTrial", "SQ", 1},
    {0x0040DB0Du, "TemplateExtensionCreatorUID", "UI", 1},
    {0x00420010u, "DocumentTitle", "ST", 0},
    {0x00440011u, "SubstanceAdministrationNotes", "LO", 0},
    {0x00460014u, "RightLensSequence", "SQ", 0},
    {0x00460052u, "AutorefractionLeftEyeSequence", "SQ", 0},
    {0x00460098u, "SubjectiveRefractionLeftEyeSequence", "SQ", 0},
    {0x00460122u, "VisualAcuityRightEyeSequence", "SQ", 0},
    {0x00460208u, "VerticesOfTheOutlineOfPupil", "IS", 0},
    {0x00460244u, "SourceImageCornealProcessedDataSequence", "SQ", 0},
    {0x00480012u, "ExtendedDepthOfField", "CS", 0},
    {0x00480116u, "ConfocalMicroscopyImageFrameTypeSequence", "SQ", 0},
    {0x00500013u, "ContainerComponentThickness", "FD", 0},
    {0x00520003u, "BeamSpotSize", "FD", 0},
    {0x00520030u, "OCTZOffsetCorrection", "SS", 0},
    {0x00540018u, "EnergyWindowName", "SH", 0},
    {0x00540061u, "NumberOfRRIntervals", "US", 0},
    {0x00540220u, "ViewCodeSequence", "SQ", 0},
    {0x00541004u, "ReprojectionMethod", "CS", 0},
    {0x00541311u, "SecondaryCountsAccumulated", "IS", 0},
    {0x00620001u, "SegmentationType", "CS", 0},
    {0x00620011u, "SegmentedPropertyTypeModifierCodeSequence", "SQ", 0},
    {0x00660004u, "SurfaceComments", "LT", 0},
    {0x0066001Au, "PointsBoundingBoxCoordinates", "FL", 0},
    {0x0066002Bu, "ReferencedSurfaceSequence", "SQ", 0},
    {0x00660043u, "LongVertexPointIndexList", "OL", 0},
    {0x00660134u, "DiffusionModelCodeSequence", "SQ", 0},
    {0x006862D0u, "HPGLDocumentID", "US", 0},
    {0x00686390u, "SurfaceModelScalingFactor", "FD", 0},
    {0x00686460u, "TwoDMatingAxes", "FD", 0},
    {0x006865A0u, "TwoDLineCoordinatesSequence", "SQ", 0},
    {0x006A0006u, "AnnotationGroupDescription", "UT", 0},
    {0x00700005u, "GraphicAnnotationUnits", "CS", 0},
    {0x00700042u, "ImageRotation", "US", 0},
    {0x00700086u, "ContentCreatorIdentificationCodeSequence", "SQ", 0},
    {0x00700233u, "FillStyleSequence", "SQ", 0},
    {0x00700255u, "LinePattern", "UL", 0},
    {0x00700294u, "CompoundGraphicType", "CS", 0},
    {0x0070031Au, "FiducialUID", "UI", 0},
    {0x00701203u, "InputSequencePositionIndex", "US", 0},
    {0x00701306u, "PlaneNormal", "FD", 0},
    {0x00701606u, "RenderFieldOfView", "FD", 0},
    {0x00701901u, "VolumetricAnnotationSequence", "SQ", 0},
    {0x00701B04u, "BlendingDisplaySequence", "SQ", 0},
    {0x00720012u, "SourceHangingProtocolSequence", "SQ", 0},
    {0x00720052u, "SelectorSequencePointer", "AT", 0},
    {0x0072006Bu, "SelectorTMValue", "TM", 0},
    {0x0072007Fu, "SelectorUIValue", "UI", 0},
    {0x00720204u, "DisplaySetPresentationGroup", "US", 0},
    {0x00720316u, "ImageBoxLargeScrollType", "CS", 0},
    {0x00720500u, "BlendingOperationType", "CS", 0},
    {0x00720714u, "ShowPatientDemographicsFlag", "CS", 0},
    {0x00741022u, "BeamTaskType", "CS", 0},
    {0x00741040u, "RelatedReferenceRTImageSequence", "SQ", 0},
    {0x00741210u, "ScheduledProcessingParametersSequence", "SQ", 0},
    {0x00741401u, "BrachyTaskSequence", "SQ", 0},
    {0x00760006u, "ImplantAssemblyTemplateVersion", "LO", 0},
    {0x00760080u, "Component1ReferencedMatingFeatureSetID", "US", 0},
    {0x00780090u, "TwoDImplantTemplateGroupMemberMatchingPoint", "FD", 0},
    {0x00800010u, "UValueData", "OF", 0},
    {0x00820018u, "SelectorAttributeName", "LO", 0},
    {0x00880906u, "TopicSubject", "ST", 1},
    {0x04000305u, "CertifiedTimestampType", "CS", 0},
    {0x04000565u, "ReasonForTheAttributeModification", "CS", 0},
    {0x200000A0u, "MemoryBitDepth", "US", 0},
    {0x201000A7u, "OtherMagnificationTypesAvailable", "CS", 0},
    {0x20100520u, "ReferencedBasicAnnotationBoxSequence", "SQ", 0},
    {0x20400020u, "OverlayPixelDataSequence", "SQ", 1},
    {0x21000040u, "CreationDate", "DA", 0},
    {0x21300030u, "FilmBoxContentSequence", "SQ", 1},
    {0x2200000Au, "PreserveCompositeInstancesAfterMediaCreation", "CS", 0},
    {0x30020012u, "RTImagePosition", "DS", 0},
    {0x30020100u, "SelectedFrameNumber", "IS", 0},
    {0x30020110u, "DevicePositionParameterSequence", "SQ", 0},
    {0x30020120u, "PositionAcquisitionTemplateID", "ST", 0},
    {0x30020130u, "AdditionalRTAccessoryDeviceSequence", "SQ", 0},
    {0x30040012u, "DoseValue", "DS", 1},
    {0x30060006u, "StructureSetDescription", "ST", 0},
    {0x3006002Eu, "ROIObservationDateTime", "DT", 0},
    {0x3006004Cu, "SourceSeriesInformationSequence", "SQ", 0},
    {0x300600B4u, "ROIPhysicalPropertyValue", "DS", 0},
    {0x30080016u, "MeasuredDoseValue", "DS", 0},
    {0x30080040u, "ControlPointDeliverySequence", "SQ", 0},
    {0x30080063u, "ParameterItemIndex", "IS", 0},
    {0x30080092u, "ReferencedCalculatedDoseReferenceNumber", "IS", 0},
    {0x30080105u, "SourceSerialNumber", "LO", 0},
    {0x30080160u, "BrachyControlPointDeliveredSequence", "SQ", 0},
    {0x30080251u, "TreatmentTime", "TM", 0},
    {0x300A0016u, "DoseReferenceDescription", "LO", 0},
    {0x300A0042u, "ToleranceTableNumber", "IS", 0},
    {0x300A0071u, "FractionGroupNumber", "IS", 0},
    {0x300A008Du, "AverageBeamDosePointDepth", "FL", 1},
    {0x300A00B8u, "RTBeamLimitingDeviceType", "CS", 0},
    {0x300A00D0u, "NumberOfWedges", "IS", 0},
    {0x300A00E1u, "MaterialID", "SH", 0},
    {0x300A00F2u, "TotalBlockTrayFactor", "DS", 0},
    {0x300A0107u, "ApplicatorSequence", "SQ", 0},
    {0x300A011Fu, "GantryRotationDirection", "CS", 0},
    {0x300A0133u, "ExternalContourEntryPoint", "FL", 0},
    {0x300A0180u, "PatientSetupSequence", "SQ", 0},
    {0x300A01B0u, "SetupTechnique", "CS", 0},
    {0x300A0214u, "SourceType", "CS", 0},
    {0x300A0232u, "ApplicationSetupType", "CS", 0},
    {0x300A0272u, "ChannelInnerLength", "DS", 0},
    {0x300A029Cu, "SourceApplicatorWallNominalThickness", "DS", 0},
    {0x300A02D6u, "CumulativeTimeWeight", "DS", 0},
    {0x300A0309u, "ModulatedScanModeType", "CS", 0},
    {0x300A033Au, "LateralSpreadingDeviceDescription", "LO", 0},
    {0x300A0360u, "RangeShifterSettingsSequence", "SQ", 0},
    {0x300A0392u, "NumberOfScanSpotPositions", "IS", 0},
    {0x300A0402u, "SetupImageComment", "ST", 0},
    {0x300A0440u, "NumberOfBlockSlabItems", "IS", 0},
    {0x300A0509u, "DeliveredNominalRangeModulationFractions", "FL", 0},
    {0x300A060Cu, "ReferencedRadiationDoseIdentificationIndex", "US", 0},
    {0x300A061Cu, "DoseValuesSequence", "SQ", 0},
    {0x300A062Cu, "ToleranceValue", "FD", 0},
    {0x300A063Du, "DeliveryRate", "FD", 0},
    {0x300A064Du, "RTBeamLimitingDeviceDefinitionSequence", "SQ", 0},
    {0x300A065Du, "PatientSupportPositionDeviceParameterSequence", "SQ", 0},
    {0x300A066Du, "RadiationBeamBlockThickness", "FD", 0},
    {0x300A067Du, "RadiationGenerationModeDescription", "ST", 0},
    {0x300A0701u, "RTRadiationUsage", "CS", 0},
    {0x300A0732u, "TreatmentToleranceViolationCategory", "CS", 0},
    {0x300A0760u, "OverrideDateTime", "DT", 0},
    {0x300A078Cu, "ReferencedPatientSetupPhotoSequence", "SQ", 0},
    {0x300A079Cu, "PatientSupportDisplacementSequence", "SQ", 0},
    {0x300C0050u, "ReferencedDoseReferenceSequence", "SQ", 0},
    {0x300C0102u, "ReferencedLateralSpreadingDeviceNumber", "IS", 0},
    {0x300C0125u, "GatingBeamHoldTransitionSequence", "SQ", 0},
    {0x30100008u, "ConceptualVolumeConstituentSequence", "SQ", 0},
    {0x30100018u, "SourceConceptualVolumeSequence", "SQ", 0},
    {0x30100028u, "RelatedSegmentCharacteristicsSequence", "SQ", 0},
    {0x30100038u, "EntityLongLabel", "LO", 0},
    {0x30100048u, "BrachytherapySourceType", "CS", 0},
    {0x30100058u, "RTPhysicianIntentIndex", "US", 0},
    {0x30100068u, "ConceptualVolumeBlockingConstraint", "CS", 0},
    {0x30100079u, "FractionPatternSequence", "SQ", 0},
    {0x30100089u, "TreatmentSiteModifierCodeSequence", "SQ", 0},
    {0x40080042u, "ResultsIDIssuer", "LO", 1},
    {0x40080115u, "InterpretationDiagnosisDescription", "LT", 1},
    {0x40101005u, "ThreatROIExtents", "FL", 0},
    {0x4010101Au, "BoardingPassID", "SH", 0},
    {0x4010102Bu, "AlarmDecisionTime", "DT", 0},
    {0x40101051u, "ItineraryID", "LO", 0},
    {0x4010106Du, "AdditionalScreeningPerformed", "CS", 0},
    {0x4010107Eu, "PRCSToRCSOrientation", "DS", 0},
    {0x7FE00008u, "FloatPixelData", "OF", 0},
};

static void test_known_tags_round_trip(void **state)
{
    size_t n = sizeof known_tags / sizeof known_tags[0];

    (void)state;
    assert_true(n > 300);
    for (size_t i = 0; i < n; i++) {
        const KnownTag *k = &known_tags[i];
        const MvDictEntry *e = must_lookup(k->tag);
        const MvDictEntry *by_kw;
        char tag_text[16];

        assert_int_equal(e->tag, k->tag);
        assert_string_equal(e->keyword, k->keyword);
        if (k->vr[0] == '\0')
            assert_int_equal(e->vr, MV_VR_NONE);
        else
            assert_vr(e->vr, k->vr);
        assert_int_equal(e->retired, k->retired);
        assert_string_equal(mv_dict_keyword(k->tag), k->keyword);
        /* keyword -> the same entry -> the same tag */
        by_kw = mv_dict_lookup_keyword(k->keyword);
        assert_non_null(by_kw);
        assert_ptr_equal(by_kw, e);
        assert_int_equal(parse_ok(k->keyword), k->tag);
        /* and the tag's own spellings */
        snprintf(tag_text, sizeof tag_text, "(%04X,%04X)", (unsigned)(k->tag >> 16), (unsigned)(k->tag & 0xFFFF));
        assert_int_equal(parse_ok(tag_text), k->tag);
    }
}

/* "(60XX,3000)" -> a concrete even-group instance: the x digits become 1, 0, 1, 0 ... */
static uint32_t instance_of(const char *pattern, uint32_t *mask)
{
    uint32_t tag = 0;
    int n_x = 0;

    *mask = 0;
    for (const char *p = pattern; *p != '\0'; p++) {
        int digit;
        if (*p == '(' || *p == ')' || *p == ',')
            continue;
        tag <<= 4;
        *mask <<= 4;
        if (*p == 'x' || *p == 'X') {
            digit = (n_x++ % 2 == 0) ? 1 : 0;
        } else {
            digit = (*p >= '0' && *p <= '9') ? *p - '0' : (*p | 0x20) - 'a' + 10;
            *mask |= 0xF;
        }
        tag |= (uint32_t)digit;
    }
    return tag;
}

/* s with bytes outside printable ASCII shown as \xNN, for messages. */
static const char *escaped(const char *s, char *out, size_t cap)
{
    size_t n = 0;

    for (; *s != '\0' && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7F)
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, cap - n, "\\x%02X", c);
    }
    out[n] = '\0';
    return out;
}

static const char *json_text(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : "";
}

/* Walks ../shared/standard/attributes.json and checks every entry: keyword, name, first
 * and second VR, VM and retired flag by tag, and the keyword lookup back to the tag. */
static void test_all_attributes(void **state)
{
    const char *src = getenv("MV_SOURCE_DIR");
    char path[4096];
    json_error_t jerr;
    json_t *root;
    size_t n_bad = 0, n_checked = 0;

    (void)state;
    if (src != NULL) {
        snprintf(path, sizeof path, "%s/../shared/standard/attributes.json", src);
    } else {
        /* Run by hand: find the file next to the source tree this test was built from. */
        const char *slash = strrchr(__FILE__, '/');
        int dir_len = slash ? (int)(slash - __FILE__) : 1;
        snprintf(path, sizeof path, "%.*s/../../shared/standard/attributes.json", dir_len, slash ? __FILE__ : ".");
    }
    root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        print_message("note: %s not readable (%s); the whole-dictionary check is skipped\n", path, jerr.text);
        skip();
    }
    assert_true(json_is_array(root));
    assert_int_equal(json_array_size(root), ATTRIBUTES_JSON_ENTRIES);
    for (size_t i = 0; i < json_array_size(root); i++) {
        json_t *a = json_array_get(root, i);
        const char *tag_text = json_text(a, "tag");
        const char *keyword = json_text(a, "keyword");
        const char *vr_text = json_text(a, "valueRepresentation");
        const char *name = json_text(a, "name");
        const char *vm = json_text(a, "valueMultiplicity");
        int retired = strcmp(json_text(a, "retired"), "Y") == 0;
        uint32_t mask, tag = instance_of(tag_text, &mask);
        const MvDictEntry *e = mv_dict_lookup(tag);
        char vr1[3] = "", vr2[3] = "", got1[3], got2[3];

        /* "OB or OW" -> OB, OW; "US or SS or OW" -> US, SS; "" and "See Note 2" -> none. */
        if (strlen(vr_text) >= 2 && vr_text[0] >= 'A' && vr_text[0] <= 'Z' && vr_text[2] != 'e') {
            memcpy(vr1, vr_text, 2);
            if (strlen(vr_text) >= 8 && strncmp(vr_text + 2, " or ", 4) == 0)
                memcpy(vr2, vr_text + 6, 2);
        }
        n_checked++;
        if (e == NULL) {
            print_error("%s (%08X): not found\n", tag_text, (unsigned)tag);
            n_bad++;
            continue;
        }
        if (e->mask != mask || (e->tag & mask) != (tag & mask)) {
            print_error("%s: entry tag %08X mask %08X, expected mask %08X\n", tag_text, (unsigned)e->tag,
                        (unsigned)e->mask, (unsigned)mask);
            n_bad++;
        }
        if (strcmp(e->keyword, keyword) != 0) {
            print_error("%s: keyword \"%s\", expected \"%s\"\n", tag_text, e->keyword, keyword);
            n_bad++;
        }
        if (strcmp(e->name, name) != 0) {
            char got_name[256], want_name[256];
            print_error("%s: name \"%s\", expected \"%s\"\n", tag_text, escaped(e->name, got_name, sizeof got_name),
                        escaped(name, want_name, sizeof want_name));
            n_bad++;
        }
        if (strcmp(e->vm, vm) != 0) {
            print_error("%s: VM \"%s\", expected \"%s\"\n", tag_text, e->vm, vm);
            n_bad++;
        }
        if (e->retired != retired) {
            print_error("%s: retired %d, expected %d\n", tag_text, e->retired, retired);
            n_bad++;
        }
        mv_vr_string(e->vr, got1);
        mv_vr_string(e->vr_alt, got2);
        if ((vr1[0] ? strcmp(got1, vr1) : e->vr != MV_VR_NONE) ||
            (vr2[0] ? strcmp(got2, vr2) : e->vr_alt != MV_VR_NONE)) {
            print_error("%s: VR %s/%s, expected \"%s\"\n", tag_text, got1, got2, vr_text);
            n_bad++;
        }
        if (keyword[0] != '\0') {
            const MvDictEntry *k = mv_dict_lookup_keyword(keyword);
            if (k != e) {
                print_error("%s: keyword %s finds %08X\n", tag_text, keyword, k ? (unsigned)k->tag : 0u);
                n_bad++;
            }
        }
    }
    json_decref(root);
    assert_int_equal(n_checked, ATTRIBUTES_JSON_ENTRIES);
    assert_int_equal(n_bad, 0);
}

/* ---- VR properties (PS3.5 Table 6.2-1 and 7.1-1) -------------------------------------- */

static void test_vr_properties(void **state)
{
    static const char *all[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT",
                                "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST",
                                "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"};
    /* PS3.5 Table 7.1-1: these have 2 reserved bytes and a 32-bit length. */
    static const char *long_form = "OB OD OF OL OV OW SQ SV UC UN UR UT UV";
    static const char *text = "AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT";
    static const char *charset = "LO LT PN SH ST UC UT";

    (void)state;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        MvVr vr = MV_VR(all[i][0], all[i][1]);
        char buf[3];
        assert_int_equal(mv_vr_is_known(vr), 1);
        assert_string_equal(mv_vr_string(vr, buf), all[i]);
        if (mv_vr_has_long_length(vr) != (strstr(long_form, all[i]) != NULL))
            fail_msg("%s: long length %d", all[i], mv_vr_has_long_length(vr));
        if (mv_vr_is_text(vr) != (strstr(text, all[i]) != NULL))
            fail_msg("%s: text %d", all[i], mv_vr_is_text(vr));
        if (mv_vr_uses_charset(vr) != (strstr(charset, all[i]) != NULL))
            fail_msg("%s: charset %d", all[i], mv_vr_uses_charset(vr));
    }
    assert_int_equal(mv_vr_is_known(MV_VR('Z', 'Z')), 0);
    assert_int_equal(mv_vr_is_known(MV_VR_NONE), 0);
    /* PS3.5 Table 6.2-1: fixed value sizes. */
    assert_int_equal(mv_vr_unit_size(MV_VR_US), 2);
    assert_int_equal(mv_vr_unit_size(MV_VR_SS), 2);
    assert_int_equal(mv_vr_unit_size(MV_VR_OW), 2);
    assert_int_equal(mv_vr_unit_size(MV_VR_UL), 4);
    assert_int_equal(mv_vr_unit_size(MV_VR_SL), 4);
    assert_int_equal(mv_vr_unit_size(MV_VR_FL), 4);
    assert_int_equal(mv_vr_unit_size(MV_VR_AT), 4);
    assert_int_equal(mv_vr_unit_size(MV_VR_OF), 4);
    assert_int_equal(mv_vr_unit_size(MV_VR_OL), 4);
    assert_int_equal(mv_vr_unit_size(MV_VR_FD), 8);
    assert_int_equal(mv_vr_unit_size(MV_VR_OD), 8);
    assert_int_equal(mv_vr_unit_size(MV_VR_SV), 8);
    assert_int_equal(mv_vr_unit_size(MV_VR_UV), 8);
    assert_int_equal(mv_vr_unit_size(MV_VR_OV), 8);
    assert_int_equal(mv_vr_unit_size(MV_VR_OB), 1);
    assert_int_equal(mv_vr_unit_size(MV_VR_LO), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_patient_name),
        cmocka_unit_test(test_lookup_other_exact),
        cmocka_unit_test(test_lookup_keyword),
        cmocka_unit_test(test_repeating_groups),
        cmocka_unit_test(test_element_masks),
        cmocka_unit_test(test_unknown_tags),
        cmocka_unit_test(test_private_creators),
        cmocka_unit_test(test_group_lengths),
        cmocka_unit_test(test_tag_parse),
        cmocka_unit_test(test_tag_parse_rejects),
        cmocka_unit_test(test_ts_lookup),
        cmocka_unit_test(test_ts_lookup_padding),
        cmocka_unit_test(test_dict_size),
        cmocka_unit_test(test_known_tags_round_trip),
        cmocka_unit_test(test_all_attributes),
        cmocka_unit_test(test_vr_properties),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
