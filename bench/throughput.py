"""Throughput of the scoring engine against the transformers fill-mask pipeline, in one process.

Builds an albert-large-v2-shaped model with random weights (24 layers sharing one set of weights, 128
embedding, 1024 hidden, 16 heads, 4096 intermediate, 30,000 vocabulary: the compute of the real model, whose
weights cannot be downloaded here) and scores the shipped gender_occupation probe set, prior variants
included, three ways:
  engine   albert_audit's batched engine (top-k fills + every target, text and prior sentences);
  (a)      the fill-mask pipeline called once per sentence, as the model card shows: top-k fills of the
           sentence, its targets, and the targets of its prior variant (three calls per item);
  (b)      the same pipeline calls made with the pipeline's own batch_size.
The baselines are slow, so they run on the first --baseline-items items; the engine runs on the same subset
(for the ratios) and on the whole set (for items/s). Prints items/s, ratios, achieved GFLOP/s, a measured
fp32 matmul peak of this machine and the peak RSS.

    python bench/throughput.py [--baseline-items 40] [--device auto] [--batch-size auto]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from albert_audit.engine.loading import load_model  # noqa: E402
from albert_audit.engine.scoring import score_items, term_piece_counter  # noqa: E402
from albert_audit.probeset import load_probe_set  # noqa: E402
from albert_audit.probeset.expand import expand_items  # noqa: E402
from tests.toy_models import build_toy_albert  # noqa: E402

LARGE = {"embedding_size": 128, "hidden_size": 1024, "num_layers": 24, "num_heads": 16,
         "intermediate_size": 4096, "vocab_size": 30000, "max_positions": 512}


def albert_flops_per_token(seq_len: float) -> float:
    """Forward FLOPs per token of the albert-large shape (2 FLOPs per multiply-add)."""
    h, i, e, v = LARGE["hidden_size"], LARGE["intermediate_size"], LARGE["embedding_size"], LARGE["vocab_size"]
    per_layer = 4 * h * h + 2 * h * i + 2 * seq_len * h
    return 2 * (LARGE["num_layers"] * per_layer + e * h + h * e + e * v)


def matmul_peak_gflops(device: str, size: int = 1024, repeats: int = 20) -> float:
    """Measured fp32 matmul throughput of this device."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(3):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def timed_engine(loaded, items, targets, batch_size):
    started = time.perf_counter()
    result = score_items(loaded, items, targets, top_k=10, batch_size=batch_size, progress=False)
    return time.perf_counter() - started, result


def timed_pipeline(fill, items, target_words, batch_size: int | None) -> float:
    texts, priors = list(items["text"]), list(items["prior_text"])
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    started = time.perf_counter()
    if batch_size is None:
        for text, prior in zip(texts, priors, strict=True):
            fill(text, top_k=10)
            fill(text, targets=target_words)
            fill(prior, targets=target_words)
    else:
        fill(texts, top_k=10, **kwargs)
        fill(texts, targets=target_words, **kwargs)
        fill(priors, targets=target_words, **kwargs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-items", type=int, default=40)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--pipeline-batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="each timing is the best of this many runs")
    args = parser.parse_args()
    batch_size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)

    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the pipeline warns once per target that it prefixes with "▁"

    probe_set = load_probe_set(REPO / "probes" / "gender_occupation.yaml")
    words = [t for g in probe_set.groups for t in g.terms] + list(probe_set.targets)
    for template in probe_set.templates:
        words += template.text.replace("[MASK]", " ").replace("<group>", " ").split()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_toy_albert(Path(tmp) / "albert-large-shaped", words=words, seed=0, **LARGE)
        loaded = load_model(str(folder), device=args.device, dtype="float32")
    device = loaded.info.device
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{loaded.info.num_parameters / 1e6:.1f}M parameters, vocab {loaded.info.vocab_size}")
    items = expand_items([probe_set], mask_token=loaded.info.mask_token,
                         count_term_pieces=term_piece_counter(loaded.tokenizer))
    targets = {probe_set.name: list(probe_set.targets)}
    subset = items.head(args.baseline_items)
    print(f"gender_occupation: {len(items)} items x {len(probe_set.targets)} targets (+ prior variants); "
          f"baselines on the first {len(subset)} items")

    timed_engine(loaded, subset.head(4), targets, batch_size)  # warm-up
    fill = pipeline("fill-mask", model=loaded.model, tokenizer=loaded.tokenizer, device=device)
    target_words = list(probe_set.targets)
    engine_subset_s = pipe_a_s = pipe_b_s = float("inf")
    for _ in range(args.repeats):  # interleaved, so that a busy moment of the machine hits all three
        engine_subset_s = min(engine_subset_s, timed_engine(loaded, subset, targets, batch_size)[0])
        pipe_a_s = min(pipe_a_s, timed_pipeline(fill, subset, target_words, None))
        pipe_b_s = min(pipe_b_s, timed_pipeline(fill, subset, target_words, args.pipeline_batch_size))
    engine_full_s, full = timed_engine(loaded, items, targets, batch_size)

    n_sub = len(subset)
    lengths = [len(s) for s in loaded.tokenizer(list(items["text"]) + list(items["prior_text"]))["input_ids"]]
    mean_len = sum(lengths) / len(lengths)
    tokens_scored = full.stats["unique_sequences"] * mean_len
    gflops = tokens_scored * albert_flops_per_token(mean_len) / engine_full_s / 1e9
    peak = matmul_peak_gflops(device)
    print(f"engine, whole set   : {len(items) / engine_full_s:8.2f} items/s ({engine_full_s:.1f} s, "
          f"{full.stats['unique_sequences']} unique sequences, batch sizes {full.stats['batch_sizes_used']})")
    print(f"engine, subset      : {n_sub / engine_subset_s:8.2f} items/s")
    print(f"(a) pipeline/sentence: {n_sub / pipe_a_s:8.2f} items/s")
    print(f"(b) pipeline batched : {n_sub / pipe_b_s:8.2f} items/s (batch_size={args.pipeline_batch_size})")
    print(f"ratio engine/(a)    : {pipe_a_s / engine_subset_s:8.2f}x   (bar: >= 5x on CPU, >= 50x on GPU)")
    print(f"ratio engine/(b)    : {pipe_b_s / engine_subset_s:8.2f}x   (bar: >= 1.5x)")
    print(f"achieved            : {gflops:8.1f} GFLOP/s; fp32 matmul peak {peak:.1f} GFLOP/s "
          f"({100 * gflops / peak:.0f}% of peak)")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS            : {rss_mb:8.0f} MB   (bar: < 1536 MB)")


if __name__ == "__main__":
    main()
