"""One matplotlib figure -> one bare, accessible ``<svg>`` element to inline in a report page.

The output has no XML declaration, DOCTYPE, metadata or comments; ``role="img"`` and an ``aria-labelledby``
pointing at a ``<title>`` that carries the alt text; no fixed width, so it scales with the page; and every id
prefixed with the chart's id, so several charts inlined in one page never share an ``id``. matplotlib's SVG
writer escapes ``<``, ``>`` and ``&`` in text, so probe text cannot become markup.
"""

from __future__ import annotations

import html
import io
import re

from matplotlib.figure import Figure

_ATTR_NUMBERS_RE = re.compile(r'( (?:d|x|y|transform)=")([^"]*)"')
_NUMBER_RE = re.compile(r"-?\d+\.\d{3,}")


def _round_attr(match: re.Match[str]) -> str:
    """Round coordinates to 2 decimals (1/100 pt: invisible) and drop line breaks inside path data."""
    value = _NUMBER_RE.sub(lambda m: f"{float(m.group(0)):.2f}".rstrip("0").rstrip("."), match.group(2))
    return match.group(1) + " ".join(value.split()) + '"'


def _drop_bare_groups(svg: str) -> str:
    """Remove ``<g>`` wrappers that carry no attribute (and their matching ``</g>``): pure nesting."""
    out: list[str] = []
    stack: list[bool] = []
    last = 0
    for match in re.finditer(r"<g>\n?|<g\s[^>]*>|</g>\n?", svg):
        tag = match.group(0)
        out.append(svg[last : match.start()])
        last = match.end()
        if tag.startswith("</g>"):
            if not stack.pop():
                out.append(tag)
        elif tag.startswith("<g>"):
            stack.append(True)
        else:
            stack.append(False)
            out.append(tag)
    out.append(svg[last:])
    return "".join(out)


def svg_fragment(fig: Figure, *, chart_id: str, alt: str) -> str:
    """Save a figure as a bare, accessible ``<svg>`` element whose ids are all prefixed with chart_id."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", chart_id):
        raise ValueError(f"chart_id must be a plain identifier, got {chart_id!r}")
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    # matplotlib's global stroke style would leak into the whole HTML page; the report's CSS scopes it.
    svg = re.sub(r"<defs>\s*<style[^>]*>.*?</style>\s*</defs>\s*", "", svg, flags=re.S)
    # Fonts come from the page's CSS (one rule instead of a family list on every <text>).
    svg = re.sub(r"font-family: [^;\"]*(; )?", "", svg)
    svg = re.sub(r' transform="rotate\(-0 [^)]*\)"', "", svg)
    svg = _ATTR_NUMBERS_RE.sub(_round_attr, svg)
    svg = re.sub(r"\s*\n\s*", "\n", svg)
    referenced = set(re.findall(r'url\(#([^)]+)\)', svg)) | set(re.findall(r'href="#([^"]+)"', svg))
    svg = re.sub(r' id="([^"]+)"', lambda m: f' id="{chart_id}-{m.group(1)}"' if m.group(1) in referenced
                 else "", svg)
    svg = _drop_bare_groups(svg)
    svg = re.sub(r'url\(#([^)]+)\)', rf"url(#{chart_id}-\1)", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'href="#{chart_id}-\1"', svg)
    svg = re.sub(r'xlink:href="data:', 'href="data:', svg)
    head_end = svg.index(">")
    head = svg[:head_end]
    view_box = re.search(r'viewBox="([^"]+)"', head)
    width = float(view_box.group(1).split()[2]) if view_box else 600.0
    title_id = f"{chart_id}-title"
    new_head = (
        f'<svg id="{chart_id}" class="chart" viewBox="{view_box.group(1) if view_box else "0 0 600 400"}" '
        f'role="img" aria-labelledby="{title_id}" style="max-width:{width * 4 / 3:.0f}px" '
        f'preserveAspectRatio="xMidYMid meet"'
    )
    title = f'<title id="{title_id}">{html.escape(alt, quote=True)}</title>'
    return new_head + ">" + title + svg[head_end + 1 :].strip()
