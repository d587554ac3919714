"""Upload & analyze: one file or a series, entered in one table, checked, then saved.

One file and several files take the same path: one table row per file (thumbnail, date,
view, status), a closer look at any one file (metadata, display settings, the model's
result and heatmap), and one Save button that is enabled only when every row to be saved
has a valid date and view. Saving a file already in the record stores nothing again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from core.age import suggested_birth_year
from core.enhance import DENOISE_METHODS, PARAMETER_RANGES, EnhanceSettings, enhance
from core.findings import FINDING_LABELS, FINDINGS, heatmap_finding
from core.imaging import MIN_SIDE, DecodedScan, to_uint8
from core.overlay import overlay_heatmap
from core.results import probability_figure
from core.view_pictures import frontal_picture, lateral_picture
from core.views import VIEW_LABELS, View
from core.words import markdown_literal, plural
from pages.media import render_media_import
from pages.readings import birth_year_of, render_reading
from pages.ui import (
    browser_zone,
    current_classifier,
    get_database,
    require_actor,
    show_disclaimer,
    show_error,
)
from services.handles import Actor
from services.imports import ImportedScan, ImportReport, ScanFile, Scored, import_scans
from services.imports import view_notes as file_view_notes
from services.series import (
    SeriesFile,
    UploadPreview,
    check_files,
    preview,
    series_problems,
    set_birth_year,
    view_doubts,
)

if TYPE_CHECKING:
    from services.handles import Classifier

#: Session keys: the checked files as (file ids, SeriesFile list), the last save's report as
#: (file ids, ImportReport), and the table's edits. Per session, never cached globally.
_CHECKED_KEY = "upload_checked"
_REPORT_KEY = "upload_report"
_TABLE_KEY = "upload_table"
#: The rows' values set with "apply to several files" (by position), and the table's
#: version: a new version starts the table from those values (a data editor's edits cannot be
#: set from code, so the table is drawn anew with them as its values).
_BULK_KEY = "upload_bulk"
_VERSION_KEY = "upload_table_version"

#: The rows as the files section last read them (dates, views, confirmed positions, birth
#: year), for the closer look; what the closer look last showed a result for; and whether
#: this run is the whole page's (the closer look then runs after the files section anyway).
_ROWS_KEY = "upload_rows"
_CLOSER_SHOWN_KEY = "upload_closer_shown"
_PAGE_RUN_KEY = "upload_page_run"
_CLOSER_FILE_KEY = "upload_closer"

#: Prefix of the enhancement widgets' session keys (per file; used by the reset button).
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

#: The views offered in the table, by their words.
_VIEW_BY_LABEL: dict[str, View] = {label: view for view, label in VIEW_LABELS.items()}

#: Width of each picture of the view guide, in pixels.
_GUIDE_WIDTH = 200

#: What still works when the model cannot be loaded.
_WITHOUT_MODEL = "Your scans can still be viewed and saved without a result."


def _render_upload() -> list[Any]:
    """Show the uploader; return the uploaded files (an empty list when none)."""
    files = st.file_uploader(
        "Chest radiographs",
        # No extension filter: files are recognised by content, and DICOM files often have none.
        type=None,
        help=(
            "PNG, JPEG or DICOM (.dcm or no extension), at least "
            f"{MIN_SIDE} pixels on each side. Choose one file or a whole series at once."
        ),
        accept_multiple_files=True,
    )
    if not files:
        st.session_state.pop(_CHECKED_KEY, None)
        st.info("Choose one or more PNG, JPEG or DICOM files of chest X-rays to begin.")
    return list(files or [])


def _signature(files: Sequence[Any]) -> tuple[str, ...]:
    """Which files are chosen: the uploader's ids, new for each choice of the same file."""
    return tuple(f.file_id for f in files)


def _checked(files: Sequence[Any], actor: Actor) -> list[SeriesFile]:
    """Each file decoded and checked once per set of files (not on every widget change)."""
    signature = _signature(files)
    stored = st.session_state.get(_CHECKED_KEY)
    if stored is not None and stored[0] == signature:
        return stored[1]
    # Other files, or the same ones after a save: earlier edits of the table do not apply.
    st.session_state.pop(_table_key(), None)
    st.session_state.pop(_BULK_KEY, None)
    with st.spinner("Checking the files..."):
        checked = check_files(
            get_database(), actor, [(f.name, f.getvalue()) for f in files], date.today()
        )
    st.session_state[_CHECKED_KEY] = (signature, checked)
    return checked


def _render_view_guide(open_guide: bool) -> None:
    with st.expander("Which view is my film? A guide", expanded=open_guide):
        frontal, lateral = st.columns(2)
        frontal.image(
            frontal_picture(),
            caption="Frontal: both lungs side by side, the spine down the middle.",
            width=_GUIDE_WIDTH,
        )
        lateral.image(
            lateral_picture(),
            width=_GUIDE_WIDTH,
            caption="Side (lateral): the chest seen from the side, the lungs overlapping, "
            "the spine at the back.",
        )
        st.caption(
            "Frontal films come in three kinds. PA: taken standing, facing the plate (the "
            "usual film in a radiology department). AP: taken from the front, often sitting, "
            "at the bedside. AP lying down (supine): taken lying in bed. Your report or the "
            "department usually says which; choose Not known if you cannot tell. Only frontal "
            "films are scored."
        )


def _table_positions(checked: list[SeriesFile]) -> list[int]:
    """The files that get a table row: every file but those that cannot be used, which are
    refused with their sentence and never asked a date or a view."""
    return [position for position, file in enumerate(checked) if file.error is None]


def _table_key() -> str:
    return f"{_TABLE_KEY}_{st.session_state.get(_VERSION_KEY, 0)}"


def _edited_cells(checked: list[SeriesFile]) -> dict[int, dict[str, Any]]:
    """The patient's edits by file position (the table's rows skip unusable files)."""
    state = st.session_state.get(_table_key()) or {}
    positions = _table_positions(checked)
    return {
        positions[int(row)]: dict(cells)
        for row, cells in (state.get("edited_rows") or {}).items()
        if int(row) < len(positions)
    }


def _as_date(value: Any) -> date | None:
    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _current_rows(
    checked: list[SeriesFile],
) -> tuple[dict[int, date | None], dict[int, View | None]]:
    """Each row's date and view: the file's suggestion, replaced by the patient's edits."""
    edits = _edited_cells(checked)
    dates: dict[int, date | None] = {}
    views: dict[int, View | None] = {}
    bulk = st.session_state.get(_BULK_KEY) or {}
    for position, file in enumerate(checked):
        cells = {**bulk.get(position, {}), **edits.get(position, {})}
        dates[position] = _as_date(cells["date"]) if "date" in cells else _default_day(file)
        label = cells["view"] if "view" in cells else _default_view_label(file)
        views[position] = _VIEW_BY_LABEL.get(label) if label else None
    return dates, views


def _default_day(file: SeriesFile) -> date | None:
    """The date a row starts with: as saved for a file already in the record, else suggested."""
    if file.saved is not None:
        return file.saved.scan_date
    return file.suggested.day if file.suggested else None


def _default_view_label(file: SeriesFile) -> str | None:
    """The view a row starts with: as saved, else as the DICOM header states, else none."""
    view = file.saved.view if file.saved is not None else file.header_view
    return VIEW_LABELS[view] if view is not None else None


def _status(file: SeriesFile, problem: str | None, view: View | None) -> tuple[str, str]:
    """The row's state in a few words for its table cell, and in whole sentences for below."""
    if file.error is not None:
        return "Cannot be used", f"Cannot be used: {file.error}"
    if file.saved is not None:
        return "Already saved", file.saved.sentence(browser_zone())
    if file.same_as is not None:
        return "Same file as above", f"The same file as {file.same_as} above: it is saved once."
    if problem is not None:
        study = file.scan.metadata.study_date if file.scan is not None else None
        if study is not None and file.suggested is None:
            problem = (
                f"The file's date {study.isoformat()} looks like a placeholder from an "
                f"anonymised file. {problem}"
            )
        return "Needs your input", problem
    words = ["Ready to save."]
    if file.suggested is not None:
        words.append(f"Date {file.suggested.source}.")
    if file.header_view is not None and view is file.header_view:
        words.append("View from the file.")
    notes = file_view_notes(file.scan, view) if file.scan is not None and view else []
    short = "Ready to save; read the note below" if notes else "Ready to save"
    return short, " ".join([*words, *notes])


def _render_table(
    checked: list[SeriesFile],
    dates: dict[int, date | None],
    views: dict[int, View | None],
    problems: dict[int, str],
) -> None:
    """The editable table (a few words of status per row), then each row's whole sentences.

    A table cell cuts a long sentence, so the cell names the state and the sentences follow.
    """
    positions = _table_positions(checked)
    rows = [checked[i] for i in positions]

    def _row_value(position: int, column: str, default: Any) -> Any:
        # What the table starts from: values applied to several files, else the file's own.
        bulk = (st.session_state.get(_BULK_KEY) or {}).get(position, {})
        return bulk[column] if column in bulk else default(checked[position])

    statuses = [
        _status(checked[i], problems.get(i), views.get(i)) for i in _table_positions(checked)
    ]
    frame = pd.DataFrame(
        {
            "preview": [f.thumbnail for f in rows],
            "file": [f.name for f in rows],
            # datetime64 with NaT for empty dates, so the date column stays editable.
            "date": pd.to_datetime([_row_value(i, "date", _default_day) for i in positions]),
            "view": [_row_value(i, "view", _default_view_label) for i in positions],
            "status": [short for short, _ in statuses],
        }
    )
    st.data_editor(
        frame,
        key=_table_key(),
        hide_index=True,
        num_rows="fixed",
        disabled=["preview", "file", "status"],
        width="stretch",
        column_config={
            "preview": st.column_config.ImageColumn("Preview", width="small"),
            "file": st.column_config.TextColumn("File"),
            "date": st.column_config.DateColumn(
                "Date taken",
                help="From the DICOM Study Date, the picture's EXIF date or a date in the file "
                "name when there is one; otherwise enter it.",
                max_value=date.today(),
                min_value=date(1950, 1, 1),
                format="YYYY-MM-DD",
            ),
            "view": st.column_config.SelectboxColumn(
                "View",
                help="Frontal (PA, AP, AP lying down), side (lateral), or Not known. See the "
                "guide above.",
                options=list(_VIEW_BY_LABEL),
            ),
            "status": st.column_config.TextColumn("Status"),
        },
    )
    for file, (_, sentences) in zip(rows, statuses, strict=True):
        st.markdown(f"**{markdown_literal(file.name)}**: {markdown_literal(sentences)}")


def _render_bulk(
    checked: list[SeriesFile], dates: dict[int, date | None], views: dict[int, View | None]
) -> None:
    """Apply one date or one view to several files of a series at once."""
    positions = [i for i in _table_positions(checked) if checked[i].to_save]
    if len(positions) < 2:
        return
    with st.expander("Apply one date or view to several files"):
        chosen = st.multiselect(
            "Files", positions, format_func=lambda i: checked[i].name, key="upload_bulk_files"
        )
        left, right = st.columns(2)
        day = left.date_input(
            "Date taken (leave as is to keep each file's)",
            value=None,
            max_value=date.today(),
            min_value=date(1950, 1, 1),
            key="upload_bulk_date",
        )
        label = right.selectbox(
            "View (leave empty to keep each file's)",
            [None, *_VIEW_BY_LABEL],
            key="upload_bulk_view",
        )
        if st.button(
            "Apply to the chosen files",
            disabled=not chosen or (day is None and label is None),
            key="upload_bulk_apply",
        ):
            # Every row keeps what it shows now; the chosen ones take the new values.
            bulk = {
                position: {
                    "date": dates[position],
                    "view": VIEW_LABELS[views[position]] if views[position] else None,
                }
                for position in _table_positions(checked)
            }
            for position in chosen:
                if day is not None:
                    bulk[position]["date"] = day
                if label is not None:
                    bulk[position]["view"] = label
            st.session_state[_BULK_KEY] = bulk
            st.session_state.pop(_table_key(), None)
            st.session_state[_VERSION_KEY] = st.session_state.get(_VERSION_KEY, 0) + 1
            st.rerun()


def _confirmations(checked: list[SeriesFile], views: dict[int, View | None]) -> set[int]:
    """One explicit choice per file whose frontal view the image does not bear out."""
    confirmed = set()
    doubts = view_doubts(checked, views)
    if doubts:
        st.subheader("Confirm these views")
    for position, doubt in doubts.items():
        view = views[position]
        label = VIEW_LABELS[view] if view is not None else ""
        st.warning(f"{checked[position].name}: {doubt}")
        # Keyed by file and view, so a confirmation never carries over to another choice.
        if st.checkbox(
            f"{checked[position].name} is a frontal film ({label}): save it as such, shown as "
            '"view uncertain"',
            key=f"upload_confirm_{position}_{view}",
        ):
            confirmed.add(position)
    return confirmed


def _render_birth_year_offer(
    actor: Actor, checked: list[SeriesFile], dates: dict[int, date | None]
) -> None:
    for position, file in enumerate(checked):
        if file.scan is None:
            continue
        meta = file.scan.metadata
        year = suggested_birth_year(meta.patient_age, meta.patient_birth_year, dates[position])
        if year is None:
            continue
        st.info(
            f"The file {file.name} suggests the patient was born in {year}. Your account has "
            "no birth year yet; with it, the app can tell which findings were learned from "
            "patients of your age."
        )
        if st.button(f"Save {year} as my birth year", key="upload_birth_year"):
            try:
                set_birth_year(get_database(), actor, year)
            except Exception as err:  # shown as one sentence
                show_error(err)
                return
            st.rerun()
        return
    st.caption(
        "Your account has no birth year: each result then says which patients its numbers "
        "were learned from. You can add it on the Account page."
    )


def _render_enhancement(scan: DecodedScan, file_key: str) -> None:
    """Enhancement controls and the image before and after (the settings are kept per file in
    the session for Save, :func:`_chosen_settings`)."""
    prefix = f"{_WIDGET_PREFIX}{file_key}_"
    defaults = EnhanceSettings()
    with st.expander("Adjust the display", expanded=False):
        if st.button("Reset to defaults", key=f"{prefix}reset"):
            for name in list(st.session_state):
                if isinstance(name, str) and name.startswith(prefix):
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
                key=f"{prefix}{name}",
            )
        values["denoise"] = st.selectbox(
            "Noise reduction (slower)",
            DENOISE_METHODS,
            index=DENOISE_METHODS.index(defaults.denoise),
            format_func=_DENOISE_LABELS.__getitem__,
            key=f"{prefix}denoise",
        )
    settings = EnhanceSettings(**values)
    # The last enhancement of this file, kept in this user's session: a table edit reruns the
    # closer look with the same settings.
    kept = st.session_state.get(_enhanced_key(file_key))
    if kept is not None and kept[0] == settings:
        enhanced = kept[1]
    else:
        with st.spinner("Enhancing..."):
            enhanced = enhance(scan.pixels, settings)
        st.session_state[_enhanced_key(file_key)] = (settings, enhanced)
    before, after = st.columns(2)
    before.image(to_uint8(scan.pixels), caption="As uploaded", width="stretch")
    after.image(to_uint8(enhanced), caption="Enhanced for viewing", width="stretch")
    st.caption(
        "Enhancement only changes how the image is shown; it does not change the file or any "
        "result."
    )


def _enhanced_key(file_key: str) -> str:
    return f"enhanced:{file_key}"


def _chosen_settings(file_key: str) -> EnhanceSettings | None:
    """The display settings last shown for a file in the closer look (None if never shown)."""
    kept = st.session_state.get(_enhanced_key(file_key))
    return kept[0] if kept is not None else None


def _scored_key(file_key: str) -> str:
    return f"scored:{file_key}"


def _preview_for(
    file_key: str,
    file: SeriesFile,
    view: View,
    when: date,
    birth_year: int | None,
    classifier: Classifier | None,
    confirmed: bool,
) -> UploadPreview:
    # Kept in this user's session only (never a global cache), and handed to Save.
    key = _scored_key(file_key)
    with st.spinner("Analyzing..."):
        shown = preview(
            file,
            view,
            when,
            birth_year,
            classifier,
            st.session_state.get(key),
            view_confirmed=confirmed,
        )
    st.session_state[key] = shown.scored
    return shown


def _render_results(
    scan: DecodedScan, file_key: str, classifier: Classifier, shown: UploadPreview
) -> None:
    """The reading, the probabilities and the Grad-CAM heatmap (only for a film with numbers)."""
    render_reading(shown.reading, key="upload_result")
    result = shown.scored.result
    if not shown.reading.has_numbers or result is None:
        return
    st.plotly_chart(probability_figure(result.probabilities, result.thresholds), width="stretch")
    show_disclaimer()
    st.subheader("Where the model looked")
    left, right = st.columns([1, 2])
    first = heatmap_finding(result.probabilities, result.thresholds)
    finding = left.selectbox(
        "Finding",
        FINDINGS,
        format_func=FINDING_LABELS.__getitem__,
        key="heatmap_finding",
        index=FINDINGS.index(first),
    )
    opacity = left.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="heatmap_opacity")
    left.caption(
        "Warm colours mark the regions that raised this finding's score most (Grad-CAM). "
        "They show what the model used, not where disease is."
    )
    # Kept in this user's session (never a global cache): a table edit reruns the closer look,
    # and Grad-CAM of the same file and finding gives the same map.
    key = f"heatmap:{file_key}:{finding}"
    if key not in st.session_state:
        with st.spinner("Computing the heatmap..."):
            st.session_state[key] = classifier.heatmap(scan, finding)
    heat = st.session_state[key]
    right.image(
        overlay_heatmap(scan.pixels, heat, opacity),
        caption=FINDING_LABELS[finding],
        width="stretch",
    )


def _usable(checked: list[SeriesFile]) -> list[int]:
    """Positions of the files that could be decoded, the ones the closer look can show."""
    return [i for i, f in enumerate(checked) if f.scan is not None]


def _closer_position(checked: list[SeriesFile]) -> int | None:
    """The file the closer look shows: the one chosen there, else the first usable one."""
    usable = _usable(checked)
    if not usable:
        return None
    chosen = st.session_state.get(_CLOSER_FILE_KEY)
    return chosen if chosen in usable else usable[0]


def _closer_inputs(
    checked: list[SeriesFile],
    dates: dict[int, date | None],
    views: dict[int, View | None],
    confirmed: set[int],
    birth_year: int | None,
) -> tuple[Any, ...] | None:
    """What the closer look's result depends on besides its own widgets."""
    position = _closer_position(checked)
    if position is None:
        return None
    return (position, views[position], dates[position], position in confirmed, birth_year)


@st.fragment
def _render_closer_look(files: Sequence[Any], checked: list[SeriesFile]) -> None:
    """One file at a time: metadata, display settings, result.

    A fragment of its own beside the files section: moving a slider or choosing another file
    reruns the closer look only, and a table edit reruns it only when it changes the shown
    file's date, view or confirmation (the files section then runs the whole page).
    """
    st.session_state[_PAGE_RUN_KEY] = False
    dates, views, confirmed, birth_year = st.session_state[_ROWS_KEY]
    # Read before drawing: a file chosen below has already updated its widget's state.
    st.session_state[_CLOSER_SHOWN_KEY] = _closer_inputs(
        checked, dates, views, confirmed, birth_year
    )
    position = _closer_position(checked)
    if position is None:
        return
    st.subheader("A closer look")
    usable = _usable(checked)
    if len(usable) > 1:
        st.selectbox("File", usable, format_func=lambda i: checked[i].name, key=_CLOSER_FILE_KEY)
    scan = checked[position].scan
    if scan is None:
        return
    with st.expander("About this file", expanded=False):
        rows = scan.metadata.display_rows()
        st.table(pd.DataFrame({"Value": [value for _, value in rows]}, index=[k for k, _ in rows]))
    _render_enhancement(scan, files[position].file_id)
    st.subheader("Result")
    view, when = views[position], dates[position]
    if view is None or when is None:
        st.info("Enter this file's date and view in the table to see its result.")
        return
    classifier = current_classifier(_WITHOUT_MODEL, as_error=True)
    shown = _preview_for(
        files[position].file_id,
        checked[position],
        view,
        when,
        birth_year,
        classifier,
        position in confirmed,
    )
    if classifier is None:
        return
    _render_results(scan, files[position].file_id, classifier, shown)


def _save(
    actor: Actor,
    files: Sequence[Any],
    checked: list[SeriesFile],
    dates: dict[int, date | None],
    views: dict[int, View | None],
    keep_original: bool,
) -> None:
    positions = [i for i, f in enumerate(checked) if f.to_save]
    classifier = current_classifier(_WITHOUT_MODEL, as_error=True)
    progress = st.progress(0.0, text="Starting...")
    try:
        report = import_scans(
            get_database(),
            actor,
            [
                ScanFile(
                    files[i].name,
                    files[i].getvalue,
                    views[i],
                    scan_date=dates[i],
                    enhancement=_chosen_settings(files[i].file_id),
                    # The preview's decoding and result: the file is not read twice.
                    decoded=checked[i].scan,
                    scored=_saved_scored(files[i].file_id),
                )
                for i in positions
            ],
            classifier,
            on_progress=lambda done, total, item: progress.progress(
                done / total, text=f"{done} of {total}: {item.filename}"
            ),
            keep_original=keep_original,
        )
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    st.session_state[_REPORT_KEY] = (_signature(files), report)
    # Checked again on the next run: the saved files now read "already in your record".
    st.session_state.pop(_CHECKED_KEY, None)
    st.rerun()


def _saved_scored(file_key: str) -> Scored | None:
    scored = st.session_state.get(_scored_key(file_key))
    return scored if isinstance(scored, Scored) else None


def _outcome_text(item: ImportedScan) -> str:
    if not item.ok:
        return item.error or ""
    if item.already_saved:
        return " ".join(item.notes)
    # The headline My scans, Timeline and the report show for the same scan.
    words = ["Saved.", item.reading.headline if item.reading is not None else ""]
    return " ".join(word for word in [*words, *item.notes] if word)


def _render_report(report: ImportReport) -> None:
    (st.success if report.all_ok else st.warning)(report.summary)
    # A static table wraps each outcome; a grid cell would cut its sentences.
    st.table(
        pd.DataFrame(
            {
                "File": [i.filename for i in report.items],
                "Outcome": [_outcome_text(i) for i in report.items],
            }
        ),
        hide_index=True,
    )
    st.caption("See the saved scans and their results under My scans and Timeline.")


@st.fragment
def _render_files(actor: Actor, uploads: Sequence[Any], checked: list[SeriesFile]) -> None:
    """Everything about the chosen files, from the table to Save: an edit in the table reruns
    this part only, not the uploaders above it nor the closer look below it, unless the edit
    changes what the closer look shows."""
    dates, views = _current_rows(checked)
    # Refused at once, with their sentence: nothing is asked of a file that cannot be used.
    for unusable in (f for f in checked if f.error is not None):
        st.error(f"{unusable.name} cannot be used: {unusable.error}")
    if any(f.to_save for f in checked):
        _render_view_guide(
            open_guide=any(views[i] is None for i, f in enumerate(checked) if f.to_save)
        )
    if _table_positions(checked):
        st.subheader("Your files")
        _render_bulk(checked, dates, views)
    # The table shows what each row still needs, including the confirmations asked below it.
    table_slot = st.container()
    confirmed = _confirmations(checked, views)
    problems = series_problems(checked, dates, views, date.today(), confirmed)
    if _table_positions(checked):
        with table_slot:
            _render_table(checked, dates, views, problems)
    to_save = sum(f.to_save for f in checked)
    birth_year = birth_year_of(get_database(), actor, actor.user_id)
    if birth_year is None:
        _render_birth_year_offer(actor, checked, dates)
    if problems:
        st.warning(
            f"{plural(len(problems), 'file')} still {'needs' if len(problems) == 1 else 'need'} "
            "a date or a view before the series can be saved."
        )
    elif to_save == 0 and any(f.saved is not None for f in checked):
        st.info("There is nothing new to save: every usable file is already in your record.")
    st.session_state[_ROWS_KEY] = (dates, views, confirmed, birth_year)
    shown = _closer_inputs(checked, dates, views, confirmed, birth_year)
    if not st.session_state.get(_PAGE_RUN_KEY) and shown != st.session_state.get(_CLOSER_SHOWN_KEY):
        st.rerun(scope="app")
    keep_original = st.checkbox(
        "Also keep my original files, to download them later (they take more of your storage)",
        key="upload_keep_original",
    )
    label = f"Save {to_save} scan{'' if to_save == 1 else 's'} to my record" if to_save else "Save"
    if st.button(
        label,
        type="primary",
        disabled=bool(problems) or to_save == 0,
        key="upload_save",
    ):
        _save(actor, uploads, checked, dates, views, keep_original)


actor = require_actor("patient")
st.title("Upload & analyze")
st.caption(
    "Your files are checked and shown here; nothing is kept unless you save them, and "
    "nothing if a file cannot be read."
)
# Shown above the uploader for as long as the saved files stay chosen: the table refreshing
# after a save can run the page again, and a report shown only once would vanish with it.
report_slot = st.container()
with st.expander("A CD or download from the hospital (ZIP file)"):
    render_media_import(actor)
uploads = _render_upload()
last = st.session_state.get(_REPORT_KEY)
if last is not None and last[0] == _signature(uploads):
    with report_slot:
        _render_report(last[1])
else:
    st.session_state.pop(_REPORT_KEY, None)
if not uploads:
    st.stop()


checked = _checked(uploads, actor)
st.session_state[_PAGE_RUN_KEY] = True
_render_files(actor, uploads, checked)
st.divider()
_render_closer_look(uploads, checked)
