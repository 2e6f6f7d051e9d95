/* The starter pixel rule set built into the library: a copy of data/pixel-rules/starter.rules
 * (tests/test_pixel_rules.c checks that the two are equal; regenerate this string from the
 * file when it changes). */
#include "pixel/clean_int.h"

static const char starter[] =
    "medveil-pixel-rules 1\n"
    "# The starter rule set of medveil (docs/pixel-clean.md, \"Rules\"). It is built into the\n"
    "# library; `medveil deid --pixel-rules FILE` adds your own rules after these, and\n"
    "# `--no-starter-rules` leaves these out. Every rule whose conditions all hold applies:\n"
    "# masks add up, one \"quarantine\" is enough, \"skip\" wins over \"scan\" only when no rule\n"
    "# masks or quarantines.\n"
    "\n"
    "# Ultrasound scanners burn the patient's name, ID, date and institution into a band\n"
    "# along the top of the image. The band is masked whatever OCR reads, and the rest of\n"
    "# the image is read too.\n"
    "rule \"ultrasound: top header band\"\n"
    "  when Modality = US\n"
    "  mask 0 0 100% 7%\n"
    "  scan\n"
    "end\n"
    "\n"
    "# Secondary captures are screenshots: reports, dose sheets, 3D views, annotated key\n"
    "# images. They are always read.\n"
    "rule \"secondary capture: read everything\"\n"
    "  when SOPClassUID ~ 1.2.840.10008.5.1.4.1.1.7*\n"
    "  scan\n"
    "end\n"
    "\n"
    "rule \"screen save: read everything\"\n"
    "  when ImageType contains SCREEN SAVE\n"
    "  scan\n"
    "end\n"
    "\n"
    "# CT dose reports and scanner patient-protocol pages are screenshots of a form with\n"
    "# the patient's name and ID in their first lines.\n"
    "rule \"dose report or patient protocol page\"\n"
    "  when Modality = CT\n"
    "  when ImageType contains SECONDARY\n"
    "  when SeriesDescription ~ *dose*\n"
    "  mask 0 0 100% 12%\n"
    "  scan\n"
    "end\n"
    "\n"
    "rule \"patient protocol page\"\n"
    "  when Modality = CT\n"
    "  when SeriesDescription ~ *patient protocol*\n"
    "  mask 0 0 100% 12%\n"
    "  scan\n"
    "end\n"
    "\n"
    "# Scanned documents and other modalities that are images of paper.\n"
    "rule \"document: read everything\"\n"
    "  when Modality = DOC\n"
    "  scan\n"
    "end\n"
    "\n"
    "# An encapsulated PDF or CDA is not pixel data: its text cannot be masked here.\n"
    "rule \"encapsulated document\"\n"
    "  when SOPClassUID ~ 1.2.840.10008.5.1.4.1.1.104.*\n"
    "  quarantine \"encapsulated document: its content cannot be checked for identity\"\n"
    "end\n"
    "\n"
    "# Video has no decoder in medveil: it cannot be read or masked.\n"
    "rule \"video endoscopy or microscopy\"\n"
    "  when SOPClassUID ~ 1.2.840.10008.5.1.4.1.1.77.1.*.1\n"
    "  quarantine \"video image storage: burned-in text cannot be checked\"\n"
    "end\n";

const char *mv_pixel_rules_starter_text(void)
{
    return starter;
}

MvStatus mv_pixel_rules_load_starter(MvPixelRules *rules, MvError *err)
{
    return mv_pixel_rules_parse(rules, "<starter rules>", starter, sizeof starter - 1, err);
}
