/* example_read.c: reading a DICOM file with the public API of libmedveil (docs/codec.md).
 * Opens FILE with a cap on element lengths, prints the reader's warnings, a few values by
 * tag and by tag path, and counts the elements at every depth. Build and run from the
 * source tree, after `make build`:
 *
 *   cc -Wall -Wextra -Iinclude docs/example_read.c build/libmedveil.a \
 *      -lz -lcrypto -ljansson -pthread -lm -o example_read
 *   ./example_read examples/synthetic/sc-alice-sequences.dcm
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "medveil/dicom.h"

/* The elements of ds and of every item nested in it, however deep. */
static size_t count_elements(const MvDataset *ds)
{
    size_t n = mv_dataset_count(ds);

    for (size_t i = 0; i < mv_dataset_count(ds); i++) {
        const MvElement *el = mv_dataset_at(ds, i);
        for (size_t k = 0; k < mv_element_item_count(el); k++)
            n += count_elements(mv_element_item(el, k));
    }
    return n;
}

/* Prints the text element at path (a tag, a keyword or a path into sequences), decoded
 * to UTF-8 under the character set in force where it sits. */
static void print_text(MvDataset *root, const char *path)
{
    MvDataset *holder = NULL;
    MvElement *el = mv_path_find(root, path, &holder);
    char *text = NULL;
    MvError err;

    if (el == NULL)
        printf("%s: (absent)\n", path);
    else if (mv_element_string(holder, el, &text, &err) != MV_OK)
        printf("%s: (%s)\n", path, err.message);
    else
        printf("%s: %s\n", path, text);
    free(text);
}

int main(int argc, char **argv)
{
    MvReadOptions opts;
    MvFile *file = NULL;
    MvDataset *ds;
    MvElement *rows, *cols;
    MvError err;
    uint64_t n_rows = 0, n_cols = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    mv_read_options_init(&opts);
    opts.max_element_length = 256u << 20; /* refuse any element over 256 MiB */
    if (mv_file_open(argv[1], &opts, &file, &err) != MV_OK) {
        /* The message names the file, the tag and the offset; never a value. */
        fprintf(stderr, "%s (%s)\n", err.message, mv_status_name(err.code));
        return 1;
    }
    printf("transfer syntax: %s\n", mv_file_transfer_syntax(file)->name);
    for (size_t i = 0; i < mv_file_warning_count(file); i++)
        printf("warning: %s\n", mv_file_warning(file, i));

    ds = mv_file_dataset(file);
    print_text(ds, "Modality");
    print_text(ds, "(0008,1030)");
    print_text(ds, "ReferencedImageSequence[0].ReferencedSOPInstanceUID");
    print_text(ds, "RequestAttributesSequence[0].ReferencedStudySequence[0].ReferencedSOPClassUID");

    rows = mv_dataset_find(ds, MV_TAG(0x0028, 0x0010));
    cols = mv_dataset_find(ds, MV_TAG(0x0028, 0x0011));
    if (rows != NULL && cols != NULL && mv_element_uint(ds, rows, 0, &n_rows, NULL) == MV_OK &&
        mv_element_uint(ds, cols, 0, &n_cols, NULL) == MV_OK)
        printf("image: %" PRIu64 " x %" PRIu64 "\n", n_cols, n_rows);
    printf("elements, nested ones included: %zu\n", count_elements(ds));
    mv_file_free(file);
    return 0;
}
