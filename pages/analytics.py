"""Analytics: visitors and store visits, when they come, who comes back, spend, zones."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core.analytics import AnalyticsFilter, Kpis, load_floor_plan
from pages import _charts, _ui
from pages._anonymous import render_everyone

_ui.page_guard()

HELP = {
    "visitors": "Distinct customers with at least one store visit that began in the range.",
    "store_visits": (
        "Entry-to-exit stays. A customer's sightings at any camera belong to one store visit while "
        "each comes within 30 minutes of the last time they were seen."
    ),
    "returning": "Share of visitors who had an earlier store visit (before the range, or earlier in it).",
    "new": "Visitors whose first store visit ever falls in the range.",
    "days_between": "Average gap between one store visit and the same customer's next one, within the range.",
    "linked": "Sales in the range linked to a recognised customer (loyalty card or checkout camera).",
    "unattributed": "Sales in the range not linked to any customer (no loyalty card, nobody recognised).",
    "conversion": "Share of visitors with a linked purchase in the range.",
}

st.title("Analytics")
tz = _ui.tz()
today = _ui.today()

left, right = st.columns([1, 2])
picked = left.date_input(
    f"Dates ({tz})", (today - timedelta(days=27), today), key="an_dates", max_value=today + timedelta(days=1)
)
cameras = right.multiselect("Cameras", _ui.cameras(), key="an_cameras", placeholder="All cameras")
if not isinstance(picked, tuple) or len(picked) != 2:
    st.info("Pick a start and an end date.")
    st.stop()
f = AnalyticsFilter(picked[0], picked[1], tuple(cameras), tz)
prev = f.previous()
k: Kpis = _ui.query("kpis", f)
p: Kpis = _ui.query("kpis", prev)
st.caption(
    f"{f.start:%d %b %Y} - {f.end:%d %b %Y} ({f.days} days, times in {tz}); changes are against "
    f"{prev.start:%d %b} - {prev.end:%d %b %Y}."
)


def delta(now: float | None, before: float | None, pct: bool = False, digits: int = 1) -> str | None:
    if now is None or before is None:
        return None
    d = now - before
    if pct:
        return f"{d * 100:+.0f} pts"
    return f"{d:+,.{digits}f}".removesuffix(".0")


def pct(x: float | None) -> str:
    return f"{x:.0%}" if x is not None else "-"


money = k.currency
row1 = st.columns(4)
row1[0].metric("Visitors", f"{k.visitors:,}", delta(k.visitors, p.visitors), help=HELP["visitors"])
row1[1].metric(
    "Store visits", f"{k.store_visits:,}", delta(k.store_visits, p.store_visits), help=HELP["store_visits"]
)
row1[2].metric(
    "Returning rate",
    pct(k.returning_rate),
    delta(k.returning_rate, p.returning_rate, pct=True),
    help=HELP["returning"],
)
row1[3].metric("New customers", k.new_customers, delta(k.new_customers, p.new_customers), help=HELP["new"])
row2 = st.columns(4)
row2[0].metric(
    "Days between visits",
    f"{k.avg_days_between_visits:.1f}" if k.avg_days_between_visits is not None else "-",
    delta(k.avg_days_between_visits, p.avg_days_between_visits),
    delta_color="inverse",
    help=HELP["days_between"],
)
row2[1].metric(
    f"Spend, linked ({money})",
    f"{k.spend_linked_cents / 100:,.0f}",
    delta(k.spend_linked_cents / 100, p.spend_linked_cents / 100, digits=0),
    help=HELP["linked"],
)
row2[2].metric(
    f"Spend, unattributed ({money})",
    f"{k.spend_unattributed_cents / 100:,.0f}",
    delta(k.spend_unattributed_cents / 100, p.spend_unattributed_cents / 100, digits=0),
    delta_color="off",
    help=HELP["unattributed"],
)
row2[3].metric(
    "Conversion", pct(k.conversion), delta(k.conversion, p.conversion, pct=True), help=HELP["conversion"]
)

# Known customers and anonymous visitors together (consent-first mode, anonymous edges).
render_everyone(f, k)

EMPTY = "No store visits in this range{}. Pick other dates or cameras."
empty_note = EMPTY.format(" for these cameras" if cameras else "")

tab_visits, tab_customers, tab_spend, tab_zones = st.tabs(["Visits", "Customers", "Spend", "Zones"])

with tab_visits:
    if k.store_visits == 0:
        st.info(empty_note)
    else:
        per_day = _ui.query("visits_per_day", f)
        st.plotly_chart(_charts.visits_per_day(per_day), key="an_day")
        a, b = st.columns(2)
        a.plotly_chart(_charts.visits_per_hour(_ui.query("visits_per_hour", f), tz), key="an_hour")
        b.plotly_chart(_charts.visit_frequency(_ui.query("visit_frequency", f)), key="an_freq")
        st.plotly_chart(_charts.weekday_hour(_ui.query("weekday_hour", f), tz), key="an_heat")
        with st.expander("Per-day table"):
            _ui.table(
                per_day.rename(
                    columns={"day": "Day", "store_visits": "Store visits", "visitors": "Visitors"}
                ),
                key="an_day_table",
                filename=f"visits-per-day-{f.start}-{f.end}",
                hide_index=True,
            )


def _people(df, key: str, name: str) -> None:
    shown = df.assign(spend=df["spend_cents"] / 100).rename(
        columns={"name": "Customer", "store_visits": "Store visits", "spend": f"Spend ({money})"}
    )[["Customer", "Store visits", f"Spend ({money})"]]
    _ui.table(shown, key=key, filename=f"{name}-{f.start}-{f.end}", hide_index=True)


with tab_customers:
    a, b = st.columns(2)
    with a:
        st.subheader("Most store visits")
        by_visits = _ui.query("top_customers", f, by="visits", limit=10)
        if by_visits.empty:
            st.info(empty_note)
        else:
            _people(by_visits, "an_top_visits", "top-customers-by-visits")
    with b:
        st.subheader("Most spend")
        by_spend = _ui.query("top_customers", f, by="spend", limit=10)
        if by_spend.empty:
            st.info("No purchases linked to customers in this range.")
        else:
            _people(by_spend, "an_top_spend", "top-customers-by-spend")

with tab_spend:
    period = st.radio("Per", ["week", "month"], horizontal=True, key="an_period", format_func=str.capitalize)
    spend = _ui.query("spend_per_customer", f, period=period)
    if spend.empty:
        st.info("No purchases linked to customers in this range.")
    else:
        spend = spend.assign(spend=spend["spend_cents"] / 100)
        totals = spend.groupby(["customer_id", "name"], as_index=False)["spend"].sum()
        top = totals.nlargest(10, "spend")["customer_id"]
        chart = spend[spend["customer_id"].isin(top)]
        st.plotly_chart(_charts.spend_per_period(chart, period, money), key="an_spend_chart")
        best = totals.nlargest(200, "spend")["customer_id"]
        table = (
            spend[spend["customer_id"].isin(best)]
            .pivot_table(index="name", columns="period", values="spend", aggfunc="sum", fill_value=0)
            .rename_axis(index="Customer", columns="Week starting" if period == "week" else "Month")
        )
        st.caption(
            f"Spend ({money}) per customer per {period}, the top {len(best)} customers; the full CSV has "
            f"all {spend['customer_id'].nunique():,}."
        )
        st.dataframe(table, key="an_spend_table")
        st.download_button(
            "Download CSV (all customers)",
            lambda: spend.drop(columns="spend").to_csv(index=False).encode(),  # made when clicked
            file_name=f"storelens-spend-per-{period}-{f.start}-{f.end}.csv",
            mime="text/csv",
            key="an_spend_csv",
            icon=":material/download:",
        )

with tab_zones:
    density = _ui.query("zone_density", f)
    if density.empty:
        st.info(empty_note)
    else:
        st.caption(
            "A zone visit is one customer's time at one camera's zone; a store visit usually has several."
        )
        plan = load_floor_plan()
        if plan is not None and plan.zones:
            st.plotly_chart(_charts.floor_plan_heatmap(plan, density), key="an_floor")
        else:
            st.plotly_chart(_charts.zone_grid(density), key="an_grid")
        dwell = _ui.query("dwell_per_zone", f)
        a, b = st.columns(2)
        a.plotly_chart(_charts.dwell_per_zone(dwell), key="an_dwell")
        with b:
            _ui.table(
                dwell.assign(
                    avg_min=(dwell["avg_dwell_s"] / 60).round(1), max_min=(dwell["max_dwell_s"] / 60).round(1)
                ).rename(
                    columns={
                        "zone": "Zone",
                        "zone_visits": "Zone visits",
                        "avg_min": "Average (min)",
                        "max_min": "Longest (min)",
                    }
                )[["Zone", "Zone visits", "Average (min)", "Longest (min)"]],
                key="an_dwell_table",
                filename=f"zones-{f.start}-{f.end}",
                hide_index=True,
            )
            _ui.table(
                density.rename(columns={"camera_id": "Camera", "zone": "Zone", "zone_visits": "Zone visits"}),
                key="an_density",
                filename=f"zone-visits-per-camera-{f.start}-{f.end}",
                hide_index=True,
            )
