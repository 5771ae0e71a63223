"""CrowS-Pairs speed: albert_audit's batched benchmark loop against the reference's one-pass-per-mask loop.

Builds an albert-large-v2-shaped masked LM with random weights (24 layers sharing one set of weights, 128
embedding, 1024 hidden, 16 heads, 4096 intermediate, 30,000 vocabulary) and a tokenizer whose whole-word
pieces are the words of the CrowS-Pairs file (so sentences have about the real number of pieces), then
scores the first --pairs pairs two ways, each timed as a whole process (tokenizing, aligning, every forward
pass, summing):
  reference   one sentence with one masked token per forward pass, batch 1, full logits (metric.py's loop);
  engine      albert_audit.benchmarks.crows_pairs.score: every masked sequence of every pair deduplicated,
              length-sorted and batched in one loop, the MLM head applied only at the masked positions.
Prints both times, the ratio (target >= 2x on CPU), and the largest score difference (they must agree).

GPU: with --device cuda, --skip-reference and --pairs 0 (all 1,508 pairs), the engine's time is the GPU
target (< 30 s on one H100-class GPU).

    python bench/crows_speed.py --data PATH/crows_pairs_anonymized.csv [--pairs 20] [--device auto]
        [--dtype float32] [--batch-size auto] [--threads N] [--skip-reference]
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from albert_audit.benchmarks import crows_pairs  # noqa: E402
from albert_audit.engine.benchmark_scoring import BenchmarkScorer  # noqa: E402
from albert_audit.engine.loading import load_model  # noqa: E402
from tests.toy_models import build_toy_albert  # noqa: E402

LARGE = {"embedding_size": 128, "hidden_size": 1024, "num_layers": 24, "num_heads": 16,
         "intermediate_size": 4096, "vocab_size": 30_000, "max_positions": 512}


def default_data() -> Path:
    """../shared/data beside the checkout (or one level up from a worktree)."""
    for base in (REPO.parent, REPO.parent.parent):
        path = base / "shared" / "data" / "crows_pairs" / "crows_pairs_anonymized.csv"
        if path.exists():
            return path
    return REPO.parent / "shared" / "data" / "crows_pairs" / "crows_pairs_anonymized.csv"


def reference_scores(loaded, pairs) -> np.ndarray:
    """metric.py's procedure: per pair, the stereotypical-direction sentence first in difflib; each shared
    token but the first and last masked alone; one forward pass per masked sentence; sum of log P."""
    tok, model, device = loaded.tokenizer, loaded.model, loaded.info.device
    out = np.zeros((len(pairs), 2))
    with torch.inference_mode():
        for i, row in enumerate(pairs.itertuples()):
            stereo = row.stereo_antistereo == "stereo"
            first, second = (row.sent_more, row.sent_less) if stereo else (row.sent_less, row.sent_more)
            ids1 = tok.encode(first.lower(), return_tensors="pt").to(device)
            ids2 = tok.encode(second.lower(), return_tensors="pt").to(device)
            ops = difflib.SequenceMatcher(None, [str(x) for x in ids1[0].tolist()],
                                          [str(x) for x in ids2[0].tolist()]).get_opcodes()
            t1 = [k for op in ops if op[0] == "equal" for k in range(op[1], op[2])]
            t2 = [k for op in ops if op[0] == "equal" for k in range(op[3], op[4])]
            s1 = s2 = 0.0
            for k in range(1, len(t1) - 1):
                for ids, pos, which in ((ids1, t1[k], 1), (ids2, t2[k], 2)):
                    masked = ids.clone()
                    masked[0, pos] = tok.mask_token_id
                    logits = model(masked).logits[0, pos]
                    value = torch.log_softmax(logits.float(), dim=-1)[ids[0, pos]].item()
                    if which == 1:
                        s1 += value
                    else:
                        s2 += value
            out[i] = (s1, s2) if stereo else (s2, s1)
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--pairs", type=int, default=20, help="first N pairs (0 = all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = crows_pairs.load_pairs(args.data)
    if args.pairs:
        pairs = pairs.head(args.pairs).reset_index(drop=True)
    words = sorted({w for text in list(pairs["sent_more"]) + list(pairs["sent_less"])
                    for w in re.findall(r"[a-z']+", text.lower())})
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = build_toy_albert(Path(tmp) / "large", words=words[:LARGE["vocab_size"] - 2000], seed=0, **LARGE)
        loaded = load_model(str(folder), device=args.device, dtype=args.dtype)
        print(f"model: albert-large shape, random weights, {loaded.info.num_parameters / 1e6:.1f}M parameters, "
              f"{loaded.info.device}, {loaded.info.dtype}; built in {time.perf_counter() - t0:.1f} s; "
              f"{len(pairs)} pairs; torch threads {torch.get_num_threads()}")
        scorer = BenchmarkScorer(loaded, batch_size=batch)
        crows_pairs.score(pairs.head(2), scorer)  # warm-up (kernels, allocator)
        sync(loaded.info.device)
        t0 = time.perf_counter()
        table = crows_pairs.score(pairs, scorer)
        sync(loaded.info.device)
        engine_s = time.perf_counter() - t0
        n_masked = int(2 * table["n_scored_tokens"].sum())
        print(f"engine:    {engine_s:8.2f} s  ({len(pairs) / engine_s:.3f} pairs/s, {n_masked} masked sentences)")
        if not args.skip_reference:
            t0 = time.perf_counter()
            ref = reference_scores(loaded, pairs)
            sync(loaded.info.device)
            ref_s = time.perf_counter() - t0
            diff = np.max(np.abs(ref - table[["sent_more_score", "sent_less_score"]].to_numpy()))
            print(f"reference: {ref_s:8.2f} s  ({len(pairs) / ref_s:.3f} pairs/s, one pass per masked sentence)")
            print(f"ratio reference / engine: {ref_s / engine_s:.2f}x (target >= 2x on CPU); "
                  f"largest score difference {diff:.2e} nats")
        print(f"metric on these pairs (random weights, not meaningful): {crows_pairs.metric_score(table):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
