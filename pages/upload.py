"""Upload & analyze: decode a radiograph, show it with its metadata, and preview enhancement."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.batch import batch_summary, process_batch
from core.enhance import DENOISE_METHODS, PARAMETER_RANGES, EnhanceSettings, enhance
from core.findings import FINDING_LABELS, FINDINGS
from core.imaging import MIN_SIDE, DecodedScan, ScanError, decode_scan, to_uint8
from core.report import overlay_heatmap
from core.results import probability_figure, top_finding_sentence
from core.settings import load_settings
from models.inference import ModelUnavailable, Prediction
from pages.ui import get_database, load_classifier, require_actor, show_disclaimer, show_error
from storage.records import ResultIn, save_scan

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


def _prediction_for(file_id: str, scan: DecodedScan, classifier) -> Prediction:
    # Kept in this user's session only: never in a global cache.
    key = f"prediction:{file_id}"
    if key not in st.session_state:
        with st.spinner("Analyzing..."):
            st.session_state[key] = classifier.predict([scan])[0]
    return st.session_state[key]


def _render_results(scan: DecodedScan, classifier, prediction: Prediction | None) -> None:
    """Probabilities with thresholds, the headline in words and the Grad-CAM heatmap."""
    st.subheader("Results")
    if prediction is None:
        return
    if prediction.abstained:
        st.warning(f"{prediction.abstain_reason} No result is shown for this image.")
        return
    thresholds = classifier.info.thresholds
    st.markdown(f"**{top_finding_sentence(prediction.probabilities, thresholds)}**")
    st.plotly_chart(probability_figure(prediction.probabilities, thresholds), width="stretch")
    show_disclaimer()
    st.subheader("Where the model looked")
    left, right = st.columns([1, 2])
    finding = left.selectbox(
        "Finding", FINDINGS, format_func=FINDING_LABELS.__getitem__, key="heatmap_finding",
        index=max(range(len(FINDINGS)), key=lambda i: prediction.probabilities[FINDINGS[i]]),
    )
    opacity = left.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="heatmap_opacity")
    left.caption(
        "Warm colours mark the regions that raised this finding's score most (Grad-CAM). "
        "They show what the model used, not where disease is."
    )
    with st.spinner("Computing the heatmap..."):
        heat = classifier.heatmap(scan, finding)
    right.image(overlay_heatmap(scan.pixels, heat, opacity), caption=FINDING_LABELS[finding], width="stretch")


#: Anonymisation tools often write dates like 1901-01-01; no digital radiograph is that old.
_EARLIEST_PLAUSIBLE_YEAR = 1950


def _file_date(scan: DecodedScan) -> date | None:
    """The DICOM Study Date (0008,0020) when it is plausible, else ``None`` (the user must enter one)."""
    study = scan.metadata.study_date
    return study if study is not None and study.year >= _EARLIEST_PLAUSIBLE_YEAR else None


def _date_default(scan: DecodedScan) -> date | None:
    study, usable = scan.metadata.study_date, _file_date(scan)
    if study is not None and usable is None:
        st.warning(
            f"The file gives {study.isoformat()} as the date of the X-ray, which looks like a "
            "placeholder from an anonymised file; please enter the real date."
        )
    return usable


def _render_save(file_id: str, name: str, scan: DecodedScan, settings: EnhanceSettings, result: ResultIn | None, actor) -> None:
    """Let the patient store the scan with its date, enhancement and result."""
    st.subheader("Save to my record")
    saved = st.session_state.get(f"saved:{file_id}")
    if saved is not None:
        st.success("This scan is saved in your record. See it under My scans and Timeline.")
        return
    with st.form("save_scan"):
        scan_date = st.date_input(
            "Date the X-ray was taken",
            value=_date_default(scan),
            max_value=date.today(),
            help="Taken from the DICOM Study Date when the file has one; otherwise please enter it.",
        )
        submitted = st.form_submit_button("Save scan and result", type="primary")
    if submitted:
        if scan_date is None:
            st.error("Please enter the date the X-ray was taken, so your timeline stays correct.")
            return
        try:
            scan_id = save_scan(
                get_database(), actor, pixels=scan.pixels, metadata=scan.metadata.to_dict(),
                enhancement=settings.to_dict(), scan_date=scan_date, filename=name, result=result,
            )
        except Exception as err:  # shown as one sentence, never a traceback
            show_error(err)
            return
        st.session_state[f"saved:{file_id}"] = scan_id
        st.rerun()


def _classifier_or_message():
    try:
        return load_classifier()
    except ModelUnavailable as err:
        st.error(f"{err} Your scan can still be viewed and saved without a result.")
        return None


class _MissingDate(ValueError):
    """A file without a Study Date in a batch for which no date was entered."""


def _render_batch(files, actor) -> None:
    """Analyze and save several files, one result line per file; bad files do not stop the rest."""
    st.subheader(f"{len(files)} files")
    fallback = st.date_input(
        "Date these X-rays were taken (used for files that do not carry their own date)",
        value=None, max_value=date.today(),
    )
    if not st.button(f"Analyze and save {len(files)} files", type="primary"):
        return
    classifier = _classifier_or_message()
    database, settings = get_database(), EnhanceSettings()
    limit = load_settings().max_upload_bytes

    def handle(name: str, data: bytes) -> str:
        scan = decode_scan(data, name, max_bytes=limit)
        scan_date = _file_date(scan) or fallback
        if scan_date is None:
            raise _MissingDate("This file has no date of its own; enter the date above and try again.")
        result = None
        if classifier is not None:
            prediction = classifier.predict([scan])[0]
            result = ResultIn.from_prediction(prediction, classifier.info)
        save_scan(database, actor, pixels=scan.pixels, metadata=scan.metadata.to_dict(),
                  enhancement=settings.to_dict(), scan_date=scan_date, filename=name, result=result)
        if result is None:
            return "Saved without a result (model unavailable)."
        if result.abstained:
            return f"Saved; no result shown: {result.abstain_reason}"
        return top_finding_sentence(result.probabilities, classifier.info.thresholds)

    progress = st.progress(0.0, text="Starting...")
    items = process_batch(
        [(f.name, f.getvalue()) for f in files], handle,
        lambda done, total, name: progress.progress(done / total, text=f"{done} of {total}: {name}"),
        expected=(ScanError, _MissingDate),
    )
    (st.success if all(i.ok for i in items) else st.warning)(batch_summary(items))
    st.dataframe(
        pd.DataFrame({"File": [i.name for i in items], "Saved": [i.ok for i in items],
                      "Result": [i.value if i.ok else i.error for i in items]}),
        hide_index=True, width="stretch",
    )
    show_disclaimer()


actor = require_actor("patient")
st.title("Upload & analyze")
st.caption("Your file is checked and shown here; nothing is kept unless you save it, and nothing if it cannot be read.")
_files = _render_upload()
if len(_files) > 1:
    _render_batch(_files, actor)
elif _files:
    _scan = _decode_single(_files[0])
    if _scan is not None:
        _render_metadata(_scan)
        _enhance_settings = _render_enhancement(_scan)
        _classifier = _classifier_or_message()
        _prediction = _prediction_for(_files[0].file_id, _scan, _classifier) if _classifier else None
        _render_results(_scan, _classifier, _prediction)
        _render_save(
            _files[0].file_id, _files[0].name, _scan, _enhance_settings,
            ResultIn.from_prediction(_prediction, _classifier.info) if _prediction else None, actor,
        )
