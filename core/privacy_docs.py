"""Accountability documents generated from the running settings, as Markdown.

* :func:`signage_notice`: the first-layer notice for the store entrance;
* :func:`second_layer_notice`: the full information (GDPR Art. 13 headings);
* :func:`record_of_processing`: the record of processing activities (Art. 30);
* :func:`dpia_inputs`: the facts a Data Protection Impact Assessment starts from,
  including the measured recognition accuracy when ``bench/accuracy.py`` has
  written its figures file (:data:`ACCURACY_FILE`), else "not measured yet".

They describe what *this* configuration does (mode, retention, backend,
recipients); they are drafts for the controller to complete and have reviewed,
not legal advice.

>>> from core.settings import Settings
>>> "consent-first" in signage_notice(Settings.from_env({"STORELENS_PRIVACY_MODE": "consent-first"}))
True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.consent import CONSENT_FIRST, consent_notice
from core.settings import PROJECT_DIR, Settings

#: Where ``bench/accuracy.py`` may write its measured figures (a JSON object).
ACCURACY_FILE = PROJECT_DIR / "bench" / "accuracy.json"


def _controller(s: Settings) -> str:
    contact = f" ({s.privacy_contact})" if s.privacy_contact else ""
    return f"{s.privacy_controller}{contact}"


def _mode_summary(s: Settings) -> str:
    if s.privacy_mode == CONSENT_FIRST:
        return (
            "consent-first: only people who enrolled with explicit consent are recognised; "
            "everyone else's face is compared in memory with the enrolled customers and discarded "
            "at once, and only an anonymous sighting (time, camera, store area) is kept"
        )
    return (
        "review: faces of people who are not yet customers are kept (photo and face template) "
        f"for up to {s.pending_ttl_days} days for staff to review; consent is recorded when a "
        "person is approved as a customer"
    )


def _where(s: Settings) -> str:
    if s.backend == "aws":
        return (
            f"Amazon Web Services, region {s.aws_region} (Amazon S3, DynamoDB, Rekognition, "
            "Step Functions, SES); AWS acts as processor"
        )
    return "on the store's own computer (StoreLens local backend); no cloud service is used"


def signage_notice(s: Settings) -> str:
    """The first-layer notice (a sign at the entrance), short enough to read walking in."""
    if s.privacy_mode == CONSENT_FIRST:
        what = (
            "Cameras in this store use **face recognition** for customers who **chose to join** "
            "(consent-first mode). If you have not joined, your face is compared with enrolled "
            "customers and **discarded at once**: we keep no image and no face template of you, "
            "only an anonymous count of people per area."
        )
    else:
        what = (
            "Cameras in this store use **face recognition** to recognise returning customers. "
            f"Faces of people who are not customers are kept for up to {s.pending_ttl_days} days "
            "for staff to review, then deleted unless you agree to join."
        )
    return (
        "# Face recognition in use\n\n"
        f"{what}\n\n"
        f"**Who is responsible:** {_controller(s)}\n\n"
        f"**Why:** counting visits, linking visits to purchases and loyalty accounts, store "
        f"analytics.\n\n"
        f"**How long:** customers' photos and templates until {s.customer_retention_days} days "
        "after their last visit, or until they withdraw consent.\n\n"
        "**Your rights:** access, erasure, withdrawal of consent at any time. Full information: "
        f"ask staff or see {s.public_url.rstrip('/')} (second-layer notice).\n\n"
        f"_Mode: {s.privacy_mode}._\n"
    )


def second_layer_notice(s: Settings) -> str:
    """The full information notice, with the enrolment text people consent to."""
    notice = consent_notice(s)
    lines = [
        "# How this store uses face recognition",
        "",
        "## Who is responsible",
        _controller(s),
        "",
        "## What happens",
        f"StoreLens runs in **{_mode_summary(s)}**.",
        "",
        "## What data, and why",
        "- Enrolled customers: name, optional e-mail and loyalty number, photos of the face, face "
        "templates (numerical descriptions of the face), visits (time, camera, store area), "
        "purchases linked through the loyalty number, and the record of their consent.",
        "- Everyone else: "
        + (
            "an anonymous sighting (time, camera, store area), no face."
            if s.privacy_mode == CONSENT_FIRST
            else f"photos and face templates for up to {s.pending_ttl_days} days "
            "while staff decide; deleted if not approved."
        ),
        "- Purpose: recognising returning customers, counting visits and time spent per area, "
        "linking visits to purchases, store analytics.",
        "",
        "## Legal basis",
        "Face templates are biometric data used to identify people (special category data under "
        "GDPR Art. 9). In consent-first mode the basis is the person's explicit consent "
        "(Art. 9(2)(a)), given before any template exists and recorded with the notice version, "
        "time, channel and the staff member who assisted. The controller must confirm the basis "
        "for its own situation.",
        "",
        "## Where the data is and who receives it",
        _where(s) + ". No data is sold or shared with third parties for their own purposes.",
        "",
        "## How long",
        f"- Customers' photos and templates: deleted {s.customer_retention_days} days after the last "
        "visit (automatic retention sweep), or at once on withdrawal of consent.",
        f"- Unapproved faces (review mode only): {s.pending_ttl_days} days at most.",
        "- Anonymous sightings: kept as footfall statistics; they contain no face and no identity.",
        "",
        "## Your rights",
        "Access (a copy of everything we hold about you, found from a photo of you), rectification, "
        "erasure, and withdrawal of consent at any time, which erases your photos, templates, visits "
        "and the link to your purchases. Every e-mail we send you contains a withdrawal link. "
        "You can also complain to your data protection authority.",
        "",
        "## The enrolment notice (what people consent to)",
        f"Version `{notice.version}`:",
        "",
        *[f"> {line}" if line else ">" for line in notice.text.splitlines()],
        "",
    ]
    return "\n".join(lines)


def record_of_processing(s: Settings) -> str:
    """A record of processing activities (GDPR Art. 30(1)) for this deployment."""
    rows = [
        ("Controller", _controller(s)),
        ("Processing", "Recognition of returning customers in a physical store (StoreLens)"),
        ("Mode", s.privacy_mode),
        ("Purposes", "Visit counting, dwell and zone analytics, linking visits to purchases and loyalty"),
        (
            "Categories of data subjects",
            "Enrolled customers; other visitors (anonymous sightings only in consent-first mode; "
            "photos and templates pending review in review mode)",
        ),
        (
            "Categories of personal data",
            "Name, e-mail, loyalty number, face photos, face templates (biometric, Art. 9), "
            "visits, linked purchases, consent records, audit log",
        ),
        ("Recipients", "Store staff with dashboard accounts; " + _where(s)),
        ("Transfers to third countries", "None by StoreLens itself; check the hosting region and processors"),
        (
            "Retention",
            f"Customer photos/templates: {s.customer_retention_days} days after last visit; "
            f"unapproved faces: {s.pending_ttl_days} days; anonymous sightings: statistics, no personal data",
        ),
        (
            "Security measures",
            "Opaque ids (never names) in the face index; signed single-use e-mail links; role-based "
            "dashboard login; audit log of every decision, search and export; erasure removes rows, "
            "templates, photos and mails; encryption at rest on AWS (S3 SSE, DynamoDB SSE)",
        ),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"# Record of processing activities (GDPR Art. 30)\n\n| Item | Entry |\n|---|---|\n{table}\n"


def read_accuracy(path: Path = ACCURACY_FILE) -> dict[str, Any] | None:
    """The figures ``bench/accuracy.py`` wrote (a JSON object), or ``None`` when there are none.

    The file ``bench/accuracy.py`` writes (:func:`accuracy_record`) holds
    ``measured_at``, ``descriptor``, ``match_threshold`` (the similarity the
    rates were taken at) and ``sets``: per pair set, ``same_pairs``,
    ``different_pairs``, ``tar`` and ``far`` at that threshold, and
    ``similarity_for_far0`` (the threshold above which no stranger pair matched).
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data else None


def accuracy_record(
    *,
    measured_at: str,
    descriptor: str,
    match_threshold: float,
    sets: dict[str, dict[str, float]],
    **extra: object,
) -> dict[str, Any]:
    """The JSON object ``bench/accuracy.py`` writes to :data:`ACCURACY_FILE` (read by :func:`dpia_inputs`)."""
    return {
        "measured_at": measured_at,
        "descriptor": descriptor,
        "match_threshold": match_threshold,
        "sets": sets,
        **extra,
    }


def accuracy_section(s: Settings, path: Path = ACCURACY_FILE) -> str:
    """The DPIA's "Measured accuracy" text: the figures, or a plain statement that none exist."""
    figures = read_accuracy(path)
    if figures is None:
        return (
            f"**No measurement exists yet** (no readable `bench/{path.name}`). Recognition accuracy "
            "has not been measured for this installation: run `python bench/accuracy.py` (on footage "
            "from this store's cameras where possible) before relying on recognition, and record the "
            "figures here."
        )
    sets = figures.get("sets")
    if not isinstance(sets, dict) or not sets:
        # An older or hand-written file: show it as it is.
        lines = "\n".join(f"- {k}: {v}" for k, v in sorted(figures.items()))
        return f"Figures in `bench/{path.name}`:\n\n{lines}"
    threshold = figures.get("match_threshold")
    rows = []
    for name, r in sets.items():
        if not isinstance(r, dict):
            continue
        rows.append(
            f"| {name} | {r.get('same_pairs', '?')} | {r.get('different_pairs', '?')} | "
            f"{_pct(r.get('tar'))} | {_pct(r.get('far'), 3)} | {r.get('similarity_for_far0', '?')} |"
        )
    text = [
        f"Measured by `bench/accuracy.py` on {figures.get('measured_at', '?')} "
        f"(descriptor: {figures.get('descriptor', '?')}), at match threshold {threshold}:",
        "",
        "| pair set | same-person pairs | different-person pairs | true match rate | false match rate "
        "| no false match above similarity |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    if isinstance(threshold, int | float) and abs(float(threshold) - s.match_threshold) > 1e-9:
        text += [
            "",
            f"**These figures were measured at a match threshold of {threshold}; this installation "
            f"uses {s.match_threshold}.** Run `bench/accuracy.py` again.",
        ]
    text += [
        "",
        "The walkway clip and the package photos are public test data, not this store's footage: "
        "accuracy in the store depends on its cameras, light and placement.",
    ]
    return "\n".join(text)


def _pct(value: object, digits: int = 1) -> str:
    return f"{100 * float(value):.{digits}f} %" if isinstance(value, int | float) else "?"


def dpia_inputs(s: Settings, accuracy_file: Path = ACCURACY_FILE) -> str:
    """The facts a DPIA starts from: purpose, data, retention, recipients, measured accuracy."""
    accuracy = accuracy_section(s, accuracy_file)
    return "\n".join(
        [
            "# DPIA inputs: face recognition in the store",
            "",
            "## Purpose and necessity",
            "Recognising returning customers to count visits, measure dwell and busy areas, and link "
            "visits to purchases. Footfall alone does not need recognition: anonymous sightings "
            "already count everyone.",
            "",
            "## Processing",
            f"- Mode: {_mode_summary(s)}.",
            f"- Where: {_where(s)}.",
            f"- Decision thresholds (similarity 0..1): match >= {s.match_threshold}, "
            f"review >= {s.review_threshold}.",
            "",
            "## Data",
            "Face photos and templates (biometric, GDPR Art. 9), name, e-mail, loyalty number, visits, "
            "linked purchases, consent records, audit log.",
            "",
            "## Retention",
            f"- Customers' photos and templates: {s.customer_retention_days} days after the last visit.",
            f"- Unapproved faces: {s.pending_ttl_days} days (review mode).",
            "- Anonymous sightings: kept as statistics (no personal data).",
            "",
            "## Recipients",
            f"Store staff with dashboard accounts ({s.approval_recipients} receive review e-mails in "
            f"review mode); {_where(s)}.",
            "",
            "## Measured accuracy",
            accuracy,
            "",
            "## Risks to assess",
            "- Misidentification (a stranger recorded as a customer, or a customer missed): see the "
            "measured accuracy, by lighting and camera placement.",
            "- Function creep (watch-lists, staff monitoring): not a StoreLens purpose.",
            "- People who cannot or do not want to be filmed: signage at the entrance, consent-first mode.",
            "",
        ]
    )


#: Every document, by download file name.
DOCUMENTS: dict[str, tuple[str, Callable[[Settings], str]]] = {
    "signage-notice.md": ("Signage notice (first layer)", signage_notice),
    "privacy-notice.md": ("Privacy notice (second layer)", second_layer_notice),
    "record-of-processing.md": ("Record of processing (Art. 30)", record_of_processing),
    "dpia-inputs.md": ("DPIA inputs", dpia_inputs),
}
