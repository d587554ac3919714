"""Whether a decoded file is a chest radiograph at all, before anyone is asked its date or view.

A colour photograph, a blank image or a CT/MR slice can be decoded, but it is not an X-ray film
the app keeps as one: it is refused with one sentence on the upload page and the command line
alike, and never saved. (Whether a chest film is one the model can read is the model's own
check, ``models.inference``: an unsure model keeps the film without a number.)
"""

from __future__ import annotations

from core.imaging import DecodedScan

#: DICOM Modality (0008,0060) values of projection radiographs.
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "RG"})
#: Mean chroma above which an image is a colour photograph, not a radiograph.
COLOUR_LIMIT = 0.04
#: Pixel standard deviation below which an image is blank.
BLANK_LIMIT = 0.02


def not_a_chest_radiograph(scan: DecodedScan) -> str | None:
    """Why a decoded file is not a chest radiograph, or None when it may be one.

    Args:
        scan: The decoded file (DICOM Modality (0008,0060), colour and contrast measured at
            decoding).

    Returns:
        One sentence for the patient, or None.
    """
    meta = scan.metadata
    if meta.modality and meta.modality.upper() not in RADIOGRAPH_MODALITIES:
        modality = meta.modality.upper()
        # Codes are read letter by letter: "an MR", "a CT".
        article = "an" if modality[0] in "AEFHILMNORSX" else "a"
        return f"This is not a chest X-ray: it is {article} {modality} scan."
    if meta.colorfulness > COLOUR_LIMIT:
        return "This is not a chest X-ray: it looks like a colour photograph."
    if float(scan.pixels.std()) < BLANK_LIMIT:
        return "This is not a chest X-ray: the image is almost blank."
    return None
