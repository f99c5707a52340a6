"""Plotly figures for the dashboard (presentation only; the numbers come from core).

Every figure has human axis titles and hover labels; pages show an empty-state
message instead of calling these with no data.
"""

from __future__ import annotations

import functools

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from core.analytics import WEEKDAYS, FloorPlan, ZoneShape

SCALE = "YlOrRd"
PAD = 40  # floor-plan pixels around the plan, so edge labels are not cut off


def _rgba(rgb: str, alpha: float) -> str:
    return rgb.replace("rgb(", "rgba(").replace(")", f", {alpha})")


def _layout(fig: go.Figure, title: str, height: int = 340) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"},
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={
            "title": None,
            "orientation": "h",
            "y": 1.02,
            "yanchor": "bottom",
            "x": 1,
            "xanchor": "right",
        },
    )
    return fig


def visits_per_day(per_day: pd.DataFrame) -> go.Figure:
    """Store visits (bars) and visitors (line) per day."""
    days = pd.to_datetime(per_day["day"])
    fig = go.Figure()
    fig.add_bar(x=days, y=per_day["store_visits"], name="Store visits", marker_color="#4c78a8")
    fig.add_scatter(
        x=days, y=per_day["visitors"], name="Visitors", mode="lines+markers", line_color="#f58518"
    )
    fig.update_xaxes(title="Day", tickformat="%a %d %b")
    fig.update_yaxes(title="Count", rangemode="tozero")
    fig.update_traces(hovertemplate="%{x|%a %d %b %Y}: %{y:,}")
    return _layout(fig, "Store visits and visitors per day")


def _bars(x: list[object], y: list[object], x_title: str, y_title: str, hover: str) -> go.Figure:
    """One bar trace (graph_objects: plotly.express costs ~50 ms a figure in data-frame handling)."""
    fig = go.Figure(go.Bar(x=x, y=y, marker_color="#4c78a8", hovertemplate=hover + "<extra></extra>"))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title)
    return fig


def visits_per_hour(per_hour: pd.DataFrame, tz: str) -> go.Figure:
    fig = _bars(
        per_hour["hour"].tolist(),
        per_hour["store_visits"].tolist(),
        f"Hour of entry ({tz})",
        "Store visits",
        "%{x}:00: %{y:,} store visits",
    )
    fig.update_xaxes(tickmode="linear", dtick=2, range=[-0.5, 23.5])
    return _layout(fig, "Store visits by hour of entry")


def weekday_hour(grid: pd.DataFrame, tz: str) -> go.Figure:
    """Day-of-week x hour heat map of store visits."""
    pivot = grid.pivot_table(index="weekday", columns="hour", values="store_visits", aggfunc="sum")
    pivot = pivot.reindex(index=range(7), columns=range(24), fill_value=0)
    fig = go.Figure(
        go.Heatmap(
            z=pivot.values,
            x=[f"{h:02d}:00" for h in range(24)],
            y=list(WEEKDAYS),
            colorscale="Blues",
            colorbar={"title": "Store visits"},
            hovertemplate="%{y} %{x}: %{z:,} store visits<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_xaxes(title=f"Hour of entry ({tz})")
    return _layout(fig, "When customers come: weekday x hour", height=320)


def visit_frequency(freq: pd.DataFrame) -> go.Figure:
    fig = _bars(
        [str(n) for n in freq["store_visits"]],
        freq["visitors"].tolist(),
        "Store visits in the range",
        "Visitors",
        "%{x} store visits: %{y:,} visitors",
    )
    fig.update_xaxes(type="category")
    return _layout(fig, "How often visitors came")


def spend_per_period(chart: pd.DataFrame, period: str, currency: str) -> go.Figure:
    """Stacked spend per week/month of the top customers; periods are categories, not dates."""
    label = "Week starting" if period == "week" else "Month"
    table = chart.pivot_table(index="period", columns="name", values="spend", aggfunc="sum").sort_index()
    periods = [str(p) for p in table.index]
    fig = go.Figure()
    for name in sorted(table.columns, key=lambda n: -float(table[n].sum())):
        fig.add_bar(
            x=periods,
            y=table[name].tolist(),
            name=str(name),
            hovertemplate=f"{name}<br>{label} %{{x}}: %{{y:,.2f}} {currency}<extra></extra>",
        )
    fig.update_layout(barmode="stack", legend_title_text="Customer")
    fig.update_xaxes(title=label, type="category", categoryorder="category ascending")
    fig.update_yaxes(title=f"Spend ({currency})")
    fig = _layout(fig, f"Spend per {period}, top 10 customers", height=380)
    # Ten names do not fit in one row above the plot (they ran over the title): list them at the side.
    fig.update_layout(legend={"orientation": "v", "y": 1, "yanchor": "top", "x": 1.01, "xanchor": "left"})
    return fig


def dwell_per_zone(dwell: pd.DataFrame) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=dwell["zone"].tolist(),
            y=(dwell["avg_dwell_s"] / 60).tolist(),
            customdata=dwell["zone_visits"].tolist(),
            marker_color="#4c78a8",
            hovertemplate="%{x}: %{y:.1f} min on average, %{customdata:,} zone visits<extra></extra>",
        )
    )
    fig.update_xaxes(title="Zone")
    fig.update_yaxes(title="Average time in zone (min)")
    return _layout(fig, "Average time spent per zone")


def _inside(point: tuple[float, float], polygon: tuple[tuple[float, float], ...]) -> bool:
    x, y = point
    inside = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def label_point(zone: ZoneShape) -> tuple[float, float]:
    """A point well inside the zone for its label (an L-shaped zone's vertex mean can lie outside)."""
    return _label_point(zone.polygon, zone.centroid)


@functools.lru_cache(maxsize=256)
def _label_point(
    polygon: tuple[tuple[float, float], ...], centroid: tuple[float, float]
) -> tuple[float, float]:
    # A grid search in pure Python (~0.1 s a zone): once per shape, not per page run.
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    best, best_room = centroid, -1.0
    steps = 24
    for i in range(1, steps):
        for j in range(1, steps):
            p = (min(xs) + (max(xs) - min(xs)) * i / steps, min(ys) + (max(ys) - min(ys)) * j / steps)
            if not _inside(p, polygon):
                continue
            # Room: distance to the nearest edge point sampled along the box axes.
            room = min(_reach(p, polygon, dx, dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)))
            if room > best_room:
                best, best_room = p, room
    return best


def _reach(p: tuple[float, float], polygon: tuple[tuple[float, float], ...], dx: int, dy: int) -> float:
    step, d = 4.0, 0.0
    while _inside((p[0] + dx * (d + step), p[1] + dy * (d + step)), polygon) and d < 2000:
        d += step
    return d


def floor_plan_heatmap(plan: FloorPlan, density: pd.DataFrame) -> go.Figure:
    """Zones drawn from their polygons, filled by zone visits, each labelled once; cameras marked.

    The plan image is not drawn underneath: it carries its own labels, which
    would appear twice.
    """
    per_zone = density.groupby("zone")["zone_visits"].sum() if not density.empty else pd.Series(dtype=float)
    top = float(per_zone.max()) if len(per_zone) else 0.0
    fig = go.Figure()
    for zone in plan.zones:
        n = int(per_zone.get(zone.zone_id, 0))
        level = n / top if top else 0.0
        color = sample_colorscale(SCALE, [level])[0]
        xs = [p[0] for p in zone.polygon] + [zone.polygon[0][0]]
        ys = [p[1] for p in zone.polygon] + [zone.polygon[0][1]]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                fill="toself",
                mode="lines",
                fillcolor=_rgba(color, 0.25 + 0.65 * level),
                line={"color": "#444", "width": 1.5},
                name=zone.name,
                hoveron="fills",
                hoverinfo="text",
                text=f"{zone.name}: {n:,} zone visits",
                showlegend=False,
            )
        )
        cx, cy = label_point(zone)
        fig.add_annotation(
            x=cx,
            y=cy,
            text=f"<b>{zone.name}</b><br>{n:,} zone visits",
            showarrow=False,
            font={"size": 13, "color": "#111"},
            bgcolor="rgba(255,255,255,0.75)",
            borderpad=3,
        )
    if plan.cameras:
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in plan.cameras.values()],
                y=[p[1] for p in plan.cameras.values()],
                mode="markers",
                marker={
                    "symbol": "circle",
                    "size": 10,
                    "color": "#0b8457",
                    "line": {"color": "white", "width": 1},
                },
                text=[f"camera {c}" for c in plan.cameras],
                hoverinfo="text",
                showlegend=False,
            )
        )
    # An invisible trace carries the colour bar.
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker={
                "colorscale": SCALE,
                "cmin": 0,
                "cmax": max(top, 1),
                "color": [0],
                "showscale": True,
                "colorbar": {"title": "Zone visits"},
            },
        )
    )
    fig.update_xaxes(range=[-PAD, plan.width + PAD], visible=False, constrain="domain")
    fig.update_yaxes(range=[plan.height + PAD, -PAD], visible=False, scaleanchor="x")
    fig.update_layout(
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        height=460,
        title={"text": "Zone visits on the floor plan (dots: cameras)", "x": 0},
        plot_bgcolor="white",
    )
    return fig


def zone_grid(density: pd.DataFrame) -> go.Figure:
    """Camera x zone heat grid, used when there is no floor plan."""
    pivot = density.pivot_table(
        index="camera_id", columns="zone", values="zone_visits", aggfunc="sum", fill_value=0
    )
    fig = go.Figure(
        go.Heatmap(
            z=pivot.values,
            x=list(pivot.columns),
            y=list(pivot.index),
            colorscale=SCALE,
            colorbar={"title": "Zone visits"},
            hovertemplate="%{y} / %{x}: %{z:,} zone visits<extra></extra>",
        )
    )
    fig.update_xaxes(title="Zone")
    fig.update_yaxes(title="Camera")
    return _layout(fig, "Zone visits per camera and zone", height=360)
