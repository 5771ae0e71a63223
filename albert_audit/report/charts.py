"""Chart drawing of both reports: plain numbers in, one :class:`Chart` (inline SVG) out; no statistics here.

Every function draws on a fresh :class:`matplotlib.figure.Figure` (no pyplot, so no global backend and no
GUI) inside an ``rc_context`` that

* keeps text as SVG ``<text>`` (``svg.fonttype='none'``): small files, selectable and searchable labels;
* turns mathtext off (``text.parse_math=False``): a label such as ``$\\undefined$`` taken from a probe file
  or a model's vocabulary is drawn literally instead of crashing ``savefig`` with a TeX error;
* salts matplotlib's clip-path ids per chart; :func:`albert_audit.report.svg.svg_fragment` then prefixes
  every id with the chart's id.

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies); significance and change
classes are also shown by marker fill or shape, never by colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.colors
import matplotlib.ticker
import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from albert_audit.report.fmt import short
from albert_audit.report.svg import svg_fragment

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#999999",
    "black": "#000000",
}
#: Colour of an effect whose sign favours group a / group b, and of a non-significant effect.
COLOUR_A, COLOUR_B, COLOUR_NS = OKABE_ITO["blue"], OKABE_ITO["vermillion"], "#8c8c8c"
#: Diverging colour map for the heatmap (ColorBrewer PuOr, colour-blind safe).
HEATMAP_CMAP = "PuOr"

#: matplotlib settings of every chart: text stays text (no TeX parsing of $...$), one sans-serif font.
CHART_RC = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_ROW_HEIGHT_IN = 0.2
_TICK_PT, _LABEL_PT = 8, 9
_LINE_IN = 0.19  # one line of 9 pt text plus spacing
_TEXT_TO_PATH = TextToPath()
_HEATMAP_STEPS = 11
_MAX_LABEL_CHARS = 48


@dataclass(frozen=True)
class Chart:
    """One chart ready to inline: ``svg`` is the markup, ``alt`` the text alternative also inside it."""

    chart_id: str
    svg: str
    alt: str

    def as_context(self, caption: str = "") -> dict[str, Any]:
        """The chart for a template: its SVG marked safe (built by :func:`svg_fragment`, whose text matplotlib
        has escaped; never user text), its id, alt text and caption."""
        return {"id": self.chart_id, "svg": Markup(self.svg), "alt": self.alt, "caption": caption}


def _short(label: str, limit: int = _MAX_LABEL_CHARS) -> str:
    """Shorten a label for an axis (the full text stays in the tables)."""
    return short(" ".join(str(label).split()), limit)


def _text_width_in(texts: Iterable[str], size_pt: float) -> float:
    """Width in inches of the widest text at a font size (measured with the font, no drawing)."""
    prop = FontProperties(family="sans-serif", size=size_pt)
    widths = [_TEXT_TO_PATH.get_text_width_height_descent(t, prop, ismath=False)[0] for t in texts if t]
    return max(widths, default=0.0) / 72.0


def _figure(plot_w: float, plot_h: float, *, left: float, right: float, top: float,
            bottom: float) -> tuple[Figure, Any]:
    """A figure whose plotting area is plot_w x plot_h inches, with the given margins in inches.

    Margins are measured up front (constrained layout would draw every text two more times).
    """
    width, height = left + plot_w + right, top + plot_h + bottom
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height)
    return fig, fig.add_subplot()


def forest_plot(
    labels: Sequence[str],
    effects: Sequence[float],
    ci_low: Sequence[float],
    ci_high: Sequence[float],
    significant: Sequence[bool],
    *,
    chart_id: str,
    xlabel: str,
    alt: str,
    title: str = "",
    legend_a: str = "significant, group A higher",
    legend_b: str = "significant, group B higher",
    legend_none: str = "not significant",
    ratio_axis: bool = True,
    show_legend: bool = True,
) -> Chart:
    """Forest plot: one row per label, a point at its effect and a line over its confidence interval.

    Rows are drawn top to bottom in the order given. Filled markers are significant (blue when the effect is
    positive, vermillion when negative); hollow grey markers are not. With ``ratio_axis`` (effects in nats)
    a top axis shows the probability ratio exp(effect). Non-finite effects are left out; a non-finite CI
    bound draws no line.
    """
    rows = [
        (str(lab), float(e), float(lo), float(hi), bool(s))
        for lab, e, lo, hi, s in zip(labels, effects, ci_low, ci_high, significant, strict=True)
        if math.isfinite(float(e))
    ]
    n = max(len(rows), 1)
    tick_labels = [_short(r[0]) for r in rows]
    with matplotlib.rc_context({**CHART_RC, "svg.hashsalt": chart_id}):
        left = _text_width_in(tick_labels, _TICK_PT) + 0.2
        top = (2 * _LINE_IN + 0.12 if ratio_axis else 0.12) + (_LINE_IN + 0.05 if title else 0.0)
        bottom = 2 * _LINE_IN + 0.12 + (_LINE_IN + 0.1 if show_legend else 0.0)
        plot_w = max(6.9 - left, _text_width_in([xlabel], _LABEL_PT) + 0.1, 3.5)
        fig, ax = _figure(plot_w, _ROW_HEIGHT_IN * n + 0.2, left=left, right=0.25, top=top, bottom=bottom)
        y = np.arange(len(rows))[::-1]
        colours = [(COLOUR_A if e >= 0 else COLOUR_B) if sig else COLOUR_NS for _, e, _, _, sig in rows]
        with_ci = [i for i, r in enumerate(rows) if math.isfinite(r[2]) and math.isfinite(r[3])]
        # One collection per kind of mark (not one artist per row): drawing stays fast for long lists.
        ax.hlines([y[i] for i in with_ci], [rows[i][2] for i in with_ci], [rows[i][3] for i in with_ci],
                  colors=[colours[i] for i in with_ci], linewidth=1.4)
        ax.scatter([r[1] for r in rows], y, s=30, c=colours, linewidths=1.2, zorder=3,
                   edgecolors=colours) if rows else None
        hollow = [i for i, r in enumerate(rows) if not r[4]]
        if hollow:
            ax.scatter([rows[i][1] for i in hollow], [y[i] for i in hollow], s=14, c="white", linewidths=0,
                       zorder=4)
        ax.axvline(0.0, color="#444444", linewidth=0.8, linestyle="--")
        ax.set_yticks(y, tick_labels)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
        if title:
            ax.set_title(title, loc="left")
        finite = [v for r in rows for v in r[1:4] if math.isfinite(v)] or [0.0]
        lo_x, hi_x = min(min(finite), 0.0), max(max(finite), 0.0)
        pad = 0.05 * (hi_x - lo_x or 1.0)
        ax.set_xlim(lo_x - pad, hi_x + pad)
        if ratio_axis:
            _add_ratio_axis(ax, lo_x - pad, hi_x + pad)
        if show_legend:
            _significance_legend(fig, ax, legend_a, legend_b, legend_none)
        svg = svg_fragment(fig, chart_id=chart_id, alt=alt)
    return Chart(chart_id=chart_id, svg=svg, alt=alt)


def _significance_legend(fig: Figure, ax, legend_a: str, legend_b: str, legend_none: str = "not significant") -> None:
    handles = [
        ax.plot([], [], marker="o", linestyle="none", color=COLOUR_A, label=legend_a)[0],
        ax.plot([], [], marker="o", linestyle="none", color=COLOUR_B, label=legend_b)[0],
        ax.plot([], [], marker="o", linestyle="none", color=COLOUR_NS, markerfacecolor="white",
                label=legend_none)[0],
    ]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=3, frameon=False,
               borderaxespad=0.2, handletextpad=0.3, columnspacing=1.2)


def _add_ratio_axis(ax, x_min: float, x_max: float) -> None:
    """A top axis in probability ratios exp(x), with ticks at round ratios inside the x range."""
    secondary = ax.secondary_xaxis(
        "top", functions=(np.exp, lambda r: np.log(np.clip(r, 1e-300, None))))
    candidates = [1 / 1000, 1 / 500, 1 / 200, 1 / 100, 1 / 50, 1 / 20, 1 / 10, 1 / 5, 1 / 2, 1.0,
                  2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
    inside = [r for r in candidates if x_min <= math.log(r) <= x_max]
    if len(inside) > 9:
        inside = inside[:: math.ceil(len(inside) / 9)]
    labels = [f"{r:g}×" if r >= 1 else f"1/{1 / r:g}×" for r in inside]
    secondary.set_xticks(inside, labels)
    secondary.set_xlabel("probability ratio, exp(gap)")


def heatmap(
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    colour_values: np.ndarray,
    cell_text: Sequence[Sequence[str]],
    *,
    chart_id: str,
    colourbar_label: str,
    xlabel: str,
    ylabel: str,
    alt: str,
    title: str = "",
) -> Chart:
    """Heatmap with a diverging, zero-centred colour scale and a text value in every cell.

    ``colour_values`` (rows x columns) sets the colours; ``cell_text`` the printed values, so the colours can
    show a relative quantity while the cells keep the absolute one. Cells are vector rectangles
    (pcolormesh), never an embedded bitmap. NaN cells are left blank.
    """
    values = np.asarray(colour_values, dtype=float)
    n_rows, n_cols = values.shape
    finite = np.abs(values[np.isfinite(values)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    row_ticks = [_short(r) for r in row_labels]
    col_ticks = [_short(c, 24) for c in col_labels]
    with matplotlib.rc_context({**CHART_RC, "svg.hashsalt": chart_id}):
        col_width = _text_width_in(col_ticks, _TICK_PT)
        rotate = col_width > 0.65
        left = _text_width_in(row_ticks, _TICK_PT) + 0.12 + _LINE_IN + 0.08
        bottom = (col_width * 0.5 + 0.15 if rotate else _LINE_IN) + _LINE_IN + 0.15
        top = 0.12 + (_LINE_IN + 0.05 if title else 0.0)
        fig, ax = _figure(0.72 * max(n_cols, 1), max(_ROW_HEIGHT_IN * n_rows, 1.6), left=left, right=1.4,
                          top=top, bottom=bottom)
        masked = np.ma.masked_invalid(values)
        # Eleven discrete steps: easier to read than a gradient, and the colour bar stays vector (a
        # continuous one is embedded as a bitmap).
        cmap = matplotlib.colormaps[HEATMAP_CMAP].resampled(_HEATMAP_STEPS)
        norm = matplotlib.colors.BoundaryNorm(np.linspace(-limit, limit, _HEATMAP_STEPS + 1), _HEATMAP_STEPS)
        mesh = ax.pcolormesh(masked, cmap=cmap, norm=norm, edgecolors="white", linewidth=0.5)
        mesh.set_clip_on(False)  # cells never leave the axes; no clip-path on each of them
        ax.invert_yaxis()
        ax.set_xticks(np.arange(n_cols) + 0.5, col_ticks, rotation=30 if rotate else 0,
                      ha="right" if rotate else "center", rotation_mode="anchor" if rotate else "default")
        ax.set_yticks(np.arange(n_rows) + 0.5, row_ticks)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, loc="left")
        for i in range(n_rows):
            for j in range(n_cols):
                if not np.isfinite(values[i, j]):
                    continue
                dark = abs(values[i, j]) > 0.6 * limit
                ax.text(j + 0.5, i + 0.5, cell_text[i][j], ha="center", va="center", fontsize=7,
                        color="white" if dark else "#111111")
        box = ax.get_position()
        bar_height = min(box.height, 2.4 / fig.get_figheight())
        cax = fig.add_axes((box.x1 + 0.12 / fig.get_figwidth(), box.y1 - bar_height,
                            0.14 / fig.get_figwidth(), bar_height))
        colourbar = fig.colorbar(mesh, cax=cax)
        colourbar.set_label(colourbar_label, fontsize=_TICK_PT)
        colourbar.set_ticks(np.linspace(-limit, limit, 5))
        colourbar.outline.set_visible(False)
        colourbar.ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
        svg = svg_fragment(fig, chart_id=chart_id, alt=alt)
    return Chart(chart_id=chart_id, svg=svg, alt=alt)


#: Colour and marker of each change class in the effect scatter (Okabe-Ito; shape as well as colour).
CHANGE_STYLE = {
    "amplified": (OKABE_ITO["vermillion"], "^"),
    "reduced": (OKABE_ITO["blue"], "v"),
    "reversed": (OKABE_ITO["reddish_purple"], "D"),
    "emerged": (OKABE_ITO["orange"], "s"),
    "negligible": (OKABE_ITO["bluish_green"], "o"),
    "inconclusive": (COLOUR_NS, "o"),
}
#: Change classes drawn as hollow markers (no material change).
HOLLOW_CHANGES = frozenset({"negligible", "inconclusive"})
_OTHER_CHANGE_STYLE = (OKABE_ITO["black"], "X")


def effect_scatter(base: Sequence[float], candidate: Sequence[float], changes: Sequence[str], *, chart_id: str,
                   alt: str, xlabel: str, ylabel: str, title: str = "") -> Chart:
    """Scatter of per-target effects, base (x) against candidate (y), with the y = x line and y = 0, x = 0.

    Points above the diagonal (for positive effects) grew in the candidate. Colour and marker shape both
    show the change class (legend in the order of :data:`CHANGE_STYLE`, then any other class), so the chart
    reads without colour. Points with a non-finite coordinate are left out.
    """
    points = [(float(b), float(c), str(ch)) for b, c, ch in zip(base, candidate, changes, strict=True)
              if math.isfinite(float(b)) and math.isfinite(float(c))]
    with matplotlib.rc_context({**CHART_RC, "svg.hashsalt": chart_id}):
        fig = Figure(figsize=(5.6, 4.6), layout="constrained")
        ax = fig.add_subplot()
        values = [v for p in points for v in p[:2]] or [0.0]
        lo, hi = min(min(values), 0.0), max(max(values), 0.0)
        pad = 0.06 * (hi - lo or 1.0)
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color="#444444", linewidth=0.9, linestyle="--", label="y = x (no change)")
        ax.axhline(0.0, color="#bbbbbb", linewidth=0.6)
        ax.axvline(0.0, color="#bbbbbb", linewidth=0.6)
        for change in dict.fromkeys([*CHANGE_STYLE, *(ch for _, _, ch in points)]):
            chosen = [(b, c) for b, c, ch in points if ch == change]
            if not chosen:
                continue
            colour, marker = CHANGE_STYLE.get(change, _OTHER_CHANGE_STYLE)
            ax.plot([b for b, _ in chosen], [c for _, c in chosen], marker=marker, linestyle="none",
                    markersize=5, color=colour, markerfacecolor="white" if change in HOLLOW_CHANGES else colour,
                    markeredgewidth=1.0, label=f"{change.replace('_', ' ')} ({len(chosen)})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
        if title:
            ax.set_title(title, loc="left")
        fig.legend(loc="outside right center", frameon=False)
        svg = svg_fragment(fig, chart_id=chart_id, alt=alt)
    return Chart(chart_id=chart_id, svg=svg, alt=alt)


def reference_scatter(labels: Sequence[str], x: Sequence[float], y: Sequence[float], *, slope: float,
                      chart_id: str, alt: str, xlabel: str, ylabel: str, fit_label: str,
                      top_ticks: Sequence[float] = (), top_labels: Sequence[str] = (), top_label: str = "",
                      title: str = "") -> Chart:
    """Scatter of one point per word (x: the reference's log-odds, y: the model's effect), each labelled with
    its word, the OLS fit line of ``slope`` through the points' means, and a dashed slope-1 line through the
    same centre (where a model that tracks the reference would lie). ``top_ticks`` (x values) with
    ``top_labels`` put the reference's shares on a top axis. Points with a non-finite coordinate are left out.
    """
    points = [(str(lab), float(a), float(b)) for lab, a, b in zip(labels, x, y, strict=True)
              if math.isfinite(float(a)) and math.isfinite(float(b))]
    with matplotlib.rc_context({**CHART_RC, "svg.hashsalt": chart_id}):
        fig = Figure(figsize=(6.9, 4.8), layout="constrained")
        ax = fig.add_subplot()
        xs = np.array([p[1] for p in points]) if points else np.zeros(1)
        ys = np.array([p[2] for p in points]) if points else np.zeros(1)
        lo, hi = float(xs.min()), float(xs.max())
        pad = 0.06 * (hi - lo or 1.0)
        grid = np.array([lo - pad, hi + pad])
        ax.axhline(0.0, color="#bbbbbb", linewidth=0.6)
        if lo - pad < 0.0 < hi + pad:
            ax.axvline(0.0, color="#bbbbbb", linewidth=0.6)
        cx, cy = float(xs.mean()), float(ys.mean())
        if math.isfinite(slope):
            ax.plot(grid, cy + slope * (grid - cx), color=COLOUR_A, linewidth=1.4, label=fit_label)
        ax.plot(grid, cy + (grid - cx), color="#444444", linewidth=0.9, linestyle="--",
                label="slope 1: tracks the reference")
        ax.plot(xs if points else [], ys if points else [], marker="o", linestyle="none", markersize=4.5,
                color=OKABE_ITO["vermillion"], markeredgewidth=0.0, label=f"one word ({len(points)})")
        for text, px, py in points:
            ax.annotate(_short(text, 24), (px, py), xytext=(3, 2), textcoords="offset points", fontsize=6.5,
                        color="#333333")
        ax.set_xlim(grid[0], grid[1])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
        if top_ticks:
            inside = [(t, s) for t, s in zip(top_ticks, top_labels, strict=True) if grid[0] <= t <= grid[1]]
            top = ax.secondary_xaxis("top")
            top.set_xticks([t for t, _ in inside], [s for _, s in inside])
            top.set_xlabel(top_label)
        if title:
            ax.set_title(title, loc="left")
        ax.legend(loc="best", frameon=False)
        svg = svg_fragment(fig, chart_id=chart_id, alt=alt)
    return Chart(chart_id=chart_id, svg=svg, alt=alt)
