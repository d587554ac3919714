"""Report page: a plain-language report of one scan, with PDF and JSON downloads."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.annotations import mark_labels
from core.localtime import format_local
from core.report import Report, report_to_json
from core.report_pdf import report_to_pdf
from core.timeline import format_percent, timeline_figure, timeline_frame
from pages.ui import (
    browser_zone,
    current_classifier,
    get_database,
    require_actor,
    show_disclaimer,
    show_error,
    viewing,
)
from pages.widgets import heatmap_picker, own_record, scan_picker
from services.records import PatientRecord
from services.report import build_scan_report


def _render(report: Report, record: PatientRecord) -> None:
    """Show a report's sections and its download buttons (the disclaimer is above, once)."""
    who = f" for {report.patient_name}" if report.patient_name else ""
    st.caption(
        f"Report{who} on the scan of {report.scan_words}, made "
        f"{format_local(report.generated_at, report.zone)}."
    )
    st.markdown(f"**{report.headline}**")
    st.subheader("Summary")
    for paragraph in report.summary:
        st.write(paragraph)
    if report.findings:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Finding": line.label,
                        "Model score": format_percent(line.probability),
                        "Level for a closer look": format_percent(line.threshold),
                        "Reached": "yes" if line.above_threshold else "no",
                        "For this patient": "see below" if line.note else "",
                    }
                    for line in report.findings
                ]
            ),
            hide_index=True,
        )
        # Whole sentences under the table: a table cell would cut them.
        for line in report.findings:
            if line.note:
                st.caption(f"{line.label}: {line.note}")
    for reason in report.red_flags:
        st.warning(reason)
    if report.changes:
        st.subheader("Change since the previous scan")
        for line in report.changes:
            st.write(f"- {line}")
    if report.image is not None:
        st.image(report.image, width=640, caption=report.image_note)
    _render_timeline(record, report.scan_id)
    if report.notes:
        _render_notes(report)
    st.subheader("What the model cannot tell")
    for line in report.limitations:
        st.write(f"- {line}")
    st.subheader("Questions you could ask your clinician")
    for question in report.questions:
        st.write(f"- {question}")
    with st.expander("Glossary"):
        for label, text in report.glossary.items():
            st.write(f"**{label}**: {text}")
    if report.model_words is not None:
        with st.expander("Details"):
            st.write(f"Scores from the model {report.model_words}.")
    stem = f"xray-report-{report.scan_date.isoformat()}-{report.scan_id}"
    left, right = st.columns(2)
    # Laying out the PDF takes most of a second: build it only when it is asked for.
    left.download_button(
        "Download PDF",
        lambda: report_to_pdf(report),
        file_name=f"{stem}.pdf",
        mime="application/pdf",
    )
    right.download_button(
        "Download JSON", report_to_json(report), file_name=f"{stem}.json", mime="application/json"
    )


def _render_notes(report: Report) -> None:
    st.subheader("Notes from your clinicians")
    marks = mark_labels([note.annotation for note in report.notes])
    for note, mark in zip(report.notes, marks, strict=True):
        where = f" ({mark} on the image)" if mark else ""
        when = format_local(note.created_at, report.zone)
        st.markdown(f"**{note.author}**, {when}{where}:")
        st.text(note.text)  # plain text: a note's links or images must never render


def _render_timeline(record: PatientRecord, scan_id: int) -> None:
    # Exactly what the Timeline plots by default, up to this scan (as the PDF does).
    reading = record.reading(scan_id)
    upto = [r for r in record.readings if (r.scan_date, r.scan_id) <= (reading.scan_date, scan_id)]
    frame = timeline_frame(upto)
    if frame.empty:
        return
    st.subheader("Your scores over time")
    st.plotly_chart(timeline_figure(frame, upto), key="report_timeline")


actor = require_actor("patient")
db = get_database()
st.title("Scan report")
show_disclaimer()
classifier = current_classifier("Stored results are still shown.")
record = own_record(actor, classifier)
if not record.scans:
    st.info("There are no scans yet. Upload one on the Upload page first.")
    st.stop()
# Opens on the latest film with numbers: a side view never has any.
scan_id = scan_picker("Scan", record, scan_id=record.report_default)
heat_finding = None
if classifier is not None and record.reading(scan_id).has_numbers:
    heat_finding = heatmap_picker("Heatmap on the image", none_label="(none)")
try:
    with st.spinner("Computing the heatmap..." if heat_finding else "Preparing the report..."):
        report = build_scan_report(
            db,
            actor,
            record,
            scan_id,
            classifier,
            heatmap_finding=heat_finding,
            zone=browser_zone(),
            viewing=viewing(),
        )
except Exception as err:  # shown as one sentence
    show_error(err)
    st.stop()
_render(report, record)
