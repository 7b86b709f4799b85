"""Testing a personalization: A/B evaluation of a treatment on a segment, power and sample size.

:func:`ab_test` compares the conversion of a treatment arm with a control arm (one row per user
with its arm and whether it converted) and checks the split for a sample-ratio mismatch;
:func:`ab_test_counts` does the same from counts. :func:`sample_size` and
:func:`minimum_detectable_effect` plan a test; :func:`simulate_experiment` plants a known effect
so a notebook can show it recovered.

Statistics
----------
Rates ``p_c = x_c / n_c`` (control) and ``p_t = x_t / n_t`` (treatment); ``z = z_(1 - alpha/2)``.

Absolute lift ``p_t - p_c``
    CI by Newcombe's hybrid score method (1998, method 10), built from the two Wilson score
    intervals ``[l, u]``: ``d - sqrt((p_t - l_t)^2 + (u_c - p_c)^2)`` to
    ``d + sqrt((u_t - p_t)^2 + (p_c - l_c)^2)``. It keeps close to the nominal coverage for
    small counts and rates near 0 or 1, where the Wald interval ``d +- z * sqrt(p_t q_t / n_t +
    p_c q_c / n_c)`` (``ci="wald"``) is too narrow and can leave [-1, 1].
Relative lift ``p_t / p_c - 1``
    CI from the log of the risk ratio (Katz): ``exp(ln(p_t / p_c) +- z * sqrt((1 - p_t) / x_t +
    (1 - p_c) / x_c)) - 1``, asymmetric like the ratio itself; NaN when an arm has no
    conversion.
p-value
    Two-sided pooled two-proportion z-test, ``z = (p_t - p_c) / sqrt(p (1 - p) (1/n_t + 1/n_c))``
    with the pooled rate ``p``; when both arms convert at 0 % (or 100 %) there is no evidence of a
    difference and ``z = 0``, ``p = 1``. The test and the Newcombe interval are different
    approximations: at the edge of significance one may exclude 0 while the other does not.
Sample-ratio mismatch (SRM)
    Chi-square goodness-of-fit (1 degree of freedom) of the arm sizes against the planned share
    of treatment; ``srm`` is flagged when its p-value is below ``srm_alpha`` (0.001: a real
    mismatch gives a tiny p-value quickly, and a strict level keeps false alarms rare across many
    tests). An SRM means assignment or logging is broken, and the lift should not be trusted.

Sample size (``method="pooled"``, the default)
    The normal-approximation formula for two independent proportions (Fleiss, Levin & Paik;
    ``statsmodels.stats.proportion.samplesize_proportions_2indep_onetail``): with ``k = n_t /
    n_c``, ``p_t = p_c + mde`` and the pooled ``p = (p_c + k p_t) / (1 + k)``::

        n_c = (z_(1-alpha/2) sqrt(p q (1 + 1/k)) + z_power sqrt(p_c q_c + p_t q_t / k))^2 / mde^2

    ``method="arcsine"`` uses Cohen's effect size ``h = 2 asin(sqrt(p_t)) - 2 asin(sqrt(p_c))``:
    ``n_c = ((z_(1-alpha/2) + z_power) / h)^2 (1 + 1/k)`` (statsmodels' ``NormalIndPower`` with
    ``proportion_effectsize``). Both ignore the far tail of the two-sided test (its share of the
    power is negligible). Sizes are rounded up.

Examples
--------
>>> r = ab_test_counts(48, 80, 56, 70)
>>> round(r.abs_lift, 4), [round(v, 4) for v in r.abs_ci]
(0.2, [0.0524, 0.3339])
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import optimize, special

from .errors import ParameterError, SchemaError, check_columns, did_you_mean, format_allowed

__all__ = [
    "ABResult",
    "SampleSize",
    "ab_test",
    "ab_test_counts",
    "wilson_interval",
    "sample_size",
    "minimum_detectable_effect",
    "plot_ab",
    "simulate_experiment",
]

CIMethod = Literal["newcombe", "wald"]
SizeMethod = Literal["pooled", "arcsine"]
CI_METHODS: tuple[str, ...] = ("newcombe", "wald")
SIZE_METHODS: tuple[str, ...] = ("pooled", "arcsine")


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _prob(value: Any, name: str, *, what: str = "a number strictly between 0 and 1") -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(float(value)) or not 0.0 < float(value) < 1.0:
        raise ParameterError(name, value, what)
    return float(value)


def _positive(value: Any, name: str) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:
        raise ParameterError(name, value, "a positive number")
    return float(value)


def _count(value: Any, name: str, *, low: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ParameterError(name, value, f"a whole number >= {low}")
    return int(value)


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ParameterError(name, value, list(allowed))
    return value


def _z(alpha: float) -> float:
    return float(special.ndtri(1.0 - alpha / 2.0))


# --------------------------------------------------------------------------------------------
# A/B test
# --------------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion.

    Parameters
    ----------
    successes : int
        Conversions, ``0 <= successes <= n``.
    n : int
        Trials, >= 1.
    alpha : float, default=0.05
        ``1 - confidence``.

    Returns
    -------
    tuple of float
        ``(low, high)``, inside [0, 1].

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(56, 70)]
    [0.6918, 0.877]
    """
    x, m = _count(successes, "successes"), _count(n, "n", low=1)
    if x > m:
        raise ParameterError("successes", successes, message=f"successes ({x}) cannot exceed n ({m})")
    z = _z(_prob(alpha, "alpha"))
    p = x / m
    denom = 1.0 + z * z / m
    centre = (p + z * z / (2 * m)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ABResult:
    """Outcome of :func:`ab_test` / :func:`ab_test_counts` (see the module docstring for the formulas).

    Attributes
    ----------
    control, treatment : str
        Labels of the arms.
    n_control, n_treatment : int
        Users per arm.
    conversions_control, conversions_treatment : int
        Converted users per arm.
    rate_control, rate_treatment : float
        Conversion rates.
    abs_lift : float
        ``rate_treatment - rate_control``.
    abs_ci : tuple of float
        Its confidence interval (``ci_method``).
    rel_lift : float
        ``rate_treatment / rate_control - 1`` (NaN when the control rate is 0).
    rel_ci : tuple of float
        Its log-ratio confidence interval (NaN when an arm has no conversion).
    z : float
        Pooled two-proportion z statistic.
    p_value : float
        Two-sided p-value of the z-test.
    alpha : float
        ``1 - confidence`` of the intervals and the significance level.
    ci_method : str
        ``"newcombe"`` or ``"wald"``.
    expected_share : float
        Planned share of treatment among the two arms.
    observed_share : float
        ``n_treatment / (n_control + n_treatment)``.
    srm_chi2, srm_p_value : float
        Chi-square statistic and p-value of the sample-ratio check.
    srm_alpha : float
        Level below which ``srm`` is flagged.
    srm : bool
        Sample-ratio mismatch detected: do not trust the lift.
    mde : float
        Absolute minimum detectable effect of this test (its sizes and split, the control rate,
        ``alpha`` and ``power``; NaN when the control rate is 0 or 1).
    power : float
        Power used for ``mde``.
    """

    control: str
    treatment: str
    n_control: int
    n_treatment: int
    conversions_control: int
    conversions_treatment: int
    rate_control: float
    rate_treatment: float
    abs_lift: float
    abs_ci: tuple[float, float]
    rel_lift: float
    rel_ci: tuple[float, float]
    z: float
    p_value: float
    alpha: float
    ci_method: str
    expected_share: float
    observed_share: float
    srm_chi2: float
    srm_p_value: float
    srm_alpha: float
    srm: bool
    mde: float
    power: float

    @property
    def significant(self) -> bool:
        """``p_value < alpha`` (and no sample-ratio mismatch)."""
        return bool(self.p_value < self.alpha and not self.srm)

    def arms(self) -> pd.DataFrame:
        """Per arm: ``arm``, ``n_users``, ``conversions``, ``rate`` and its Wilson ``rate_low``, ``rate_high``."""
        rows = []
        for arm, n, x in ((self.control, self.n_control, self.conversions_control),
                          (self.treatment, self.n_treatment, self.conversions_treatment)):
            lo, hi = wilson_interval(x, n, alpha=self.alpha)
            rows.append({"arm": arm, "n_users": n, "conversions": x, "rate": x / n, "rate_low": lo, "rate_high": hi})
        return pd.DataFrame(rows).astype({"arm": "string", "n_users": "int64", "conversions": "int64"})

    def summary(self) -> pd.DataFrame:
        """One value per row (index ``metric``): rates, lifts with their CIs, p-values, SRM, MDE."""
        conf = f"{1 - self.alpha:.0%}"
        items = [
            ("rate_control", self.rate_control), ("rate_treatment", self.rate_treatment),
            ("abs_lift", self.abs_lift), (f"abs_lift_low ({conf})", self.abs_ci[0]),
            (f"abs_lift_high ({conf})", self.abs_ci[1]),
            ("rel_lift", self.rel_lift), (f"rel_lift_low ({conf})", self.rel_ci[0]),
            (f"rel_lift_high ({conf})", self.rel_ci[1]),
            ("p_value", self.p_value), ("srm_p_value", self.srm_p_value), ("srm", float(self.srm)),
            ("observed_share", self.observed_share), ("mde", self.mde),
        ]
        return pd.DataFrame({"value": [float(v) for _, v in items]}, index=pd.Index([k for k, _ in items], name="metric"))

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python values (for a run card or JSON)."""
        d = asdict(self)
        d["abs_ci"], d["rel_ci"] = list(self.abs_ci), list(self.rel_ci)
        return d


def ab_test_counts(
    conversions_control: int,
    n_control: int,
    conversions_treatment: int,
    n_treatment: int,
    *,
    alpha: float = 0.05,
    ci: CIMethod = "newcombe",
    expected_share: float = 0.5,
    srm_alpha: float = 0.001,
    power: float = 0.8,
    control: str = "control",
    treatment: str = "treatment",
) -> ABResult:
    """A/B evaluation from counts (say, the numbers a CRM or e-mail tool reports).

    Parameters
    ----------
    conversions_control, n_control : int
        Converted users and users of the control arm (``n_control >= 1``).
    conversions_treatment, n_treatment : int
        The same for the treatment arm.
    alpha, ci, expected_share, srm_alpha, power
        As in :func:`ab_test`; the formulas are in the module docstring.
    control, treatment : str, default="control", "treatment"
        Labels of the arms in the result.

    Returns
    -------
    ABResult

    Raises
    ------
    ParameterError
        Counts that are not whole numbers, an empty arm, conversions above the arm size, levels
        outside (0, 1), an unknown ``ci``.

    Examples
    --------
    >>> r = ab_test_counts(48, 80, 56, 70, ci="wald")
    >>> [round(v, 4) for v in r.abs_ci], round(r.p_value, 4)
    ([0.0575, 0.3425], 0.008)
    """
    x_c, n_c = _count(conversions_control, "conversions_control"), _count(n_control, "n_control", low=1)
    x_t, n_t = _count(conversions_treatment, "conversions_treatment"), _count(n_treatment, "n_treatment", low=1)
    for name, x, n in (("conversions_control", x_c, n_c), ("conversions_treatment", x_t, n_t)):
        if x > n:
            raise ParameterError(name, x, message=f"{name} ({x:,}) cannot exceed the arm's {n:,} users")
    a = _prob(alpha, "alpha")
    method = _choice(ci, "ci", CI_METHODS)
    share = _prob(expected_share, "expected_share", what="the planned share of treatment, strictly between 0 and 1")
    s_alpha = _prob(srm_alpha, "srm_alpha")
    pw = _prob(power, "power")
    z = _z(a)
    p_c, p_t = x_c / n_c, x_t / n_t
    d = p_t - p_c
    if method == "newcombe":
        l_c, u_c = wilson_interval(x_c, n_c, alpha=a)
        l_t, u_t = wilson_interval(x_t, n_t, alpha=a)
        abs_ci = (d - math.sqrt((p_t - l_t) ** 2 + (u_c - p_c) ** 2), d + math.sqrt((u_t - p_t) ** 2 + (p_c - l_c) ** 2))
    else:
        se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
        abs_ci = (d - z * se, d + z * se)
    rel = p_t / p_c - 1.0 if p_c > 0 else math.nan
    if x_c > 0 and x_t > 0:
        se_log = math.sqrt((1 - p_t) / x_t + (1 - p_c) / x_c)
        log_rr = math.log(p_t / p_c)
        rel_ci = (math.exp(log_rr - z * se_log) - 1.0, math.exp(log_rr + z * se_log) - 1.0)
    else:
        rel_ci = (math.nan, math.nan)
    pooled = (x_c + x_t) / (n_c + n_t)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    zstat = d / se0 if se0 > 0 else 0.0
    p_value = float(min(1.0, 2 * special.ndtr(-abs(zstat))))
    total = n_c + n_t
    exp_t, exp_c = total * share, total * (1 - share)
    chi2 = (n_t - exp_t) ** 2 / exp_t + (n_c - exp_c) ** 2 / exp_c
    srm_p = float(special.chdtrc(1, chi2))
    if 0 < p_c < 1:
        try:
            mde = minimum_detectable_effect(n_c, p_c, alpha=a, power=pw, ratio=n_t / n_c)
        except ParameterError:
            mde = math.nan
    else:
        mde = math.nan
    return ABResult(control=str(control), treatment=str(treatment), n_control=n_c, n_treatment=n_t,
                    conversions_control=x_c, conversions_treatment=x_t, rate_control=p_c, rate_treatment=p_t,
                    abs_lift=d, abs_ci=(float(abs_ci[0]), float(abs_ci[1])), rel_lift=rel,
                    rel_ci=(float(rel_ci[0]), float(rel_ci[1])), z=float(zstat), p_value=p_value, alpha=a,
                    ci_method=method, expected_share=share, observed_share=n_t / total, srm_chi2=float(chi2),
                    srm_p_value=srm_p, srm_alpha=s_alpha, srm=bool(srm_p < s_alpha), mde=float(mde), power=pw)


def _converted(values: pd.Series, col: str, frame: pd.DataFrame) -> np.ndarray:
    null = values.isna().to_numpy()
    if null.any():
        raise SchemaError([{"column": col, "check": "not_null", "count": int(null.sum()),
                            "examples": frame.loc[null].head(5),
                            "message": f"Column {col!r} has {int(null.sum()):,} missing value(s); every user is "
                            "converted (True / 1) or not (False / 0)"}], title="assignments failed validation")
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values.dtype):
        bad = ~values.isin([0, 1]).to_numpy()
        if not bad.any():
            return values.to_numpy(dtype="float64") == 1
    else:
        bad = np.ones(len(values), dtype=bool)
    raise SchemaError([{"column": col, "check": "binary", "count": int(bad.sum()), "examples": frame.loc[bad].head(5),
                        "message": f"Column {col!r} must be boolean or 0/1 ({values.dtype}); {int(bad.sum()):,} other "
                        "value(s)"}], title="assignments failed validation")


def ab_test(
    assignments: pd.DataFrame,
    *,
    group_col: str = "group",
    converted_col: str = "converted",
    control: str = "control",
    treatment: str = "treatment",
    alpha: float = 0.05,
    ci: CIMethod = "newcombe",
    expected_share: float = 0.5,
    srm_alpha: float = 0.001,
    power: float = 0.8,
    user_col: str | None = "user_id",
) -> ABResult:
    """Conversion lift of a treatment over a control, with CIs, p-value and a sample-ratio check.

    Restrict ``assignments`` to the segment first (say, the members of ``cart_abandoners`` who
    entered the test) so the lift is the treatment's effect *on that segment*.

    Parameters
    ----------
    assignments : DataFrame
        One row per user in the test: its arm and whether it converted
        (:func:`simulate_experiment` writes this shape).
    group_col : str, default="group"
        Arm column; every value must be ``control`` or ``treatment`` (filter other arms first).
    converted_col : str, default="converted"
        Outcome column, boolean or 0/1, no missing values.
    control, treatment : str, default="control", "treatment"
        Labels of the two arms in ``group_col``.
    alpha : float, default=0.05
        Significance level; the intervals are ``1 - alpha`` confidence intervals.
    ci : {"newcombe", "wald"}, default="newcombe"
        Interval of the absolute lift (module docstring).
    expected_share : float, default=0.5
        Planned share of users in the treatment arm (0.5 for a 50/50 split, 0.9 for 90/10).
    srm_alpha : float, default=0.001
        ``srm`` is flagged when the sample-ratio p-value is below it.
    power : float, default=0.8
        Power for the reported minimum detectable effect (``mde``).
    user_col : str or None, default="user_id"
        User column, checked for repeats (a user counted twice, or in both arms, breaks the
        test); ``None`` skips the check.

    Returns
    -------
    ABResult
        ``.summary()`` and ``.arms()`` give tables; ``.significant`` is ``p < alpha`` without SRM.

    Raises
    ------
    SchemaError
        A column is missing, the outcome is not binary or has gaps, a user repeats.
    ParameterError
        An arm label other than ``control`` / ``treatment`` (did-you-mean), an empty arm,
        ``control == treatment``, levels outside (0, 1).

    Examples
    --------
    >>> df = pd.DataFrame({"user_id": list("abcdefgh"), "group": ["control"] * 4 + ["treatment"] * 4,
    ...                    "converted": [0, 0, 0, 1, 0, 1, 1, 1]})
    >>> r = ab_test(df)
    >>> r.rate_control, r.rate_treatment, round(r.abs_lift, 2), round(r.p_value, 3)
    (0.25, 0.75, 0.5, 0.157)
    """
    if not isinstance(assignments, pd.DataFrame):
        raise ParameterError("assignments", type(assignments).__name__, message="assignments must be a pandas "
                             f"DataFrame with one row per user, got {type(assignments).__name__}")
    if not isinstance(control, str) or not isinstance(treatment, str) or control == treatment:
        raise ParameterError("treatment", treatment, message=f"control ({control!r}) and treatment ({treatment!r}) "
                             "must be two different labels")
    required = [group_col, converted_col] + ([user_col] if user_col is not None else [])
    check_columns(assignments.columns, required, what="assignments")
    if user_col is not None:
        dup = assignments[user_col].astype(str).duplicated(keep=False).to_numpy()
        if dup.any():
            raise SchemaError([{"column": user_col, "check": "unique", "count": int(dup.sum()),
                                "examples": assignments.loc[dup].head(6),
                                "message": f"{int(dup.sum()):,} row(s) share a {user_col!r} with another row; each user "
                                "must be assigned once (pass user_col=None if rows are not users)"}],
                              title="assignments failed validation")
    groups = assignments[group_col].astype(object).where(assignments[group_col].notna(), None)
    arms = [control, treatment]
    seen = [g for g in pd.unique(groups) if g not in arms]
    if seen:
        other = seen[0]
        raise ParameterError(group_col, other, arms, message=f"Column {group_col!r} holds {other!r}, which is neither "
                             f"control={control!r} nor treatment={treatment!r};{did_you_mean(str(other), arms)} "
                             f"Values found: {format_allowed([str(g) for g in pd.unique(groups)])}; filter other arms "
                             "out or pass control= / treatment=")
    conv = _converted(assignments[converted_col], converted_col, assignments)
    is_c = (groups == control).to_numpy()
    is_t = ~is_c
    for label, mask in ((control, is_c), (treatment, is_t)):
        if not mask.any():
            raise ParameterError(group_col, label, message=f"Arm {label!r} has no users in {group_col!r}")
    return ab_test_counts(int(conv[is_c].sum()), int(is_c.sum()), int(conv[is_t].sum()), int(is_t.sum()), alpha=alpha,
                          ci=ci, expected_share=expected_share, srm_alpha=srm_alpha, power=power, control=control,
                          treatment=treatment)


# --------------------------------------------------------------------------------------------
# Power
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSize:
    """Users needed for a two-arm conversion test (output of :func:`sample_size`).

    Attributes
    ----------
    n_control, n_treatment, n_total : int
        Users per arm (rounded up) and their sum.
    baseline, target : float
        Control rate and the treatment rate to detect (``baseline + absolute mde``).
    alpha, power, ratio : float
        The inputs (``ratio = n_treatment / n_control``).
    method : str
        ``"pooled"`` or ``"arcsine"``.
    exact_control : float
        ``n_control`` before rounding.
    """

    n_control: int
    n_treatment: int
    n_total: int
    baseline: float
    target: float
    alpha: float
    power: float
    ratio: float
    method: str
    exact_control: float


def _n_control(p_c: float, p_t: float, za: float, zb: float, ratio: float, method: str) -> float:
    """Exact (unrounded) control-arm size; ``za = z_(1-alpha/2)``, ``zb = z_power``."""
    k = ratio
    if method == "arcsine":
        h = 2 * math.asin(math.sqrt(p_t)) - 2 * math.asin(math.sqrt(p_c))
        return ((za + zb) / h) ** 2 * (1 + 1 / k)
    pbar = (p_c + k * p_t) / (1 + k)
    num = za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / k)) + zb * math.sqrt(p_c * (1 - p_c) + p_t * (1 - p_t) / k)
    if num <= 0:
        raise ParameterError("power", None, message="power is too low for this alpha: no sample size reaches it "
                             "(use a power above alpha, typically 0.8 or 0.9)")
    return num**2 / (p_t - p_c) ** 2


def _check_plan(baseline: Any, alpha: Any, power: Any, ratio: Any, method: Any) -> tuple[float, float, float, float, str]:
    b = _prob(baseline, "baseline", what="a conversion rate strictly between 0 and 1")
    a = _prob(alpha, "alpha")
    pw = _prob(power, "power")
    if pw <= a:
        raise ParameterError("power", power, message=f"power ({power!r}) must exceed alpha ({alpha!r}); typical "
                             "values are 0.8 or 0.9")
    k = _positive(ratio, "ratio")
    m = _choice(method, "method", SIZE_METHODS)
    return b, a, pw, k, m


def sample_size(
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    relative: bool = False,
    *,
    method: SizeMethod = "pooled",
) -> SampleSize:
    """Users per arm needed to detect a change of the conversion rate (two-sided test).

    Parameters
    ----------
    baseline : float
        Control conversion rate, in (0, 1).
    mde : float
        Effect to detect: absolute (0.02: 10 % -> 12 %) or, with ``relative=True``, relative
        (0.2: 10 % -> 12 %). Negative for a decrease; ``baseline + effect`` must stay in (0, 1).
    alpha : float, default=0.05
        Significance level (two-sided).
    power : float, default=0.8
        Probability of detecting the effect when it is real; above ``alpha``.
    ratio : float, default=1.0
        ``n_treatment / n_control`` (0.25 for an 80/20 split with the control the larger arm).
    relative : bool, default=False
        Read ``mde`` as relative to ``baseline``.
    method : {"pooled", "arcsine"}, default="pooled"
        Formula (module docstring); ``pooled`` matches statsmodels'
        ``samplesize_proportions_2indep_onetail``, ``arcsine`` its ``NormalIndPower``.

    Returns
    -------
    SampleSize
        ``n_control``, ``n_treatment`` (``ceil(ratio * exact n_control)``), ``n_total`` and the
        inputs.

    Raises
    ------
    ParameterError
        Rates or levels outside (0, 1), ``mde`` of 0 or leaving (0, 1), power not above alpha,
        non-positive ratio, unknown method, ``relative`` not a bool.

    Examples
    --------
    >>> s = sample_size(0.10, 0.02)
    >>> s.n_control, s.n_treatment, s.n_total
    (3841, 3841, 7682)
    >>> sample_size(0.10, 0.2, relative=True).n_control
    3841
    """
    b, a, pw, k, m = _check_plan(baseline, alpha, power, ratio, method)
    if not isinstance(relative, (bool, np.bool_)):
        raise ParameterError("relative", relative, [True, False])
    ok = isinstance(mde, (int, float, np.integer, np.floating)) and not isinstance(mde, (bool, np.bool_)) and \
        math.isfinite(float(mde)) and float(mde) != 0
    if not ok:
        raise ParameterError("mde", mde, "a non-zero number (absolute, or relative with relative=True)")
    effect = float(mde) * b if relative else float(mde)
    target = b + effect
    if not 0.0 < target < 1.0:
        raise ParameterError("mde", mde, message=f"baseline {b:g} {'x (1 + mde)' if relative else '+ mde'} = "
                             f"{target:g} is not a conversion rate strictly between 0 and 1")
    exact = _n_control(b, target, _z(a), float(special.ndtri(pw)), k, m)
    n_c = math.ceil(exact - 1e-9)
    n_t = math.ceil(k * exact - 1e-9)
    return SampleSize(n_control=n_c, n_treatment=n_t, n_total=n_c + n_t, baseline=b, target=target, alpha=a,
                      power=pw, ratio=k, method=m, exact_control=exact)


def minimum_detectable_effect(
    n_control: int,
    baseline: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    relative: bool = False,
    method: SizeMethod = "pooled",
) -> float:
    """Smallest increase of the conversion rate a test of this size detects with ``power``.

    The inverse of :func:`sample_size`: ``sample_size(baseline, mde, ...)`` asks for
    ``n_control`` users (before rounding). Solved numerically for ``pooled``, in closed form for
    ``arcsine``.

    Parameters
    ----------
    n_control : int
        Users in the control arm; the treatment arm has ``ratio * n_control``.
    baseline : float
        Control conversion rate, in (0, 1).
    alpha, power, ratio, method
        As in :func:`sample_size`.
    relative : bool, default=False
        Return the effect relative to ``baseline`` (0.2: +20 %) instead of absolute.

    Returns
    -------
    float
        The detectable increase (absolute rate points, or relative).

    Raises
    ------
    ParameterError
        Bad inputs, or a test too small to detect even a rise to a 100 % conversion rate.

    Examples
    --------
    >>> round(minimum_detectable_effect(3841, 0.10), 4)
    0.02
    """
    b, a, pw, k, m = _check_plan(baseline, alpha, power, ratio, method)
    n = _count(n_control, "n_control", low=2)
    if not isinstance(relative, (bool, np.bool_)):
        raise ParameterError("relative", relative, [True, False])
    too_small = ParameterError("n_control", n_control, message=f"{n:,} control users (ratio {k:g}) cannot detect "
                               f"any increase from {b:g} with power {pw:g}: even a rise to 100 % needs more users")
    za, zb = _z(a), float(special.ndtri(pw))
    if m == "arcsine":
        h = (za + zb) * math.sqrt((1 + 1 / k) / n)
        angle = math.asin(math.sqrt(b)) + h / 2
        if angle >= math.pi / 2:
            raise too_small
        effect = math.sin(angle) ** 2 - b
    else:
        hi = 1.0 - b
        top = 1.0 - 1e-12
        if _n_control(b, b + hi * top, za, zb, k, m) > n:
            raise too_small

        def gap(d: float) -> float:
            return math.log(_n_control(b, b + d, za, zb, k, m)) - math.log(n)

        effect = float(optimize.brentq(gap, hi * 1e-9, hi * top, xtol=1e-14, rtol=1e-12))
    return effect / b if relative else effect


# --------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------


def plot_ab(result: ABResult, *, ax: Iterable[Axes] | None = None) -> Figure:
    """Two panels: conversion per arm with Wilson intervals, and the absolute lift with its CI.

    Parameters
    ----------
    result : ABResult
        Output of :func:`ab_test`.
    ax : pair of Axes, optional
        Where to draw (left: arms, right: lift); a new figure by default.

    Returns
    -------
    Figure

    Examples
    --------
    >>> fig = plot_ab(ab_test_counts(48, 80, 56, 70))
    >>> len(fig.axes), fig.axes[1].get_xlabel()
    (2, 'treatment - control (conversion rate points)')
    """
    import matplotlib.pyplot as plt

    if not isinstance(result, ABResult):
        raise ParameterError("result", type(result).__name__, message="result must be the ABResult of ab_test")
    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.3]})
        left, right = axes
    else:
        pair = list(ax)
        if len(pair) != 2:
            raise ParameterError("ax", len(pair), message="ax must be two Axes (arms, lift)")
        left, right = pair
        fig = left.figure
    arms = result.arms()
    conf = f"{1 - result.alpha:.0%}"
    y = np.arange(len(arms))[::-1]
    colours = ["#7f8c8d", "#1f77b4"]
    for i, (_, row) in enumerate(arms.iterrows()):
        left.errorbar(row["rate"], y[i], xerr=[[row["rate"] - row["rate_low"]], [row["rate_high"] - row["rate"]]],
                      fmt="o", color=colours[i], capsize=4)
        left.annotate(f"{row['rate']:.2%}  ({int(row['conversions']):,} / {int(row['n_users']):,})",
                      (row["rate"], y[i]), textcoords="offset points", xytext=(0, 9), ha="center", fontsize=8)
    left.set_yticks(y, [str(a) for a in arms["arm"]])
    left.set_ylim(-0.7, len(arms) - 0.3)
    left.set_xlabel("conversion rate")
    left.set_title(f"Conversion per arm ({conf} Wilson intervals)")
    left.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.1%}"))

    lo, hi = result.abs_ci
    colour = "#2e7d32" if result.significant else "#555555"
    right.errorbar(result.abs_lift, 0, xerr=[[result.abs_lift - lo], [hi - result.abs_lift]], fmt="s", color=colour,
                   capsize=5)
    right.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
    right.set_yticks([])
    right.set_ylim(-1, 1)
    right.set_xlabel("treatment - control (conversion rate points)")
    right.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v * 100:+.1f}"))
    rel = "n/a" if math.isnan(result.rel_lift) else f"{result.rel_lift:+.1%}"
    right.annotate(f"{result.abs_lift * 100:+.2f} pts [{lo * 100:+.2f}, {hi * 100:+.2f}]; relative {rel}",
                   (result.abs_lift, 0), textcoords="offset points", xytext=(0, 12), ha="center", fontsize=8)
    srm = f"; SRM p={result.srm_p_value:.2g}: DO NOT TRUST" if result.srm else ""
    right.set_title(f"Lift, {conf} CI ({result.ci_method}); p={result.p_value:.3g}{srm}",
                    color="#b71c1c" if result.srm else "black")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


def simulate_experiment(
    users: Any,
    *,
    baseline: float | str,
    lift: float = 0.2,
    seed: int = 0,
    treatment_share: float = 0.5,
    user_col: str = "user_id",
    group_col: str = "group",
    converted_col: str = "converted",
) -> pd.DataFrame:
    """Plant a known treatment effect on a set of users: random arms, then conversions.

    A pure function of its inputs: it does **not** touch the event simulator
    (:func:`segkit.simulate.simulate_shop`) or any event log; it only draws, for the given users,
    an arm and an outcome, so that :func:`ab_test` can be shown to recover a lift that is known.
    Each user is assigned independently (treatment with probability ``treatment_share``, like a
    hash-based split, so arm sizes vary and the SRM check sees a correct split), then converts
    with probability ``p`` in control and ``p * (1 + lift)`` in treatment.

    Parameters
    ----------
    users : DataFrame, Series, Index, array or list
        The users in the test (say the members of one segment); a DataFrame needs ``user_col``.
        Ids must be unique.
    baseline : float or str
        Control conversion probability: one number in (0, 1) for everyone, or the name of a
        column of ``users`` holding each user's own probability (heterogeneous users, e.g. a
        propensity score).
    lift : float, default=0.2
        Planted relative lift (0.2: +20 %); > -1, and ``p * (1 + lift)`` must stay <= 1.
    seed : int, default=0
        Seed of the random generator (same seed, same output).
    treatment_share : float, default=0.5
        Probability of the treatment arm.
    user_col, group_col, converted_col : str
        Column names of the output (``user_col`` also of a ``users`` DataFrame).

    Returns
    -------
    DataFrame
        ``user_col`` (string), ``group_col`` (``"control"`` / ``"treatment"``), ``converted_col``
        (bool), in the order of ``users``. ``attrs`` records ``baseline``, ``lift``, ``seed``,
        ``treatment_share`` and ``true_abs_lift`` (the mean of ``p * lift`` over the users: the
        expected absolute lift).

    Raises
    ------
    ParameterError
        A probability outside its range, ``p * (1 + lift) > 1`` for some user, an unknown
        ``baseline`` column (did-you-mean), a non-integer seed.
    SchemaError
        Missing ``user_col``, repeated or null ids, missing probabilities.

    Examples
    --------
    >>> sim = simulate_experiment([f"u{i}" for i in range(20000)], baseline=0.1, lift=0.2, seed=1)
    >>> r = ab_test(sim)
    >>> r.abs_ci[0] < sim.attrs["true_abs_lift"] < r.abs_ci[1], r.srm
    (True, False)
    """
    if isinstance(users, pd.DataFrame):
        check_columns(users.columns, [user_col], what="users")
        ids = users[user_col]
    elif isinstance(users, (str, bytes)) or not isinstance(users, (Iterable, np.ndarray, pd.Index)):
        raise ParameterError("users", type(users).__name__, message="users must be a DataFrame with a user column or "
                             "a list / Series / Index of user ids")
    else:
        ids = pd.Series(users if isinstance(users, (pd.Series, pd.Index, np.ndarray)) else list(users))
    ids = pd.Series(ids).reset_index(drop=True)
    bad = ids.isna().to_numpy() | ids.astype(str).duplicated(keep=False).to_numpy()
    if bad.any():
        raise SchemaError([{"column": user_col, "check": "unique", "count": int(bad.sum()),
                            "examples": pd.DataFrame({user_col: ids[bad]}).head(5),
                            "message": f"{int(bad.sum()):,} user id(s) are null or repeated; each user is assigned "
                            "once"}], title="users failed validation")
    if isinstance(baseline, str):
        if not isinstance(users, pd.DataFrame):
            raise ParameterError("baseline", baseline, message=f"baseline={baseline!r} names a column, but users is "
                                 "not a DataFrame; pass a number or a DataFrame with that column")
        if baseline not in users.columns:
            cols = [str(c) for c in users.columns]
            raise ParameterError("baseline", baseline, cols, message=f"Column {baseline!r} not found in users;"
                                 f"{did_you_mean(baseline, cols)} Available: {format_allowed(cols)}")
        p = users[baseline].reset_index(drop=True)
        if not pd.api.types.is_numeric_dtype(p) or pd.api.types.is_bool_dtype(p):
            raise ParameterError("baseline", baseline, message=f"Column {baseline!r} must hold probabilities, got "
                                 f"{p.dtype}")
        p = p.astype("float64").to_numpy()
        if np.isnan(p).any():
            raise SchemaError([{"column": baseline, "check": "not_null", "count": int(np.isnan(p).sum()),
                                "examples": None, "message": f"Column {baseline!r} has missing probabilities"}],
                              title="users failed validation")
        if ((p < 0) | (p > 1)).any():
            raise ParameterError("baseline", baseline, message=f"Column {baseline!r} has values outside [0, 1]")
    else:
        p = np.full(len(ids), _prob(baseline, "baseline", what="a probability strictly between 0 and 1, or a column "
                                    "name of users"))
    ok = isinstance(lift, (int, float, np.integer, np.floating)) and not isinstance(lift, (bool, np.bool_)) and \
        math.isfinite(float(lift)) and float(lift) > -1
    if not ok:
        raise ParameterError("lift", lift, "a relative lift > -1 (0.2 for +20 %)")
    lift = float(lift)
    too_high = p * (1 + lift) > 1
    if too_high.any():
        raise ParameterError("lift", lift, message=f"baseline x (1 + lift) exceeds 1 for {int(too_high.sum()):,} user(s) "
                             f"(max baseline {p.max():g}); lower the lift or the baseline")
    share = _prob(treatment_share, "treatment_share")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ParameterError("seed", seed, "an integer")
    for name, value in (("user_col", user_col), ("group_col", group_col), ("converted_col", converted_col)):
        if not isinstance(value, str) or not value:
            raise ParameterError(name, value, "a column name")
    if len({user_col, group_col, converted_col}) < 3:
        raise ParameterError("converted_col", converted_col, message="user_col, group_col and converted_col must be "
                             "three different names")
    rng = np.random.default_rng(int(seed))
    treated = rng.random(len(ids)) < share
    prob = np.where(treated, p * (1 + lift), p)
    converted = rng.random(len(ids)) < prob
    out = pd.DataFrame({
        user_col: pd.array(ids.astype(str).to_numpy(dtype=object), dtype="string"),
        group_col: pd.array(np.where(treated, "treatment", "control").astype(object), dtype="string"),
        converted_col: converted,
    })
    out.attrs.update({"baseline": baseline if isinstance(baseline, str) else float(baseline), "lift": lift,
                      "seed": int(seed), "treatment_share": share,
                      "true_abs_lift": float(np.mean(p * lift)) if len(p) else math.nan})
    return out
