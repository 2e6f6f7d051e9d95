/* De-identification: PS3.15 Annex E Basic Application Level Confidentiality Profile with
 * every option, keyed deterministic pseudonyms (HMAC-SHA256 under a project key), date
 * shifting per patient, text cleaning, safe private attributes and recipes. The engine
 * edits a parsed file in place; writing it is the caller's (mv_file_write). */
#ifndef MEDVEIL_DEID_H
#define MEDVEIL_DEID_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/dicom.h"
#include "medveil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of PS3.15 Table E.1-1 (and the two pixel options of E.3). */
typedef enum MvDeidOption {
    MV_OPT_RETAIN_SAFE_PRIVATE = 1u << 0,
    MV_OPT_RETAIN_UIDS = 1u << 1,
    MV_OPT_RETAIN_DEVICE_IDENTITY = 1u << 2,
    MV_OPT_RETAIN_INSTITUTION_IDENTITY = 1u << 3,
    MV_OPT_RETAIN_PATIENT_CHARACTERISTICS = 1u << 4,
    MV_OPT_RETAIN_LONG_FULL_DATES = 1u << 5,
    MV_OPT_RETAIN_LONG_MODIFIED_DATES = 1u << 6,
    MV_OPT_CLEAN_DESCRIPTORS = 1u << 7,
    MV_OPT_CLEAN_STRUCTURED_CONTENT = 1u << 8,
    MV_OPT_CLEAN_GRAPHICS = 1u << 9,
    MV_OPT_CLEAN_PIXEL_DATA = 1u << 10,
    MV_OPT_CLEAN_RECOGNIZABLE_VISUAL_FEATURES = 1u << 11
} MvDeidOption;

/* The option for a DESIGN.md name ("retain-uids" ...), 0 if unknown. */
unsigned mv_deid_option_from_name(const char *name);
/* The DESIGN.md name of one option bit, NULL if not exactly one known bit. */
const char *mv_deid_option_name(unsigned option);

#define MV_KEY_BYTES 32

/* Reads a project key file written by mv_key_generate: a line "medveil-key-v1 " followed
 * by 64 hex digits. The key is copied into key[]; the caller wipes it (OPENSSL_cleanse or
 * mv_wipe). MV_ERR_ARG names the file and line for a malformed file, never the key. */
MvStatus mv_key_load(const char *path, uint8_t key[MV_KEY_BYTES], MvError *err);
/* Writes a new random key to path (created with mode 0600, never overwriting). */
MvStatus mv_key_generate(const char *path, MvError *err);
/* A short public fingerprint of a key: "sha256:" + 16 hex digits of SHA-256(label||key). */
void mv_key_fingerprint(const uint8_t key[MV_KEY_BYTES], char out[24]);
/* Wipes n bytes so that the compiler cannot elide it. */
void mv_wipe(void *p, size_t n);

typedef struct MvDeidConfig MvDeidConfig;

/* A configuration with the Basic Profile only and a fresh random key (see
 * mv_deid_config_random_key). Free with mv_deid_config_free, which wipes the key. */
MvStatus mv_deid_config_new(MvDeidConfig **out, MvError *err);
void mv_deid_config_free(MvDeidConfig *cfg);
/* Copies key into the configuration. */
void mv_deid_config_set_key(MvDeidConfig *cfg, const uint8_t key[MV_KEY_BYTES]);
/* 1 while the key is the random one made by mv_deid_config_new (pseudonyms will not match
 * another run's). */
int mv_deid_config_random_key(const MvDeidConfig *cfg);
const char *mv_deid_config_fingerprint(const MvDeidConfig *cfg);
/* Adds options (MvDeidOption bits). clean-pixel-data and clean-recognizable-visual-features
 * run the pixel cleaner of medveil/pixel_clean.h before the header is changed. */
MvStatus mv_deid_config_add_options(MvDeidConfig *cfg, unsigned options, MvError *err);
unsigned mv_deid_config_options(const MvDeidConfig *cfg);
/* Settings of the pixel options (rules, mask-all-text, review callback: medveil/
 * pixel_clean.h). NULL, the default, means the starter rules and nothing else. The
 * configuration keeps the pointer: pixel must outlive cfg and stay unchanged. */
struct MvPixelCleanConfig;
void mv_deid_config_set_pixel(MvDeidConfig *cfg, const struct MvPixelCleanConfig *pixel);
/* Date shift range in days for retain-long-modified-dates: each patient's offset is drawn
 * (keyed, deterministic) from [-max_days, -min_days]. Defaults: 1 and 3650. */
MvStatus mv_deid_config_set_date_range(MvDeidConfig *cfg, int min_days, int max_days, MvError *err);
/* Adds lines "CREATOR,GGGG,EE" (an odd group and the element's offset within its private
 * block, e.g. "SIEMENS CSA HEADER,0029,08"; the creator may contain commas, the last two
 * fields are split off) naming private attributes known to carry no identity, kept under
 * retain-safe-private in addition to the built-in table (docs/safe-private.md). */
MvStatus mv_deid_config_load_safe_private(MvDeidConfig *cfg, const char *path, MvError *err);
/* Loads a recipe (docs/recipes.md). Errors name the file and the line. */
MvStatus mv_deid_config_load_recipe(MvDeidConfig *cfg, const char *path, MvError *err);
/* A hex SHA-256 of the loaded recipe files (for reports), "" when none. */
const char *mv_deid_config_recipe_hash(const MvDeidConfig *cfg);
/* The De-identification Method text written to (0012,0063). */
const char *mv_deid_config_method(const MvDeidConfig *cfg);

typedef enum MvDeidOutcome {
    MV_DEID_DONE = 0,       /* de-identified: write it */
    MV_DEID_QUARANTINE = 1  /* must not be released: see reason */
} MvDeidOutcome;

typedef struct MvDeidResult {
    MvDeidOutcome outcome;
    char reason[256];           /* why quarantined (no patient data) */
    char patient_pseudonym[65]; /* the pseudonymous Patient ID given to the output */
    char study_uid[65];         /* new Study Instance UID, "" if none */
    char series_uid[65];
    char sop_uid[65];
    size_t n_removed, n_emptied, n_replaced, n_uids, n_dates_shifted, n_cleaned, n_private_removed;
} MvDeidResult;

/* De-identifies file in place: dataset, File Meta Information (Media Storage SOP Instance
 * UID follows the new SOP Instance UID; Source AE title removed) and preamble. On
 * MV_OK, res->outcome says whether the file may be released. The configuration is only
 * read, so one configuration may serve many threads, each with its own files. */
MvStatus mv_deid_file(const MvDeidConfig *cfg, MvFile *file, MvDeidResult *res, MvError *err);

/* The keyed replacement of one UID: "2.25." and the decimal of 128 bits of
 * HMAC-SHA256(key, "medveil/uid/v1" || uid). out needs 65 bytes. */
void mv_deid_uid(const MvDeidConfig *cfg, const char *uid, char out[65]);

#ifdef __cplusplus
}
#endif
#endif
