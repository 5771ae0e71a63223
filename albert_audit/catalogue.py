"""The run catalogue: an embedded DuckDB file that indexes run, compare and lineage folders in place.

The folders stay the unit of truth; the catalogue is derived and can be rebuilt (`albert-audit catalogue add`
again). Tables hold what each folder's summary says (runs, their probe files, compares, lineages and their
nodes); views read the folders' CSV and Parquet files where they lie (``findings``, ``deltas``, ``items``,
``targets``, ``fills``), with text cells restored as albert_audit.results reads them (a defusing apostrophe
removed, empty text as ""). Derived views answer the usual questions: ``bias_scores`` (every run's bias
score per probe set with its interval and verdict) and ``lineage_changes`` (every delta of a lineage's
comparisons, against the parent or the root, with the labels of both models). The schema (tables, views,
columns) is ``CATALOGUE_SCHEMA_VERSION`` of albert_audit.contract and is documented in docs/catalogue.md.

Example: which descendants amplified a finding of the base? ::

    SELECT label, probe_set, metric, target, delta FROM lineage_changes
    WHERE against = 'root' AND change = 'amplified'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from albert_audit import contract, results
from albert_audit.errors import AuditError, shown

SQL_TYPES = {"str": "VARCHAR", "float64": "DOUBLE", "int64": "BIGINT", "bool": "BOOLEAN"}

TABLES_SQL = {
    "catalogue_meta": "key VARCHAR PRIMARY KEY, value VARCHAR",
    "runs": ("run_id VARCHAR PRIMARY KEY, path VARCHAR, model_id VARCHAR, revision VARCHAR, commit_sha VARCHAR, "
             "weights_sha256 VARCHAR, head VARCHAR, lineage VARCHAR, label VARCHAR, parent VARCHAR, "
             "probe_sets VARCHAR, tool_version VARCHAR, library_versions VARCHAR, device VARCHAR, dtype VARCHAR, "
             "seed BIGINT, alpha DOUBLE, n_resamples BIGINT, unit VARCHAR, created_utc VARCHAR, pppl DOUBLE"),
    "probe_files": "run_id VARCHAR, name VARCHAR, path VARCHAR, sha256 VARCHAR",
    "compares": ("compare_id VARCHAR PRIMARY KEY, path VARCHAR, base_run_id VARCHAR, candidate_run_id VARCHAR, "
                 "candidate VARCHAR, lineage VARCHAR, label VARCHAR, against VARCHAR, base_label VARCHAR, "
                 "created_utc VARCHAR"),
    "lineages": "lineage VARCHAR PRIMARY KEY, path VARCHAR, root VARCHAR, source VARCHAR, created_utc VARCHAR",
    "lineage_nodes": ("lineage VARCHAR, label VARCHAR, model VARCHAR, parent VARCHAR, depth BIGINT, position BIGINT, "
                      "kind VARCHAR, status VARCHAR, reason VARCHAR, run_id VARCHAR"),
}
"""Tables and their columns (docs/catalogue.md says what each column means)."""

FILE_VIEWS = {
    "findings": ("run_id", "runs", contract.FINDINGS),
    "items": ("run_id", "runs", contract.ITEMS),
    "targets": ("run_id", "runs", contract.TARGETS),
    "fills": ("run_id", "runs", contract.FILLS),
    "deltas": ("compare_id", "compares", contract.DELTAS),
}
"""Views over the folders' files: view -> (key column, table whose folders hold the file, table spec)."""

DERIVED_VIEWS = {
    "bias_scores": """
        SELECT r.run_id, r.model_id, r.revision, r.lineage, r.label, r.created_utc, f.probe_set, f.effect AS bias_score,
               f.ci_low, f.ci_high, f.verdict, f.q_value, f.n_units
        FROM findings f JOIN runs r USING (run_id) WHERE f.metric = 'bias_score'""",
    # A child of the root has one comparison (against its parent, the root): listed under both.
    "lineage_changes": """
        WITH edges AS (
            SELECT c.compare_id, c.lineage, c.label, c.against, c.base_label FROM compares c WHERE c.lineage <> ''
            UNION ALL
            SELECT c.compare_id, c.lineage, c.label, 'root', c.base_label FROM compares c
            JOIN lineages l ON l.lineage = c.lineage AND l.root = c.base_label WHERE c.against = 'parent')
        SELECT e.lineage, e.label, e.against, e.base_label, d.probe_set, d.metric, d.target, d.group_a, d.group_b,
               d.base_effect, d.candidate_effect, d.delta, d.ci_low, d.ci_high, d.q_value, d.change, d.delta_verdict,
               d.base_verdict, d.candidate_verdict, e.compare_id
        FROM deltas d JOIN edges e USING (compare_id)""",
}


def _connect(path: Path, *, read_only: bool) -> Any:
    import duckdb

    path = Path(path)
    if read_only and not path.is_file():
        raise AuditError(f"{shown(path)}: no such catalogue (create it with `albert-audit catalogue add DIR`)")
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        message = str(exc).splitlines()[0] if str(exc) else ""
        if "lock" in message.lower():
            raise AuditError(f"{shown(path)}: in use by another process (the catalogue has one writer at a "
                             "time)") from None
        raise AuditError(f"{shown(path)}: cannot open the catalogue ({shown(message, limit=160)})") from None
    except duckdb.Error as exc:
        raise AuditError(f"{shown(path)}: not a DuckDB catalogue ({type(exc).__name__})") from None


def _ensure_schema(con: Any, path: Path) -> None:
    for name, columns in TABLES_SQL.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    row = con.execute("SELECT value FROM catalogue_meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        con.execute("INSERT INTO catalogue_meta VALUES ('schema_version', ?)", [str(contract.CATALOGUE_SCHEMA_VERSION)])
    elif row[0] != str(contract.CATALOGUE_SCHEMA_VERSION):
        raise AuditError(f"{shown(path)}: catalogue schema_version {shown(row[0])}, this tool reads "
                         f"{contract.CATALOGUE_SCHEMA_VERSION}; rebuild it (delete the file, `catalogue add` again)")


# ------------------------------------------------------------------------------------------- registering


def folder_kind(folder: Path) -> str:
    """``lineage``, ``compare`` or ``run`` by the summary file the folder holds (else AuditError)."""
    if (folder / contract.LINEAGE_SUMMARY_FILE).is_file():
        return "lineage"
    if (folder / contract.COMPARE_SUMMARY_FILE).is_file():
        return "compare"
    if (folder / contract.SUMMARY_FILE).is_file():
        return "run"
    raise AuditError(f"{shown(folder)}: not a run, compare or lineage folder (no {contract.SUMMARY_FILE}, "
                     f"{contract.COMPARE_SUMMARY_FILE} or {contract.LINEAGE_SUMMARY_FILE})")


def _joined(mapping: dict[str, Any] | None) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted((mapping or {}).items()))


def _run_row(folder: Path, *, lineage: str = "", label: str = "",
             parent: str = "") -> tuple[list[Any], list[list[Any]]]:
    summary = results.read_summary(folder / contract.SUMMARY_FILE, schema_version=contract.SUMMARY_SCHEMA_VERSION)
    if not (folder / contract.FINDINGS_FILE).is_file():
        raise AuditError(f"{shown(folder / contract.FINDINGS_FILE)}: missing; only complete run folders are catalogued")
    model = summary.get("model") or {}
    comparison = summary.get("comparison") or {}
    run_id = str(folder.resolve())
    probes = summary.get("probe_files") or []
    utility = summary.get("utility") or {}
    pppl = utility.get("pppl")
    row = [run_id, run_id, model.get("id"), model.get("revision"), model.get("commit"),
           _joined(model.get("weights_sha256")), model.get("head"), lineage or comparison.get("lineage") or "",
           label or comparison.get("label") or "", parent or comparison.get("parent") or "",
           ";".join(f"{p.get('name')}={p.get('sha256')}" for p in probes), summary.get("tool_version"),
           json.dumps(summary.get("runtime") or {}, sort_keys=True), summary.get("device"), summary.get("dtype"),
           summary.get("seed"), summary.get("alpha"), summary.get("n_resamples"), summary.get("unit"),
           summary.get("created_utc"), float(pppl) if isinstance(pppl, (int, float)) and math.isfinite(pppl) else None]
    files = [[run_id, p.get("name"), p.get("path"), p.get("sha256")] for p in probes]
    return row, files


def _compare_rows(folder: Path, *, lineage: str = "", label: str = "", against: str = "",
                  base_label: str = "") -> tuple[list[list[Any]], list[Path]]:
    summary = results.read_summary(folder / contract.COMPARE_SUMMARY_FILE,
                                   schema_version=contract.COMPARE_SCHEMA_VERSION)
    if not (folder / contract.DELTAS_FILE).is_file():
        raise AuditError(f"{shown(folder / contract.DELTAS_FILE)}: missing")
    base_run = (folder / summary["base"]["run"]).resolve()
    rows, runs = [], [base_run]
    compare_id = str(folder.resolve())
    for candidate in summary.get("candidates") or []:
        cand_run = (folder / candidate["run"]).resolve()
        runs.append(cand_run)
        rows.append([compare_id if len(summary["candidates"]) == 1 else f"{compare_id}#{candidate['label']}",
                     compare_id, str(base_run), str(cand_run), candidate["label"], lineage, label, against,
                     base_label, summary.get("created_utc")])
    return rows, runs


def add_folders(catalogue: str | Path, folders: Sequence[str | Path]) -> dict[str, int]:
    """Register run, compare and lineage folders (a lineage: its runs, compares and nodes too); re-registering
    a folder replaces its rows. Returns how many of each were registered."""
    path = Path(catalogue)
    for folder in folders:
        if not Path(folder).is_dir():
            raise AuditError(f"{shown(folder)}: no such folder")
        folder_kind(Path(folder))
    if path.parent and not path.parent.exists():
        raise AuditError(f"{shown(path)}: its folder does not exist")
    con = _connect(path, read_only=False)
    counts = {"runs": 0, "compares": 0, "lineages": 0}
    try:
        _ensure_schema(con, path)
        con.execute("BEGIN TRANSACTION")
        for folder in folders:
            _add_one(con, Path(folder), counts)
        _refresh_views(con)
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception:  # nothing to roll back
            pass
        raise
    finally:
        con.close()
    return counts


def _replace(con: Any, table: str, key: str, value: str, rows: Iterable[list[Any]]) -> None:
    con.execute(f"DELETE FROM {table} WHERE {key} = ?", [value])
    for row in rows:
        con.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)


def _add_run(con: Any, folder: Path, counts: dict[str, int], **labels: str) -> str:
    row, files = _run_row(folder, **labels)
    _replace(con, "runs", "run_id", row[0], [row])
    _replace(con, "probe_files", "run_id", row[0], files)
    counts["runs"] += 1
    return str(row[0])


def _add_compare(con: Any, folder: Path, counts: dict[str, int], **labels: str) -> None:
    rows, _ = _compare_rows(folder, **labels)
    con.execute("DELETE FROM compares WHERE path = ?", [str(folder.resolve())])
    for row in rows:
        con.execute(f"INSERT INTO compares VALUES ({', '.join('?' * len(row))})", row)
    counts["compares"] += 1


def _add_one(con: Any, folder: Path, counts: dict[str, int]) -> None:
    kind = folder_kind(folder)
    if kind == "run":
        _add_run(con, folder, counts)
        return
    if kind == "compare":
        summary = results.read_summary(folder / contract.COMPARE_SUMMARY_FILE,
                                       schema_version=contract.COMPARE_SCHEMA_VERSION)
        for entry in [summary["base"], *summary.get("candidates", [])]:
            run = (folder / entry["run"]).resolve()
            if (run / contract.FINDINGS_FILE).is_file():
                _add_run(con, run, counts)
        _add_compare(con, folder, counts)
        return
    summary = results.read_summary(folder / contract.LINEAGE_SUMMARY_FILE,
                                   schema_version=contract.LINEAGE_SCHEMA_VERSION)
    name = str(summary["name"])
    status = contract.restore_types(
        results.read_csv_table(folder / contract.LINEAGE_STATUS_FILE,
                               text_columns=contract.LINEAGE_STATUS.names_of("str")),
        contract.LINEAGE_STATUS, contract.LINEAGE_STATUS_FILE)
    con.execute("DELETE FROM lineage_nodes WHERE lineage = ?", [name])
    for position, row in enumerate(status.itertuples()):
        run_id = ""
        if row.run:
            run_id = _add_run(con, folder / row.run, counts, lineage=name, label=row.label, parent=row.parent)
        con.execute("INSERT INTO lineage_nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [name, row.label, row.model, row.parent, int(row.depth), position, row.kind, row.status,
                     row.reason, run_id])
    for edge in summary.get("compares") or []:
        if edge.get("folder"):
            _add_compare(con, folder / edge["folder"], counts, lineage=name, label=edge["label"],
                         against=edge["against"], base_label=edge["base"])
    _replace(con, "lineages", "lineage", name,
             [[name, str(folder.resolve()), summary.get("root"), summary.get("source"), summary.get("created_utc")]])
    counts["lineages"] += 1


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _typed_columns(spec: contract.TableSpec, csv: bool) -> list[str]:
    out = []
    for column in spec.columns:
        name = f'"{column.name}"'
        if column.dtype == "str":
            expr = f"coalesce(CAST({name} AS VARCHAR), '')"
            if csv:  # results.write_csv defused text cells with one leading apostrophe: remove it
                expr = f"CASE WHEN starts_with({expr}, '''') THEN substr({expr}, 2) ELSE {expr} END"
        else:
            expr = f"CAST({name} AS {SQL_TYPES[column.dtype]})"
        out.append(f"{expr} AS {name}")
    return out


def _empty_view(key: str, spec: contract.TableSpec) -> str:
    columns = [f"CAST(NULL AS VARCHAR) AS {key}"] + [
        f'CAST(NULL AS {SQL_TYPES[c.dtype]}) AS "{c.name}"' for c in spec.columns]
    return f"SELECT {', '.join(columns)} WHERE false"


def _refresh_views(con: Any) -> None:
    """(Re)create the file views over every registered folder's files, then the derived views."""
    for view, (key, table, spec) in FILE_VIEWS.items():
        folders = [r[0] for r in con.execute(f"SELECT DISTINCT path FROM {table} ORDER BY path").fetchall()]
        files = [str(Path(f) / spec.file) for f in folders if (Path(f) / spec.file).is_file()]
        csv = spec.file.endswith(".csv")
        if not files:
            body = _empty_view(key, spec)
        else:
            listed = "[" + ", ".join(_sql_text(f) for f in files) + "]"
            if csv:
                types = ", ".join(f"{_sql_text(c.name)}: {_sql_text(SQL_TYPES[c.dtype])}" for c in spec.columns)
                reader = (f"read_csv({listed}, header=true, union_by_name=true, filename=true, "
                          f"all_varchar=false, types={{{types}}})")
            else:
                reader = f"read_parquet({listed}, union_by_name=true, filename=true)"
            mapping = ", ".join(f"({_sql_text(str(Path(f) / spec.file))}, {_sql_text(f)})" for f in folders)
            names = ", ".join(f's."{c.name}"' for c in spec.columns)
            extra = " AND k.candidate = s.candidate" if view == "deltas" else ""
            body = (f"SELECT k.{key} AS {key}, {names} FROM (SELECT {', '.join(_typed_columns(spec, csv))}, "
                    f"t.filename AS _file FROM {reader} t) s JOIN (VALUES {mapping}) AS m(file, folder) "
                    f"ON s._file = m.file JOIN {table} k ON k.path = m.folder{extra}")
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {body}")
    for view, sql in DERIVED_VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {sql}")


# ----------------------------------------------------------------------------------------------- queries


def query(catalogue: str | Path, sql: str) -> pd.DataFrame:
    """Run one SQL statement on the catalogue, read only; the result as a DataFrame (AuditError on SQL errors)."""
    import duckdb

    con = _connect(Path(catalogue), read_only=True)
    try:
        return con.execute(sql).df()
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AuditError(f"SQL: {shown(message, limit=300)}") from None
    finally:
        con.close()


def format_table(table: pd.DataFrame, *, max_rows: int = 200) -> str:
    """A query result as aligned text (values escaped: no control characters reach the terminal)."""
    if table.empty:
        return f"(no rows; columns: {', '.join(shown(c) for c in table.columns)})"
    shown_table = table.head(max_rows).map(lambda v: shown("" if v is None else v, limit=60))
    shown_table.columns = [shown(c, limit=60) for c in table.columns]
    text = shown_table.to_string(index=False)
    if len(table) > max_rows:
        text += f"\n... {len(table) - max_rows} more rows (write them all with --out FILE.csv)"
    return text


def write_table(table: pd.DataFrame, out: str | Path) -> Path:
    """Write a query result to ``.csv`` (spreadsheet-safe cells, as the run folder's) or ``.parquet``."""
    out = Path(out)
    if out.suffix == ".csv":
        return results.write_csv(out, table)
    if out.suffix == ".parquet":
        return results.write_parquet(out, table)
    raise AuditError(f"{shown(out)}: expected a .csv or .parquet file")


# ----------------------------------------------------------------------------------------------- history


HISTORY_COLUMNS = ("position", "label", "run_id", "probe_set", "bias_score", "ci_low", "ci_high", "verdict",
                   "n_material", "changes")


def history(catalogue: str | Path, subject: str) -> pd.DataFrame:
    """Bias scores (with intervals and verdicts), material findings and change counts of a lineage's models in
    tree order, or of a model's catalogued runs (its checkpoints: revisions, oldest first); ``changes`` counts
    the deltas' classes against the parent (lineage) or the previous checkpoint (when a compare of the two is
    catalogued)."""
    con = _connect(Path(catalogue), read_only=True)
    try:
        is_lineage = con.execute("SELECT count(*) FROM lineages WHERE lineage = ?", [subject]).fetchone()[0] > 0
        if is_lineage:
            runs = con.execute(
                "SELECT n.position, n.label, n.run_id, n.parent FROM lineage_nodes n WHERE n.lineage = ? "
                "AND n.run_id <> '' ORDER BY n.position", [subject]).df()
        else:
            runs = con.execute(
                "SELECT row_number() OVER (ORDER BY created_utc, run_id) - 1 AS position, "
                "coalesce(nullif(revision, ''), created_utc) AS label, run_id, '' AS parent FROM runs "
                "WHERE model_id = ? OR path = ? ORDER BY created_utc, run_id", [subject, subject]).df()
        if runs.empty:
            raise AuditError(f"{shown(subject)}: neither a catalogued lineage nor a catalogued model id")
        scores = con.execute(
            "SELECT run_id, probe_set, bias_score, ci_low, ci_high, verdict FROM bias_scores").df()
        material = con.execute(
            "SELECT run_id, probe_set, count(*) AS n_material FROM findings WHERE verdict = 'material' "
            "GROUP BY run_id, probe_set").df()
        changes = con.execute(
            "SELECT c.candidate_run_id AS run_id, c.base_run_id, c.lineage, c.against, d.probe_set, d.change, "
            "count(*) AS n FROM deltas d JOIN compares c USING (compare_id) GROUP BY ALL").df()
    finally:
        con.close()
    rows = []
    previous = None
    for run in runs.itertuples():
        mine = scores[scores["run_id"] == run.run_id]
        for score in mine.itertuples():
            if is_lineage:
                edge = changes[(changes["run_id"] == run.run_id) & (changes["lineage"] == subject)
                               & (changes["against"] == "parent") & (changes["probe_set"] == score.probe_set)]
            else:
                edge = changes[(changes["run_id"] == run.run_id) & (changes["base_run_id"] == previous)
                               & (changes["probe_set"] == score.probe_set)]
            counted = material[(material["run_id"] == run.run_id) & (material["probe_set"] == score.probe_set)]
            rows.append({"position": int(run.position), "label": run.label, "run_id": run.run_id,
                         "probe_set": score.probe_set, "bias_score": score.bias_score, "ci_low": score.ci_low,
                         "ci_high": score.ci_high, "verdict": score.verdict,
                         "n_material": int(counted["n_material"].sum()) if len(counted) else 0,
                         "changes": ";".join(f"{r.change}={int(r.n)}" for r in edge.sort_values("change").itertuples()
                                             if r.n)})
        previous = run.run_id
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def history_text(table: pd.DataFrame) -> str:
    """The history as lines: position, label, probe set, bias score [interval] verdict, material findings,
    changes."""
    lines = []
    for row in table.itertuples():
        score = "—" if not _finite(row.bias_score) else f"{row.bias_score:.3f}"
        interval = (f"[{row.ci_low:.3f}, {row.ci_high:.3f}]" if _finite(row.ci_low) and _finite(row.ci_high)
                    else "[—]")
        changes = f"; changes: {row.changes}" if row.changes else ""
        lines.append(f"{row.position:>3} {shown(row.label, limit=40)} {shown(row.probe_set, limit=40)}: bias score "
                     f"{score} {interval} {row.verdict or 'no verdict'}; {row.n_material} material findings{changes}")
    return "\n".join(lines)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def write_history_page(table: pd.DataFrame, subject: str, out: str | Path) -> Path:
    """A self-contained HTML page (inline SVG, CSP, everything escaped) with the history's dot plot and table."""
    from albert_audit.report.lineage_render import render_history

    return results.write_text(Path(out), render_history(table, subject))
