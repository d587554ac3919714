"""Upload & analyze: decode a radiograph, show it with its metadata, and preview enhancement."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.enhance import DENOISE_METHODS, PARAMETER_RANGES, EnhanceSettings, enhance
from core.findings import FINDING_LABELS, FINDINGS, heatmap_finding
from core.imaging import MIN_SIDE, DecodedScan, decode_scan, to_uint8
from core.overlay import overlay_heatmap
from core.results import probability_figure, top_finding_sentence
from models.inference import Classifier
from models.populations import threshold_sentence
from pages.ui import current_classifier, get_database, require_actor, show_disclaimer, show_error
from services.imports import (
    ImportedScan,
    ScanFile,
    classify,
    import_scans,
    save_decoded_scan,
    usable_study_date,
)
from storage.actor import Actor
from storage.results import ResultIn

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

#: What still works when the model cannot be loaded.
_WITHOUT_MODEL = "Your scan can still be viewed and saved without a result."


def _render_upload():
    """Show the uploader; return the uploaded files (an empty list when none)."""
    files = st.file_uploader(
        "Chest radiograph",
        # No extension filter: files are recognised by content, and DICOM files often have none.
        type=None,
        help=(
            "PNG, JPEG or DICOM (.dcm or no extension), at least "
            f"{MIN_SIDE} pixels on each side. Choose several files to analyze them in one go."
        ),
        accept_multiple_files=True,
    )
    if not files:
        st.session_state.pop(_SCAN_KEY, None)
        st.info("Choose a PNG, JPEG or DICOM file of a chest X-ray to begin.")
    return files


def _decode_single(uploaded) -> DecodedScan | None:
    """Decode one upload (once per file), or show why it cannot be used and return ``None``."""
    stored = st.session_state.get(_SCAN_KEY)
    if stored is not None and stored[0] == uploaded.file_id:
        return stored[1]
    st.session_state.pop(_SCAN_KEY, None)
    try:
        scan = decode_scan(
            uploaded.getvalue(), uploaded.name, max_bytes=get_database().settings.max_upload_bytes
        )
    except Exception as err:  # shown as one sentence
        show_error(err)
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


def _result_for(file_id: str, scan: DecodedScan, classifier: Classifier) -> ResultIn:
    # Kept in this user's session only: never in a global cache.
    key = f"result:{file_id}"
    if key not in st.session_state:
        with st.spinner("Analyzing..."):
            st.session_state[key] = classify(classifier, scan)
    return st.session_state[key]


def _render_results(scan: DecodedScan, classifier: Classifier, result: ResultIn) -> None:
    """Probabilities with thresholds, the headline in words and the Grad-CAM heatmap."""
    if result.abstained:
        st.warning(f"{result.abstain_reason} No result is shown for this image.")
        return
    probabilities, thresholds = result.probabilities, result.thresholds
    st.markdown(f"**{top_finding_sentence(probabilities, thresholds)}**")
    if (whose := threshold_sentence(result.population)) is not None:
        st.caption(whose)
    st.plotly_chart(probability_figure(probabilities, thresholds), width="stretch")
    show_disclaimer()
    st.subheader("Where the model looked")
    left, right = st.columns([1, 2])
    shown = heatmap_finding(probabilities, thresholds)
    finding = left.selectbox(
        "Finding",
        FINDINGS,
        format_func=FINDING_LABELS.__getitem__,
        key="heatmap_finding",
        index=FINDINGS.index(shown),
    )
    opacity = left.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="heatmap_opacity")
    left.caption(
        "Warm colours mark the regions that raised this finding's score most (Grad-CAM). "
        "They show what the model used, not where disease is."
    )
    with st.spinner("Computing the heatmap..."):
        heat = classifier.heatmap(scan, finding)
    right.image(
        overlay_heatmap(scan.pixels, heat, opacity),
        caption=FINDING_LABELS[finding],
        width="stretch",
    )


def _date_default(scan: DecodedScan) -> date | None:
    study, usable = scan.metadata.study_date, usable_study_date(scan)
    if study is not None and usable is None:
        st.warning(
            f"The file gives {study.isoformat()} as the date of the X-ray, which looks like a "
            "placeholder from an anonymised file; please enter the real date."
        )
    return usable


def _render_save(
    uploaded, scan: DecodedScan, settings: EnhanceSettings, result: ResultIn | None, actor: Actor
) -> None:
    """Let the patient store the scan with its date, enhancement and result."""
    st.subheader("Save to my record")
    saved_key = f"saved:{uploaded.file_id}"
    if st.session_state.get(saved_key) is not None:
        st.success("This scan is saved in your record. See it under My scans and Timeline.")
        return
    with st.form("save_scan"):
        scan_date = st.date_input(
            "Date the X-ray was taken",
            value=_date_default(scan),
            max_value=date.today(),
            help="Taken from the DICOM Study Date when the file has one; otherwise please enter "
            "it.",
        )
        submitted = st.form_submit_button("Save scan and result", type="primary")
    if submitted:
        if scan_date is None:
            st.error("Please enter the date the X-ray was taken, so your timeline stays correct.")
            return
        try:
            scan_id = save_decoded_scan(
                get_database(),
                actor,
                scan,
                scan_date=scan_date,
                filename=uploaded.name,
                result=result,
                enhancement=settings,
            )
        except Exception as err:  # shown as one sentence
            show_error(err)
            return
        st.session_state[saved_key] = scan_id
        st.rerun()


def _outcome_text(item: ImportedScan) -> str:
    if not item.ok:
        return item.error or ""
    if item.result is None:
        return "Saved without a result (model unavailable)."
    if item.result.abstained:
        return f"Saved; no result shown: {item.result.abstain_reason}"
    return top_finding_sentence(item.result.probabilities, item.result.thresholds)


def _render_batch(files, actor: Actor) -> None:
    """Analyze and save several files, one result line per file; bad files do not stop the rest."""
    st.subheader(f"{len(files)} files")
    fallback = st.date_input(
        "Date these X-rays were taken (used for files that do not carry their own date)",
        value=None,
        max_value=date.today(),
    )
    if not st.button(f"Analyze and save {len(files)} files", type="primary"):
        return
    classifier = current_classifier(_WITHOUT_MODEL, as_error=True)
    progress = st.progress(0.0, text="Starting...")
    try:
        report = import_scans(
            get_database(),
            actor,
            [ScanFile(f.name, f.getvalue) for f in files],
            classifier,
            fallback_date=fallback,
            on_progress=lambda done, total, item: progress.progress(
                done / total, text=f"{done} of {total}: {item.filename}"
            ),
        )
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    (st.success if report.all_ok else st.warning)(report.summary)
    st.dataframe(
        pd.DataFrame(
            {
                "File": [i.filename for i in report.items],
                "Saved": [i.ok for i in report.items],
                "Result": [_outcome_text(i) for i in report.items],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    show_disclaimer()


actor = require_actor("patient")
st.title("Upload & analyze")
st.caption(
    "Your file is checked and shown here; nothing is kept unless you save it, and nothing "
    "if it cannot be read."
)
files = _render_upload()
if len(files) > 1:
    _render_batch(files, actor)
    st.stop()
scan = _decode_single(files[0]) if files else None
if scan is None:
    st.stop()
_render_metadata(scan)
enhancement = _render_enhancement(scan)
classifier = current_classifier(_WITHOUT_MODEL, as_error=True)
result = _result_for(files[0].file_id, scan, classifier) if classifier is not None else None
st.subheader("Results")
if classifier is not None and result is not None:
    _render_results(scan, classifier, result)
_render_save(files[0], scan, enhancement, result, actor)
