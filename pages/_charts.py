"""Plotly figures for the Analytics page (presentation only; the numbers come from core)."""

from __future__ import annotations

import base64

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from core.analytics import FloorPlan

SCALE = "YlOrRd"


def _rgba(rgb: str, alpha: float) -> str:
    return rgb.replace("rgb(", "rgba(").replace(")", f", {alpha})")


def floor_plan_heatmap(plan: FloorPlan, density: pd.DataFrame, value: str = "visits") -> go.Figure:
    """Zones of the floor plan filled by ``value`` (visits per zone), cameras marked."""
    per_zone = density.groupby("zone")[value].sum() if not density.empty else pd.Series(dtype=float)
    top = float(per_zone.max()) if len(per_zone) else 0.0
    fig = go.Figure()
    for zone in plan.zones:
        n = float(per_zone.get(zone.zone_id, 0))
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
                fillcolor=_rgba(color, 0.15 + 0.6 * level),
                line={"color": "#555", "width": 1},
                name=zone.name,
                hoveron="fills",
                hoverinfo="text",
                text=f"{zone.name}: {int(n)} {value}",
                showlegend=False,
            )
        )
        cx, cy = zone.centroid
        fig.add_annotation(
            x=cx,
            y=cy,
            text=f"<b>{zone.name}</b><br>{int(n):,}",
            showarrow=False,
            font={"size": 13, "color": "#111"},
            bgcolor="rgba(255,255,255,0.6)",
        )
    if plan.cameras:
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in plan.cameras.values()],
                y=[p[1] for p in plan.cameras.values()],
                mode="markers+text",
                text=list(plan.cameras),
                textposition="top center",
                marker={"symbol": "triangle-up", "size": 12, "color": "#0b8457"},
                name="cameras",
                showlegend=False,
                hoverinfo="text",
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
                "colorbar": {"title": value},
            },
        )
    )
    if plan.image is not None:
        encoded = base64.b64encode(plan.image.read_bytes()).decode("ascii")
        fig.add_layout_image(
            source=f"data:image/png;base64,{encoded}",
            x=0,
            y=0,
            xref="x",
            yref="y",
            sizex=plan.width,
            sizey=plan.height,
            sizing="stretch",
            layer="below",
            opacity=0.9,
        )
    fig.update_xaxes(range=[0, plan.width], visible=False, constrain="domain")
    fig.update_yaxes(range=[plan.height, 0], visible=False, scaleanchor="x")
    fig.update_layout(margin={"l": 0, "r": 0, "t": 30, "b": 0}, height=480, title="Zone density")
    return fig


def zone_grid(density: pd.DataFrame) -> go.Figure:
    """Camera x zone heat grid, used when there is no floor plan."""
    pivot = density.pivot_table(
        index="camera_id", columns="zone", values="visits", aggfunc="sum", fill_value=0
    )
    fig = go.Figure(go.Heatmap(z=pivot.values, x=list(pivot.columns), y=list(pivot.index), colorscale=SCALE))
    fig.update_layout(title="Zone density (visits)", height=360)
    return fig
