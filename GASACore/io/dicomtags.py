"""What a DICOM file is, from its File Meta Information (group 0002) alone: no pixel data, no pydicom.

Every DICOM Part 10 file starts with a 128-byte preamble, ``DICM`` and the meta group, always encoded explicit
VR little endian; its Media Storage SOP Class UID (0002,0002) says whether the file is an image slice or another
object (a segmentation, structure set, plan, report, presentation state...) that must never be read as CT.
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["NON_IMAGE_MODALITIES", "non_image_kind", "read_file_meta"]

#: VRs whose length field is 4 bytes (after 2 reserved bytes) in explicit VR encoding.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_META_BYTES = 1 << 16

#: SOP classes of objects that are not slices of a CT volume (exact UIDs), by name.
_NON_IMAGE_CLASSES = {
    "1.2.840.10008.1.3.10": "DICOMDIR (Media Storage Directory)",
    "1.2.840.10008.5.1.4.1.1.66": "Raw Data",
    "1.2.840.10008.5.1.4.1.1.66.1": "Spatial Registration",
    "1.2.840.10008.5.1.4.1.1.66.2": "Spatial Fiducials",
    "1.2.840.10008.5.1.4.1.1.66.3": "Deformable Spatial Registration",
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation (SEG)",
    "1.2.840.10008.5.1.4.1.1.66.5": "Surface Segmentation",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation",
    "1.2.840.10008.5.1.4.1.1.481.1": "RT Image",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set (RTSTRUCT)",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan (RTPLAN)",
    "1.2.840.10008.5.1.4.1.1.88.59": "Key Object Selection (KO)",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture (a screenshot, not a CT slice)",
}
#: SOP class families (UID prefixes) of non-image objects.
_NON_IMAGE_FAMILIES = {
    "1.2.840.10008.5.1.4.1.1.481.": "RT object",
    "1.2.840.10008.5.1.4.1.1.88.": "Structured Report (SR)",
    "1.2.840.10008.5.1.4.1.1.11.": "Presentation State (PR)",
    "1.2.840.10008.5.1.4.1.1.104.": "Encapsulated document",
    "1.2.840.10008.5.1.4.1.1.9.": "Waveform",
    "1.2.840.10008.5.1.4.1.1.7.": "Secondary Capture (a screenshot, not a CT slice)",
}
#: Modality (0008,0060) values of non-image objects, for files without File Meta Information.
NON_IMAGE_MODALITIES = {
    "SEG": "Segmentation (SEG)",
    "RTSTRUCT": "RT Structure Set (RTSTRUCT)",
    "RTPLAN": "RT Plan (RTPLAN)",
    "RTDOSE": "RT Dose",
    "RTRECORD": "RT record",
    "RTIMAGE": "RT Image",
    "SR": "Structured Report (SR)",
    "PR": "Presentation State (PR)",
    "KO": "Key Object Selection (KO)",
    "REG": "Spatial Registration",
    "FID": "Spatial Fiducials",
    "DOC": "Encapsulated document",
    "PLAN": "Plan",
}


def non_image_kind(sop_class_uid: str, modality: str = "") -> str | None:
    """The name of the object when it is not a slice of an image volume, else None.

    Examples:
        >>> non_image_kind("1.2.840.10008.5.1.4.1.1.66.4")
        'Segmentation (SEG)'
        >>> non_image_kind("1.2.840.10008.5.1.4.1.1.2") is None  # CT Image Storage
        True
        >>> non_image_kind("", "RTSTRUCT")
        'RT Structure Set (RTSTRUCT)'
    """
    uid = sop_class_uid.strip().rstrip("\0")
    if uid in _NON_IMAGE_CLASSES:
        return _NON_IMAGE_CLASSES[uid]
    for prefix, name in _NON_IMAGE_FAMILIES.items():
        if uid.startswith(prefix):
            return name
    return NON_IMAGE_MODALITIES.get(modality.strip().upper())


def read_file_meta(path: Path) -> dict[str, str] | None:
    """The text values of a Part 10 file's meta group, keyed ``"0002|0002"``; None without the ``DICM`` preamble.

    Reads at most 64 KiB; stops at the first element outside group 0002 or at a malformed element.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(132 + _META_BYTES)
    except OSError:
        return None
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    values: dict[str, str] = {}
    position = 132
    while position + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, position)
        vr = head[position + 4 : position + 6]
        if group != 0x0002:
            break
        if vr in _LONG_VRS:
            if position + 12 > len(head):
                break
            length, start = struct.unpack_from("<I", head, position + 8)[0], position + 12
        else:
            length, start = struct.unpack_from("<H", head, position + 6)[0], position + 8
        if start + length > len(head):
            break
        if vr in (b"UI", b"SH", b"LO", b"AE", b"CS"):
            values[f"{group:04x}|{element:04x}"] = head[start : start + length].rstrip(b"\0 ").decode("latin-1")
        position = start + length
    return values
