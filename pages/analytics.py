"""Analytics: visitors, visit frequency, spend per customer, busiest zones, dwell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import plotly.express as px
import streamlit as st

from core.analytics import AnalyticsFilter, load_floor_plan
from pages import _charts, _ui

_ui.page_guard()

st.title("Analytics")
today = datetime.now(UTC).date()

left, right = st.columns([1, 2])
picked = left.date_input(
    "Dates (UTC)", (today - timedelta(days=29), today), key="an_dates", max_value=today + timedelta(days=1)
)
cameras = right.multiselect("Cameras", _ui.cameras(), key="an_cameras", placeholder="All cameras")
if not isinstance(picked, tuple) or len(picked) != 2:
    st.info("Pick a start and an end date.")
    st.stop()
f = AnalyticsFilter(picked[0], picked[1], tuple(cameras))

k = _ui.query("kpis", f, today=today)
c = st.columns(6)
c[0].metric("Visitors today", k.visitors_today)
c[1].metric("Visitors this week", k.visitors_this_week)
c[2].metric("Visits in range", f"{k.visits_in_range:,}")
c[3].metric(
    "Returning rate",
    f"{k.returning_rate:.0%}" if k.returning_rate is not None else "-",
    help="Share of the range's visitors who had visited before it began",
)
c[4].metric("New customers", k.new_customers)
c[5].metric(f"Spend ({k.currency})", f"{k.spend_cents / 100:,.0f}")

tab_visits, tab_customers, tab_spend, tab_zones = st.tabs(["Visits", "Customers", "Spend", "Zones"])

with tab_visits:
    a, b = st.columns(2)
    per_day = _ui.query("visits_per_day", f)
    a.plotly_chart(
        px.bar(per_day, x="day", y=["visits", "visitors"], barmode="group", title="Visits per day"),
        key="an_day",
    )
    per_hour = _ui.query("visits_per_hour", f)
    b.plotly_chart(
        px.bar(per_hour, x="hour", y="visits", title="Visits per hour of day (UTC)"), key="an_hour"
    )
    freq = _ui.query("visit_frequency", f)
    st.plotly_chart(
        px.bar(
            freq,
            x="visits_per_customer",
            y="customers",
            title="Visit frequency: customers by number of visits in range",
        ),
        key="an_freq",
    )

with tab_customers:
    a, b = st.columns(2)
    by_visits = _ui.query("top_customers", f, by="visits", limit=10)
    a.subheader("Top customers by visits")
    a.dataframe(
        by_visits.assign(spend=by_visits["spend_cents"] / 100).drop(columns="spend_cents"),
        hide_index=True,
        key="an_top_visits",
    )
    by_spend = _ui.query("top_customers", f, by="spend", limit=10)
    b.subheader("Top customers by spend")
    b.dataframe(
        by_spend.assign(spend=by_spend["spend_cents"] / 100).drop(columns="spend_cents"),
        hide_index=True,
        key="an_top_spend",
    )

with tab_spend:
    period = st.radio("Per", ["week", "month"], horizontal=True, key="an_period")
    spend = _ui.query("spend_per_customer", f, period=period)
    if spend.empty:
        st.info("No purchases linked to customers in this range.")
    else:
        spend = spend.assign(spend=spend["spend_cents"] / 100)
        totals = spend.groupby(["customer_id", "name"], as_index=False)["spend"].sum()
        top = totals.nlargest(10, "spend")["customer_id"]
        chart = spend[spend["customer_id"].isin(top)]
        st.plotly_chart(
            px.bar(chart, x="period", y="spend", color="name", title=f"Spend per {period}, top 10 customers"),
            key="an_spend_chart",
        )
        best = totals.nlargest(200, "spend")["customer_id"]
        table = spend[spend["customer_id"].isin(best)].pivot_table(
            index=["name", "customer_id"], columns="period", values="spend", aggfunc="sum", fill_value=0
        )
        st.caption(
            f"Spend per customer per {period} (top {len(best)} customers; the CSV has all "
            f"{spend['customer_id'].nunique():,})"
        )
        st.dataframe(table, key="an_spend_table")
        st.download_button(
            "Download CSV",
            spend.drop(columns="spend").to_csv(index=False).encode(),
            file_name=f"storelens-spend-per-{period}-{f.start}-{f.end}.csv",
            mime="text/csv",
            key="an_spend_csv",
            icon=":material/download:",
        )

with tab_zones:
    density = _ui.query("zone_density", f)
    plan = load_floor_plan()
    if density.empty:
        st.info("No visits in this range.")
    elif plan is not None and plan.zones:
        st.plotly_chart(_charts.floor_plan_heatmap(plan, density), key="an_floor")
    else:
        st.plotly_chart(_charts.zone_grid(density), key="an_grid")
    dwell = _ui.query("dwell_per_zone", f)
    a, b = st.columns(2)
    a.plotly_chart(
        px.bar(dwell, x="zone", y="avg_dwell_s", title="Average dwell per zone (s)"), key="an_dwell"
    )
    b.dataframe(density, hide_index=True, key="an_density")
