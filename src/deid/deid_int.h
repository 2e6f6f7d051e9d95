/* Private model of the de-identification engine: the PS3.15 Table E.1-1 actions and
 * option columns, shared by the files of src/deid only. */
#ifndef MV_DEID_INT_H
#define MV_DEID_INT_H

#include <stddef.h>
#include <stdint.h>

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

#endif
