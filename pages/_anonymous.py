"""Analytics: everyone counted, known customers and anonymous visitors side by side.

Rendered by ``pages/analytics.py`` under its KPIs (one call). It merges the known
customers' figures the page already queries (``visits_per_day``,
``visits_per_hour``, ``dwell_per_zone``) with :func:`core.anonymous_analytics.anonymous_counts`
at this layer only, so the analytics engines stay as they are.
"""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from core.analytics import AnalyticsFilter, Kpis
from core.anonymous_analytics import ANONYMOUS, KNOWN, anonymous_counts, footfall_mix
from core.consent import CONSENT_FIRST
from pages import _ui

COLORS = {KNOWN: "#1f77b4", ANONYMOUS: "#b0b7c3"}
HELP = (
    "Anonymous visitors are people the cameras saw who are not consented customers: only where and "
    "when, no face is kept. Each is one camera track (someone passing two cameras counts twice). "
    "Known customers are counted in store visits."
)


def render_everyone(f: AnalyticsFilter, k: Kpis) -> None:
    """The "everyone counted" metrics and stacked charts (nothing when nobody anonymous was seen
    and the store is not in consent-first mode)."""
    services = _ui.services()
    anon = anonymous_counts(services.repos, f)
    if anon.people == 0 and services.settings.privacy_mode != CONSENT_FIRST:
        return
    st.subheader("Everyone counted")
    a, b, c, d = st.columns(4)
    a.metric("People counted", f"{k.store_visits + anon.people:,}", help=HELP)
    b.metric("Known customers (store visits)", f"{k.store_visits:,}")
    c.metric("Anonymous visitors", f"{anon.people:,}", help=HELP)
    d.metric("Anonymous dwell (min, mean)", f"{anon.avg_dwell_s / 60:.1f}" if anon.people else "-", help=HELP)
    if k.store_visits + anon.people == 0:
        st.info("Nobody was counted in this range.")
        return
    labels = {"people": "People", "kind": ""}
    per_day = footfall_mix(_ui.query("visits_per_day", f), anon.per_day, "day", "store_visits")
    fig = px.bar(
        per_day, x="day", y="people", color="kind", color_discrete_map=COLORS, labels=labels,
        title="People per day: known customers and anonymous visitors",
    )  # fmt: skip
    st.plotly_chart(fig, key="an_everyone_day")
    left, right = st.columns(2)
    per_hour = footfall_mix(_ui.query("visits_per_hour", f), anon.per_hour, "hour", "store_visits")
    fig = px.bar(
        per_hour, x="hour", y="people", color="kind", color_discrete_map=COLORS,
        labels={**labels, "hour": f"Hour ({f.tz})"}, title="By hour of arrival",
    )  # fmt: skip
    left.plotly_chart(fig, key="an_everyone_hour")
    dwell = _ui.query("dwell_per_zone", f)
    per_zone = footfall_mix(dwell, anon.per_zone, "zone", "zone_visits")
    fig = px.bar(
        per_zone, x="zone", y="people", color="kind", color_discrete_map=COLORS, labels=labels,
        title="By zone (known customers: zone visits)",
    )  # fmt: skip
    right.plotly_chart(fig, key="an_everyone_zone")
    table = anon.per_zone.assign(avg_min=(anon.per_zone["avg_dwell_s"] / 60).round(1)).rename(
        columns={"zone": "Zone", "people": "Anonymous visitors", "avg_min": "Average dwell (min)"}
    )[["Zone", "Anonymous visitors", "Average dwell (min)"]]
    _ui.table(
        table, key="an_everyone_zones", filename=f"anonymous-visitors-{f.start}-{f.end}", hide_index=True
    )
