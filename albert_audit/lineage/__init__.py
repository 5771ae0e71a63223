"""`albert-audit lineage`: a base model and its descendants audited in one command, on Ray.

Modules: ``manifest`` (the lineage: nodes, parents, labels; read from a manifest, a folder of model folders,
model cards or the hub's model tree), ``kinds`` (how each kind of descendant is audited: own MLM head,
grafted base head, task model), ``worker`` (one model audited into its run folder, with resume),
``executor`` (the only module that imports ray: a local or joined Ray cluster, one actor per GPU or CPU
slot, retries of lost workers, progress), ``run`` (the command: plan, execute, compare against parent and
root, status table, lineage_summary.json, catalogue, lineage.html).

Importing this package stays free of ray, torch and duckdb.
"""

from __future__ import annotations
