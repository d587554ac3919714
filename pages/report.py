"""Report page: a plain-language report of one scan, with PDF and JSON downloads."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.enhance import EnhanceSettings, enhance
from core.findings import FINDING_LABELS, FINDINGS
from core.report import Report, ReportNote, build_report, report_to_json, report_to_pdf
from core.rescore import restore_scan
from core.timeline import format_percent, format_version, red_flags, sort_scans
from models.inference import Classifier
from pages.timeline import current_classifier, scan_label
from pages.ui import get_database, require_actor, show_disclaimer, show_error
from storage import records
from storage.db import Actor, Database
from storage.policy import AccessDenied
from storage.records import ScanSummary


def _stored_display(enhancement: dict) -> EnhanceSettings:
    # Settings saved by another app version may no longer validate; the defaults still show the image.
    try:
        return EnhanceSettings.from_dict(enhancement)
    except ValueError:
        return EnhanceSettings()


def _build(
    db: Database, actor: Actor, scans: list[ScanSummary], scan_id: int, classifier: Classifier | None, heat_finding: str | None
) -> Report:
    position = [scan.id for scan in scans].index(scan_id)
    scan = scans[position]
    previous = scans[position - 1] if position > 0 else None
    version = classifier.info.version if classifier is not None else None
    thresholds = classifier.info.thresholds if classifier is not None else None
    record = records.load_scan(db, actor, scan_id)
    image = enhance(record.pixels, _stored_display(record.enhancement))
    heatmap = None
    if classifier is not None and heat_finding is not None:
        with st.spinner("Computing the heatmap..."):
            heatmap = classifier.heatmap(restore_scan(record.pixels, record.metadata), heat_finding)
    notes = [
        ReportNote(note.author_username, note.created_at, note.text, note.annotation)
        for note in records.list_notes(db, actor, scan_id)
    ]
    return build_report(
        scan,
        current_version=version,
        thresholds=thresholds,
        previous=previous,
        red_flag_reasons=red_flags(scans, thresholds, current_version=version).get(scan_id, []),
        image=image,
        heatmap=heatmap,
        notes=notes,
    )


def render_report(report: Report) -> None:
    """Show a report's sections and its download buttons.

    Args:
        report: Output of ``core.report.build_report``.
    """
    st.warning(report.disclaimer)
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
                    }
                    for line in report.findings
                ]
            ),
            hide_index=True,
        )
        st.caption(f"Model {report.model_name} {format_version(report.model_version or '')}.")
    for reason in report.red_flags:
        st.warning(reason)
    if report.changes:
        st.subheader("Change since the previous scan")
        for line in report.changes:
            st.write(f"- {line}")
    if report.image_png is not None:
        st.image(report.image_png, caption="Coloured areas: where the model looked most. Green marks: clinicians' notes.")
    if report.notes:
        st.subheader("Notes from your clinicians")
        marks = 0
        for note in report.notes:
            marks += bool(note.annotation)
            mark = f" (mark {marks} on the image)" if note.annotation else ""
            st.write(f"**{note.author}**, {note.created_at:%Y-%m-%d}{mark}: {note.text}")
    st.subheader("What the model cannot tell")
    for line in report.limitations:
        st.write(f"- {line}")
    st.subheader("Questions you could ask your clinician")
    for question in report.questions:
        st.write(f"- {question}")
    with st.expander("Glossary"):
        for label, text in report.glossary.items():
            st.write(f"**{label}**: {text}")
    stem = f"xray-report-{report.scan_date.isoformat()}-{report.scan_id}"
    left, right = st.columns(2)
    left.download_button("Download PDF", report_to_pdf(report), file_name=f"{stem}.pdf", mime="application/pdf")
    right.download_button("Download JSON", report_to_json(report), file_name=f"{stem}.json", mime="application/json")


def main() -> None:
    """The patient's report of one of their scans."""
    actor = require_actor("patient")
    db = get_database()
    st.title("Scan report")
    show_disclaimer()
    try:
        scans = sort_scans(records.list_scans(db, actor, actor.user_id))
    except AccessDenied as err:
        show_error(err)
        return
    if not scans:
        st.info("There are no scans yet. Upload one on the Upload page first.")
        return
    by_id = {scan.id: scan for scan in scans}
    ids = list(by_id)
    scan_id = st.selectbox("Scan", ids, index=len(ids) - 1, format_func=lambda i: scan_label(by_id[i]))
    classifier = current_classifier()
    heat_finding = None
    if classifier is not None:
        heat_finding = st.selectbox(
            "Heatmap on the image", [None, *FINDINGS],
            format_func=lambda f: "(none)" if f is None else FINDING_LABELS[f],
        )
    try:
        report = _build(db, actor, scans, scan_id, classifier, heat_finding)
    except (AccessDenied, records.RecordNotFound) as err:
        show_error(err)
        return
    render_report(report)


if __name__ == "__main__":
    main()
