"""Group-level statistical inference (pure numpy/scipy, seed passed in), to be wired into metrics/compare.

- :mod:`.exact`: sign-flip p-values, exact by meet-in-the-middle up to 20 units, Monte Carlo above.
- :mod:`.crossed`: the signed gap between two groups with templates and terms crossed; its scope.
- :mod:`.margin_verdicts`: material / negligible / below_margin / inconclusive, FDR per family, change classes.
- :mod:`.bias`: a debiased bias score whose interval covers a true 0.
- :mod:`.reference_slope`: reference alignment, the slope of the model's skew on a reference statistic's logit.
(Synthetic item values with a known truth, for the tests and scripts/simulate_verdicts.py: tests/simulate.py.)

docs/inference.md documents the methods and the measured size, power and coverage.
"""
