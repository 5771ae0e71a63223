"""The reports in a real browser: headless Chromium (Debian's ``chromium``) opens report.html offline, runs
its inline script without a console message, draws every chart, and a screenshot is not blank; compare.html
opens without a console message and draws every chart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from albert_audit.report.context import build_context
from albert_audit.report.render import render_report
from albert_audit.results import read_run
from tests.test_report import make_fixture_run, parse

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

# CI installs Chromium and sets ALBERT_AUDIT_REQUIRE_BROWSER=1: there a missing browser fails, never skips.
if CHROMIUM is None and os.environ.get("ALBERT_AUDIT_REQUIRE_BROWSER") == "1":
    raise RuntimeError("ALBERT_AUDIT_REQUIRE_BROWSER=1 but headless Chromium is not installed")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package `chromium`)"),
]


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    run = make_fixture_run(tmp_path_factory.mktemp("browser_run"))
    path = render_report(run)
    return path, build_context(read_run(run, need_findings=True))


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_browser_runs_the_page_without_console_messages_and_finds_every_chart(rendered, tmp_path: Path) -> None:
    path, context = rendered
    result = _chromium(tmp_path / "profile", "--dump-dom", path.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    # Any console line (an uncaught error, a CSP violation, a blocked load) is a failure.
    assert _console_lines(result.stderr) == []
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-js-ok="1"' in root, "the inline script did not run (blocked by the CSP or an error)"
    assert dom.count("<svg") == context["n_charts"] > 0
    assert f'data-charts="{context["n_charts"]}"' in root
    assert f'data-charts-visible="{context["n_charts"]}"' in root, root
    headers = sum(len(ps["findings_headers"]) for ps in context["probe_sets"] if ps["findings_rows"])
    assert dom.count("<button") == headers > 0  # every findings header became a sort button
    assert "<img" not in dom and "alert(1)" not in "".join(re.findall(r"<script[^>]*>(.*?)</script>", dom, re.S))


def test_screenshot_is_not_blank(rendered, tmp_path: Path) -> None:
    import matplotlib.image

    path, _ = rendered
    shot = tmp_path / "report.png"
    result = _chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,4000", path.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    assert _console_lines(result.stderr) == []
    pixels = matplotlib.image.imread(shot)[:, :, :3]
    assert pixels.shape[:2] == (4000, 1280)
    colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50, f"only {len(colours)} distinct colours"
    not_white = (pixels < 0.95).any(axis=2).mean()
    assert 0.05 < not_white < 0.9, f"{not_white:.1%} of the pixels are not white"


def test_sort_script_orders_numbers_text_and_missing_values(tmp_path: Path) -> None:
    from albert_audit.report.render import SCRIPT_TEMPLATE, make_environment

    script = make_environment().get_template(SCRIPT_TEMPLATE).render()
    rows = [("b", "0.500", "0.2"), ("a", "—", None), ("c", "-1.000", None), ("d", "< 0.001", "0.0004")]
    body = "".join(f"<tr><td>{name}</td><td{f' data-v={v}' if v else ''}>{text}</td></tr>"
                   for name, text, v in rows)
    page = tmp_path / "sort.html"
    page.write_text(
        "<!DOCTYPE html><html><body><table class='sortable' id='t'><thead><tr><th>Name</th><th>q</th></tr>"
        f"</thead><tbody>{body}</tbody></table><script>{script}</script><script>"
        "function order() { return Array.prototype.map.call(document.querySelectorAll('#t tbody tr'),"
        " function (r) { return r.cells[0].textContent; }).join(''); }"
        "var b = document.querySelectorAll('#t th button'); var out = [];"
        "b[1].click(); out.push(order()); b[1].click(); out.push(order()); b[0].click(); out.push(order());"
        "document.body.setAttribute('data-order', out.join(','));</script></body></html>",
        encoding="utf-8")
    result = _chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
    assert _console_lines(result.stderr) == []
    # q ascending: -1.000 < 0.0004 ("< 0.001") < 0.2 (data-v of 0.500), "—" last; descending keeps "—" last.
    assert 'data-order="cdba,bdca,abcd"' in result.stdout


def test_browser_opens_compare_html_without_console_messages(tmp_path: Path) -> None:
    """compare.html runs no script: the browser draws every chart and reports nothing (no CSP violation)."""
    from albert_audit.report.compare_context import build_compare_context
    from albert_audit.report.compare_render import render_compare
    from tests.compare_fixture import make_compare_folder

    folder = make_compare_folder(tmp_path / "cmp")
    path = render_compare(folder)
    result = _chromium(tmp_path / "profile", "--dump-dom", path.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_lines(result.stderr) == []
    dom = result.stdout
    assert dom.count("<svg") == build_compare_context(folder)["n_charts"] > 0
    tags = {tag for tag, _ in parse(dom).elements}  # hostile names sit in attributes, where "<" stays raw
    assert not tags & {"script", "img"}


def test_browser_opens_lineage_html_without_console_messages(lineage_folder, tmp_path: Path) -> None:
    """lineage.html (the session's Ray lineage) runs no script: every chart drawn, no CSP violation, and the
    links to each model's report and comparisons point at files that exist."""
    from albert_audit.report.lineage_context import build_lineage_context

    out = lineage_folder["out"]
    path = out / "lineage.html"
    result = _chromium(tmp_path / "profile", "--dump-dom", path.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_lines(result.stderr) == []
    dom = result.stdout
    assert dom.count("<svg") == build_lineage_context(out)["n_charts"] > 0
    tags = {tag for tag, _ in parse(dom).elements}
    assert not tags & {"script", "img"}
    links = re.findall(r'href="((?:runs|compares)/[^"#]+)"', dom)
    assert links and all((out / link).is_file() for link in links), links
    shot = tmp_path / "lineage.png"
    result = _chromium(tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,2000", path.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[:, :, :3]
    assert 0.05 < (pixels < 0.95).any(axis=2).mean() < 0.9
