/* Reversible de-identification (PS3.15 E.1.1 steps 1 and 4, E.1.2): the original values of
 * every attribute that de-identification changed or removed are kept, encrypted to one or more
 * X.509 certificates with CMS (RFC 5652, OpenSSL), in an item of the Encrypted Attributes
 * Sequence (0400,0500); a holder of a matching private key restores them. */
#ifndef MEDVEIL_REVERSIBLE_H
#define MEDVEIL_REVERSIBLE_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/dicom.h"
#include "medveil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Encrypting the originals (the de-identifier's side) ------------------------------- */

/* How the Encrypted Content is built. The default is what every peer reads: EnvelopedData,
 * AES-256-CBC content encryption (RFC 3565), RSA-OAEP key transport with SHA-256 (RFC 4055). */
#define MV_REV_RSA_PKCS1V15 1u   /* RSA PKCS#1 v1.5 key transport (RFC 3370), for old peers */
#define MV_REV_AUTH_ENVELOPED 2u /* AuthEnvelopedData (RFC 5083) with AES-256-GCM (RFC 5084):
                                    altered content is detected; fewer peers read it */

typedef struct MvRecipients MvRecipients;

/* A new, empty set of recipients with MV_REV_* flags. Free with mv_recipients_free. */
MvStatus mv_recipients_new(unsigned flags, MvRecipients **out, MvError *err);
/* Adds every certificate of a PEM file. A certificate is refused (MV_ERR_ARG, naming the file
 * and the certificate's position, and nothing is added) if its key is not RSA (PS3.15 E.1.1
 * step 4 asks for RSA key transport) or shorter than 2048 bits, if it has expired or is not
 * yet valid, or if its Key Usage forbids key encipherment. MV_ERR_NOTFOUND if the file cannot
 * be read, MV_ERR_PARSE if it holds no certificate. */
MvStatus mv_recipients_add_file(MvRecipients *r, const char *pem_path, MvError *err);
size_t mv_recipients_count(const MvRecipients *r);
/* "sha256:" + the hex SHA-256 of certificate index's DER (72 bytes with the NUL), for reports. */
void mv_recipients_fingerprint(const MvRecipients *r, size_t index, char out[72]);
void mv_recipients_free(MvRecipients *r);

/* Compares the top-level dataset of deidentified with original (the same input, opened a
 * second time and never edited) and appends to deidentified one item of the Encrypted
 * Attributes Sequence (0400,0500): Encrypted Content Transfer Syntax UID (0400,0510) =
 * Explicit VR Little Endian, and Encrypted Content (0400,0520) = the DER of a CMS structure
 * for every recipient of r, whose content is a dataset holding one item of the Modified
 * Attributes Sequence (0400,0550). That item holds the original of every top-level
 * attribute that is absent from deidentified or differs from it in VR, value or (for a
 * sequence) anything inside: a change at any depth records the whole top-level sequence, as
 * PS3.15 E.1.1 step 5 asks. It also always holds, when the original has them, Specific
 * Character Set (0008,0005), so that the originals decode as they were written, and the
 * de-identification markers (0012,0062-0064) and (0028,0303), so that a re-identifier can
 * tell the markers it must remove. Pixel Data (7FE0,0008/0009/0010) and group lengths
 * (gggg,0000), which writing an edited dataset drops, are never recorded.
 * *n_recorded (may be NULL) receives the number of attributes recorded. r is only read: one
 * set of recipients may serve many threads. On failure deidentified is unchanged;
 * MV_ERR_UNSUPPORTED if a recorded attribute holds encapsulated data (an icon image of a
 * compressed file), which this build cannot copy. */
MvStatus mv_originals_encrypt(const MvRecipients *r, const MvDataset *original, MvFile *deidentified,
                              size_t *n_recorded, MvError *err);

/* ---- Restoring them (the re-identifier's side) ------------------------------------------ */

typedef struct MvReidKey MvReidKey;

/* 1 if the PEM private key file at key_path is encrypted ("ENCRYPTED PRIVATE KEY", or a
 * traditional key with "Proc-Type: 4,ENCRYPTED"), so that a passphrase must be read first;
 * 0 if not, or if the file cannot be read (mv_reid_key_load then says why). */
int mv_reid_key_encrypted(const char *key_path);
/* Loads a PEM private key (PKCS#8 or traditional, encrypted or not) and, when cert_path is
 * not NULL, the certificate that names it as a recipient (then only recipient infos issued
 * to that certificate are tried, and a key that does not match the certificate is refused).
 * pass/pass_len is the key's passphrase (NULL: none given; nothing is ever prompted for).
 * Passphrase bytes are not kept. MV_ERR_ARG for a key or certificate that cannot be read or
 * does not match, or an encrypted key without a passphrase; MV_ERR_DENIED for a wrong
 * passphrase. Free with mv_reid_key_free, which wipes the key. */
MvStatus mv_reid_key_load(const char *key_path, const char *cert_path, const uint8_t *pass, size_t pass_len,
                          MvReidKey **out, MvError *err);
void mv_reid_key_free(MvReidKey *key);

#define MV_REID_KEEP_ENCRYPTED 1u /* keep the Encrypted Attributes Sequence item that was used */

typedef struct MvReidResult {
    size_t n_restored;  /* attributes copied back from the Modified Attributes Sequence */
    size_t n_markers_removed; /* de-identification markers removed */
    size_t item_index;  /* the Encrypted Attributes Sequence item that was decrypted */
} MvReidResult;

/* Finds an item of the Encrypted Attributes Sequence of file that key can decrypt, and
 * copies every attribute of its Modified Attributes Sequence item back into the top-level
 * dataset, replacing what de-identification left there. The markers of de-identification
 * that the originals do not hold are removed: Patient Identity Removed (0012,0062) and
 * De-identification Method (0012,0063) always (as GDCM does), and when that method names
 * medveil also (0012,0064) and (0028,0303), which only medveil adds. The item used is
 * removed (and the sequence with its last item) unless flags has MV_REID_KEEP_ENCRYPTED.
 * Errors: MV_ERR_NOTFOUND when the file has no Encrypted Attributes Sequence item;
 * MV_ERR_DENIED when key is no recipient of any item; MV_ERR_INTEGRITY when an item
 * addressed to key does not decrypt, or decrypts to something that is not one Modified
 * Attributes Sequence item (the content was altered); MV_ERR_UNSUPPORTED for an Encrypted
 * Content Transfer Syntax other than the uncompressed ones. Everything is checked before the
 * first attribute is copied, so on any failure but MV_ERR_NOMEM the dataset is unchanged.
 * Messages name tags and items, never values. */
MvStatus mv_originals_restore(const MvReidKey *key, MvFile *file, unsigned flags, MvReidResult *res,
                              MvError *err);

#ifdef __cplusplus
}
#endif
#endif
