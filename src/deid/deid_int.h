/* Private model of the de-identification engine: the PS3.15 Table E.1-1 actions and
 * option columns, shared by the files of src/deid only. */
#ifndef MV_DEID_INT_H
#define MV_DEID_INT_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/deid.h"
#include "medveil/dicom.h"

/* PS3.15 E.1.1 action codes, the combined ones resolved by attribute type at run time. */
typedef enum MvAction {
    MV_ACT_NONE = 0, /* no action in this column */
    MV_ACT_D,        /* replace with a non-zero-length dummy consistent with the VR */
    MV_ACT_Z,        /* replace with a zero-length value */
    MV_ACT_X,        /* remove */
    MV_ACT_K,        /* keep (a sequence is still cleaned inside) */
    MV_ACT_C,        /* clean: keep meaning, lose identity */
    MV_ACT_U,        /* replace with a consistent UID */
    MV_ACT_ZD,       /* Z for Type 2, D for Type 1 */
    MV_ACT_XZ,       /* X for Type 3, Z for Type 2 */
    MV_ACT_XD,       /* X for Type 3, D for Type 1 */
    MV_ACT_XZD,      /* X for Type 3, Z for Type 2, D for Type 1 */
    MV_ACT_XZU       /* X, or Z, or UIDs replaced inside a sequence of references */
} MvAction;

/* Option columns of Table E.1-1, in the order of MvProfileRow.option. */
enum MvProfileColumn {
    MV_COL_SAFE_PRIVATE,
    MV_COL_UIDS,
    MV_COL_DEVICE,
    MV_COL_INSTITUTION,
    MV_COL_PATIENT_CHARS,
    MV_COL_FULL_DATES,
    MV_COL_MODIFIED_DATES,
    MV_COL_DESCRIPTORS,
    MV_COL_STRUCTURED,
    MV_COL_GRAPHICS,
    MV_N_COLUMNS
};

typedef struct MvProfileRow {
    uint32_t tag;
    uint32_t mask;                  /* 0xFFFFFFFF for exact rows */
    uint8_t basic;                  /* MvAction of the Basic Profile */
    uint8_t option[MV_N_COLUMNS];   /* MvAction per option column, MV_ACT_NONE if silent */
} MvProfileRow;

/* The table (profile_table.c, generated): exact rows sorted by tag, then masked rows. */
extern const MvProfileRow mv__profile_rows[];
extern const size_t mv__profile_n_exact;
extern const size_t mv__profile_n_rows;

/* ---- Safe private attributes (safe_private_table.c, generated from PS3.15 Table E.3.10-1) */

typedef struct MvSafePrivate {
    const char *creator;
    uint16_t group;
    uint8_t element;     /* offset within the private block (the low byte of the tag) */
    MvVr vr;
    const char *meaning;
} MvSafePrivate;

/* Sorted by (creator bytes, group, element). */
extern const MvSafePrivate mv__safe_private[];
extern const size_t mv__safe_private_n;

/* ---- Identifiers of one file and text cleaning (clean.c) ----------------------------
 * Clean Descriptors and Clean Structured Content keep a text's clinical words but remove
 * the patient's own identifiers found elsewhere in the same file and identifier-shaped
 * tokens. */

typedef struct MvIdentifiers MvIdentifiers;

/* Collects, from the whole dataset (items too), the values that identify the patient and
 * the people and places around the study: name components, IDs, accession number, birth
 * and study dates (in the usual spellings), address parts, phone numbers, institution and
 * physician names. *out is freed with mv__ids_free. */
MvStatus mv__ids_collect(const MvDataset *ds, MvIdentifiers **out, MvError *err);
void mv__ids_free(MvIdentifiers *ids);
size_t mv__ids_count(const MvIdentifiers *ids);

/* Cleans UTF-8 text: every identifier of ids (case-insensitive, whole words) and every
 * identifier-shaped token (dates in common formats, phone numbers, e-mail addresses, runs
 * of 5 or more digits, UIDs) is replaced by "*". *out is malloc'd UTF-8; *changed is 1 if
 * anything was replaced. ids may be NULL (patterns only). */
MvStatus mv__clean_text(const MvIdentifiers *ids, const char *in, size_t len, char **out, size_t *out_len,
                        int *changed);

/* ---- Recipes (recipe.c, format in docs/recipes.md) ------------------------------------ */

typedef enum MvRecipeAction {
    MV_RA_KEEP,         /* keep the value (a sequence is still cleaned inside) */
    MV_RA_REMOVE,       /* remove the element */
    MV_RA_EMPTY,        /* zero-length value */
    MV_RA_REPLACE,      /* a literal value */
    MV_RA_PSEUDONYMIZE, /* keyed pseudonym, as Patient ID */
    MV_RA_SHIFT,        /* date/time shifted by the patient's offset */
    MV_RA_CLEAN,        /* text cleaned as Clean Descriptors does */
    MV_RA_UID,          /* keyed UID replacement */
    MV_RA_MAP           /* looked up in a CSV table; see MvRecipeRule.map_missing */
} MvRecipeAction;

typedef struct MvRecipe MvRecipe;
typedef struct MvRecipeMap MvRecipeMap;

typedef struct MvRecipeRule {
    MvRecipeAction action;
    const char *literal;        /* MV_RA_REPLACE: the value (UTF-8 as written in the recipe) */
    const MvRecipeMap *map;     /* MV_RA_MAP */
    MvRecipeAction map_missing; /* MV_RA_MAP: what a value absent from the table gets
                                   (MV_RA_PSEUDONYMIZE, MV_RA_REMOVE, or MV_RA_KEEP meaning
                                   quarantine the file) */
    const char *file;           /* the recipe file, for messages */
    int line;                   /* the line of the rule */
} MvRecipeRule;

/* Parses a recipe file and appends its rules to *recipe (created when NULL), so several
 * recipes can be loaded in order. On failure *recipe is unchanged and err names the file
 * and line ("recipe.txt:12: unknown action 'kepp'"). */
MvStatus mv__recipe_load(MvRecipe **recipe, const char *path, MvError *err);
void mv__recipe_free(MvRecipe *recipe);
/* The rule for the element tag of ds, or NULL. A private tag's creator is resolved in ds.
 * The most specific target wins (tag or keyword, then private creator + element, then
 * masks); among equally specific rules, the last one loaded. */
const MvRecipeRule *mv__recipe_rule(const MvRecipe *recipe, const MvDataset *ds, uint32_t tag);
/* The replacement of value in a MV_RA_MAP rule's table, or NULL if absent. */
const char *mv__recipe_map_lookup(const MvRecipeRule *rule, const char *value);
/* 1 if a quarantine rule matches the top-level dataset ds, with its reason copied. */
int mv__recipe_quarantine(const MvRecipe *recipe, const MvDataset *ds, char *reason, size_t reason_len);
/* Hex SHA-256 over the bytes of every loaded recipe file and table, in load order. */
const char *mv__recipe_hash(const MvRecipe *recipe);

#endif
