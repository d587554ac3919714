"""Upload & analyze: decode a radiograph, show it with its metadata, and preview enhancement."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.enhance import DENOISE_METHODS, PARAMETER_RANGES, EnhanceSettings, enhance
from core.findings import DISCLAIMER
from core.imaging import MIN_SIDE, DecodedScan, ScanError, decode_scan, to_uint8
from core.settings import load_settings

#: Session key of the decoded upload, as (uploader file id, DecodedScan), so that
#: moving a slider does not decode the file again. Per session, never cached globally.
_SCAN_KEY = "upload_scan"

#: Prefix of the enhancement widgets' session keys (used by the reset button).
_WIDGET_PREFIX = "enhance_"

_DENOISE_LABELS = {"none": "Off", "tv": "Smooth (total variation)", "nl_means": "Non-local means"}

#: Slider label, step and display format for each numeric EnhanceSettings field.
_SLIDERS: dict[str, tuple[str, float, str]] = {
    "window_center": ("Window centre (which brightness range to show)", 0.01, "%.2f"),
    "window_width": ("Window width (smaller means more contrast)", 0.01, "%.2f"),
    "clahe_clip_limit": ("Local contrast (CLAHE) strength, 0 is off", 0.001, "%.3f"),
    "clahe_tiles": ("Local contrast tiles per side", 1, "%d"),
    "gamma": ("Gamma (below 1 brightens, above 1 darkens)", 0.05, "%.2f"),
    "unsharp_radius": ("Sharpening radius in pixels", 0.5, "%.1f"),
    "unsharp_amount": ("Sharpening amount, 0 is off", 0.1, "%.1f"),
    "denoise_strength": ("Noise reduction strength", 0.005, "%.3f"),
}


def _render_upload() -> DecodedScan | None:
    """Show the uploader and return the decoded scan, or ``None`` (with a message) if none."""
    uploaded = st.file_uploader(
        "Chest radiograph",
        # No extension filter: files are recognised by content, and DICOM files often have none.
        type=None,
        help=(
            "PNG, JPEG or DICOM (.dcm or no extension), at least "
            f"{MIN_SIDE} pixels on each side."
        ),
    )
    if uploaded is None:
        st.session_state.pop(_SCAN_KEY, None)
        st.info("Choose a PNG, JPEG or DICOM file of a chest X-ray to begin.")
        return None
    stored = st.session_state.get(_SCAN_KEY)
    if stored is not None and stored[0] == uploaded.file_id:
        return stored[1]
    st.session_state.pop(_SCAN_KEY, None)
    try:
        scan = decode_scan(
            uploaded.getvalue(), uploaded.name, max_bytes=load_settings().max_upload_bytes
        )
    except ScanError as err:
        st.error(str(err))
        return None
    st.session_state[_SCAN_KEY] = (uploaded.file_id, scan)
    return scan


def _render_metadata(scan: DecodedScan) -> None:
    """Show what the file says about itself."""
    with st.expander("About this file", expanded=False):
        rows = scan.metadata.display_rows()
        st.table(pd.DataFrame({"Value": [value for _, value in rows]}, index=[k for k, _ in rows]))


def _render_enhancement(scan: DecodedScan) -> EnhanceSettings:
    """Show enhancement controls and the image before and after; return the chosen settings."""
    st.subheader("Image")
    defaults = EnhanceSettings()
    with st.expander("Adjust the display", expanded=False):
        if st.button("Reset to defaults"):
            for name in list(st.session_state):
                if isinstance(name, str) and name.startswith(_WIDGET_PREFIX):
                    del st.session_state[name]
        values: dict[str, object] = {}
        left, right = st.columns(2)
        for index, (name, (label, step, fmt)) in enumerate(_SLIDERS.items()):
            low, high = PARAMETER_RANGES[name]
            number = int if name == "clahe_tiles" else float
            column = left if index % 2 == 0 else right
            values[name] = column.slider(
                label,
                min_value=number(low),
                max_value=number(high),
                value=number(getattr(defaults, name)),
                step=number(step),
                format=fmt,
                key=f"{_WIDGET_PREFIX}{name}",
            )
        values["denoise"] = st.selectbox(
            "Noise reduction (slower)",
            DENOISE_METHODS,
            index=DENOISE_METHODS.index(defaults.denoise),
            format_func=_DENOISE_LABELS.__getitem__,
            key=f"{_WIDGET_PREFIX}denoise",
        )
    settings = EnhanceSettings(**values)
    with st.spinner("Enhancing..."):
        enhanced = enhance(scan.pixels, settings)
    before, after = st.columns(2)
    before.image(to_uint8(scan.pixels), caption="As uploaded", width="stretch")
    after.image(to_uint8(enhanced), caption="Enhanced for viewing", width="stretch")
    st.caption(
        "Enhancement only changes how the image is shown; it does not change the file or any "
        "result."
    )
    return settings


def _render_results(scan: DecodedScan, settings: EnhanceSettings) -> None:
    """Results section; model estimates for ``scan`` will be shown here once a model is available.

    Args:
        scan: The decoded upload the results are about.
        settings: The enhancement the user chose, to be stored with the scan.
    """
    del scan, settings  # Used once the classifier and saving are wired in.
    st.subheader("Results")
    st.info("Results will appear here once the model is available.")
    st.caption(DISCLAIMER)


st.title("Upload & analyze")
st.caption("Your file is checked and shown here; nothing is kept if it cannot be read.")
_scan = _render_upload()
if _scan is not None:
    _render_metadata(_scan)
    _enhance_settings = _render_enhancement(_scan)
    _render_results(_scan, _enhance_settings)
