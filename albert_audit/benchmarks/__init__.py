"""Standard MLM bias benchmarks: loaders of their published formats, their published scoring rules, and
findings rows with intervals and tests.

Pure (pandas/numpy/scipy): the model side lives in :mod:`albert_audit.engine.benchmark_scoring`, which
turns the plans made here into scores. One module per benchmark:

- :mod:`.crows_pairs`: CrowS-Pairs (Nangia et al. 2020), pseudo-log-likelihood of the shared tokens;
- :mod:`.stereoset`: StereoSet intrasentence SS / LMS / ICAT (Nadeem et al. 2021);
- :mod:`.seat`: SEAT effect sizes with permutation p-values (May et al. 2019);
- :mod:`.honest`: HONEST hurtful-completion shares (Nozza et al. 2021);
- :mod:`.aul`: AUL / AULA all-unmasked likelihoods (Kaneko & Bollegala 2022);

with :mod:`.rows` (findings rows, proportions, q-values within a benchmark) and :mod:`.files` (readers
that turn every bad file into one AuditError line).
"""
