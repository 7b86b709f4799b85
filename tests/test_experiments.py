"""Tests of segkit.experiments: A/B evaluation, SRM, sample size and MDE, the planted-lift simulation.

Reference numbers: Newcombe (1998), Statistics in Medicine 17, 873-890, example 56/70 vs 48/80,
and values printed by statsmodels 0.15 (``confint_proportions_2indep``, ``proportions_ztest``,
``proportion_confint(method="wilson")``, ``samplesize_proportions_2indep_onetail``,
``NormalIndPower().solve_power`` with ``proportion_effectsize``), copied here as literals so the
tests do not need statsmodels.
"""
from __future__ import annotations

import doctest
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

import segkit.experiments as experiments_module  # noqa: E402
from segkit.errors import ParameterError, SchemaError  # noqa: E402
from segkit.experiments import (  # noqa: E402
    ABResult,
    ab_test,
    ab_test_counts,
    minimum_detectable_effect,
    plot_ab,
    sample_size,
    simulate_experiment,
    wilson_interval,
)

Z = stats.norm.ppf(0.975)


def frame(n_c: int, x_c: int, n_t: int, x_t: int) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": [f"u{i}" for i in range(n_c + n_t)],
        "group": ["control"] * n_c + ["treatment"] * n_t,
        "converted": [True] * x_c + [False] * (n_c - x_c) + [True] * x_t + [False] * (n_t - x_t),
    })


# --------------------------------------------------------------------------------------------
# Intervals and tests against published and statsmodels values
# --------------------------------------------------------------------------------------------


def test_newcombe_interval_matches_the_paper_and_statsmodels():
    r = ab_test_counts(48, 80, 56, 70)  # treatment 56/70 = 0.8, control 48/80 = 0.6
    assert r.abs_lift == pytest.approx(0.2)
    assert [round(v, 4) for v in r.abs_ci] == [0.0524, 0.3339]  # Newcombe 1998, method 10
    assert r.abs_ci == pytest.approx((0.05243147240236498, 0.33387265403690614), abs=1e-12)
    assert r.ci_method == "newcombe"


def test_wald_interval_matches_hand_and_statsmodels():
    r = ab_test_counts(48, 80, 56, 70, ci="wald")
    se = math.sqrt(0.8 * 0.2 / 70 + 0.6 * 0.4 / 80)
    assert r.abs_ci == pytest.approx((0.2 - Z * se, 0.2 + Z * se))
    assert r.abs_ci == pytest.approx((0.057504899149037114, 0.342495100850963), abs=1e-12)


def test_relative_lift_log_ratio_interval():
    r = ab_test_counts(48, 80, 56, 70)
    assert r.rel_lift == pytest.approx(0.8 / 0.6 - 1)
    se = math.sqrt(0.2 / 56 + 0.4 / 48)
    assert r.rel_ci == pytest.approx((4 / 3 * math.exp(-Z * se) - 1, 4 / 3 * math.exp(Z * se) - 1))
    assert r.rel_ci == pytest.approx((1.0766264227631928 - 1, 1.6512485112663873 - 1), abs=1e-12)


def test_pooled_z_test_matches_hand_and_statsmodels():
    r = ab_test_counts(48, 80, 56, 70)
    pooled = 104 / 150
    z = 0.2 / math.sqrt(pooled * (1 - pooled) * (1 / 80 + 1 / 70))
    assert r.z == pytest.approx(z) and r.z == pytest.approx(2.6501719512585336, abs=1e-12)
    assert r.p_value == pytest.approx(0.00804508136819656, abs=1e-12)
    assert r.significant


def test_wilson_interval_matches_statsmodels():
    assert wilson_interval(56, 70) == pytest.approx((0.6918335550374695, 0.8769526075163705), abs=1e-12)
    assert wilson_interval(0, 50) == pytest.approx((0.0, 0.07134759913335874), abs=1e-12)
    with pytest.raises(ParameterError, match="cannot exceed n"):
        wilson_interval(5, 4)


def test_no_conversions_in_either_arm():
    r = ab_test_counts(0, 100, 0, 100)
    assert (r.z, r.p_value, r.abs_lift) == (0.0, 1.0, 0.0)
    assert math.isnan(r.rel_lift) and all(math.isnan(v) for v in r.rel_ci)
    assert math.isnan(r.mde) and not r.significant


# --------------------------------------------------------------------------------------------
# Sample-ratio mismatch
# --------------------------------------------------------------------------------------------


def test_srm_flags_a_45_55_split_on_20k_users():
    r = ab_test(frame(9000, 900, 11000, 1100))
    assert r.srm_chi2 == pytest.approx(200.0)  # 2 * 1000^2 / 10000
    assert r.srm_p_value < 1e-40 and r.srm and not r.significant
    assert r.observed_share == 0.55


def test_srm_passes_a_planned_unequal_split_and_a_fair_one():
    assert not ab_test_counts(900, 9000, 100, 1000, expected_share=1000 / 10000).srm
    fair = ab_test_counts(500, 10050, 500, 9950)
    assert fair.srm_p_value == pytest.approx(stats.chi2.sf(2 * 50**2 / 10000, 1)) and not fair.srm
    assert ab_test_counts(500, 10050, 500, 9950, srm_alpha=0.5).srm


# --------------------------------------------------------------------------------------------
# ab_test on a frame
# --------------------------------------------------------------------------------------------


def test_ab_test_frame_equals_counts_and_reads_0_1_outcomes():
    df = frame(80, 48, 70, 56)
    r = ab_test(df)
    assert r == ab_test_counts(48, 80, 56, 70)
    assert ab_test(df.assign(converted=df["converted"].astype(int))) == r
    renamed = df.rename(columns={"group": "arm", "converted": "bought"}).replace({"control": "A", "treatment": "B"})
    r2 = ab_test(renamed, group_col="arm", converted_col="bought", control="A", treatment="B")
    assert (r2.control, r2.treatment, r2.abs_ci) == ("A", "B", r.abs_ci)


def test_ab_test_does_not_mutate_input():
    df = frame(10, 2, 10, 5)
    before = df.copy()
    ab_test(df)
    pd.testing.assert_frame_equal(df, before)


def test_ab_result_tables():
    r = ab_test_counts(48, 80, 56, 70)
    arms = r.arms()
    assert arms[["arm", "n_users", "conversions", "rate"]].values.tolist() == [["control", 80, 48, 0.6],
                                                                               ["treatment", 70, 56, 0.8]]
    assert arms.loc[1, ["rate_low", "rate_high"]].tolist() == pytest.approx(list(wilson_interval(56, 70)))
    s = r.summary()["value"]
    assert s["abs_lift"] == pytest.approx(0.2) and s["srm"] == 0.0 and "abs_lift_low (95%)" in s.index
    d = r.to_dict()
    assert d["abs_ci"] == list(r.abs_ci) and d["n_control"] == 80


def test_reported_mde_is_the_inverse_of_sample_size():
    r = ab_test_counts(400, 4000, 400, 4000, power=0.9)
    assert sample_size(0.1, r.mde, power=0.9).exact_control == pytest.approx(4000, rel=1e-6)


@pytest.mark.parametrize(
    ("df", "kwargs", "exc", "match"),
    [
        (frame(5, 1, 5, 1).drop(columns="converted"), {}, SchemaError, "Column 'converted' not found"),
        (frame(5, 1, 5, 1), {"group_col": "grp"}, SchemaError, r"Column 'grp' not found.*did you mean 'group'"),
        (frame(5, 1, 5, 1).replace({"treatment": "Treatment"}), {}, ParameterError,
         r"holds 'Treatment'.*did you mean 'treatment'"),
        (frame(5, 1, 5, 1).replace({"treatment": "holdout"}), {}, ParameterError, r"Values found: \['control', 'holdout'\]"),
        (frame(5, 1, 0, 0), {}, ParameterError, "Arm 'treatment' has no users"),
        (frame(5, 1, 5, 1).assign(converted=[1, 0, 2, 0, 0, 1, 1, 0, 0, 0]), {}, SchemaError, "must be boolean or 0/1"),
        (frame(5, 1, 5, 1).assign(converted=["yes"] * 10), {}, SchemaError, "must be boolean or 0/1"),
        (frame(5, 1, 5, 1).assign(converted=[1.0, np.nan] + [0.0] * 8), {}, SchemaError, "1 missing value"),
        (frame(5, 1, 5, 1).assign(user_id=["u0"] * 10), {}, SchemaError, "each user must be assigned once"),
        (frame(5, 1, 5, 1), {"treatment": "control"}, ParameterError, "must be two different labels"),
        (frame(5, 1, 5, 1), {"alpha": 1.5}, ParameterError, "alpha"),
        (frame(5, 1, 5, 1), {"ci": "exact"}, ParameterError, r"allowed: \['newcombe', 'wald'\]"),
        (frame(5, 1, 5, 1), {"expected_share": 1}, ParameterError, "planned share of treatment"),
        ("not a frame", {}, ParameterError, "must be a pandas DataFrame"),
    ],
)
def test_ab_test_errors(df, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ab_test(df, **kwargs)


def test_ab_test_user_col_none_skips_the_repeat_check():
    df = frame(5, 1, 5, 1).assign(user_id=["u0"] * 10)
    assert ab_test(df, user_col=None).n_control == 5


def test_ab_test_counts_errors():
    with pytest.raises(ParameterError, match="cannot exceed the arm's"):
        ab_test_counts(11, 10, 1, 10)
    with pytest.raises(ParameterError, match="n_treatment"):
        ab_test_counts(1, 10, 0, 0)
    with pytest.raises(ParameterError, match="conversions_control"):
        ab_test_counts(1.5, 10, 1, 10)


# --------------------------------------------------------------------------------------------
# Sample size and MDE
# --------------------------------------------------------------------------------------------


def test_sample_size_closed_form_by_hand():
    za, zb = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    p1, p2 = 0.10, 0.12
    pbar = 0.11
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / 0.02**2
    s = sample_size(0.10, 0.02)
    assert s.exact_control == pytest.approx(n) and s.n_control == math.ceil(n) == 3841
    assert (s.n_treatment, s.n_total, s.target) == (3841, 7682, pytest.approx(0.12))


@pytest.mark.parametrize(
    ("baseline", "mde", "kwargs", "statsmodels_n"),
    [
        (0.10, 0.02, {}, 3840.8474824362725),
        (0.10, 0.02, {"ratio": 2.0}, 2910.5128308523535),
        (0.20, 0.05, {}, 1093.7390457661652),
        (0.05, 0.01, {"alpha": 0.01, "power": 0.9, "ratio": 0.5}, 22969.849925001978),
        (0.10, 0.02, {"method": "arcsine"}, 3834.595739884031),
        (0.10, 0.02, {"method": "arcsine", "ratio": 2.0}, 2875.946804089152),
        (0.05, 0.01, {"method": "arcsine", "alpha": 0.01, "power": 0.9, "ratio": 0.5}, 23154.34755145215),
    ],
)
def test_sample_size_matches_statsmodels(baseline, mde, kwargs, statsmodels_n):
    s = sample_size(baseline, mde, **kwargs)
    assert s.exact_control == pytest.approx(statsmodels_n, rel=1e-4)
    assert s.n_control == math.ceil(statsmodels_n)
    assert s.n_treatment == math.ceil(s.ratio * s.exact_control)


def test_sample_size_relative_and_decrease():
    rel, absolute = sample_size(0.10, 0.2, relative=True), sample_size(0.10, 0.02)
    assert (rel.n_control, rel.n_treatment) == (absolute.n_control, absolute.n_treatment)
    assert rel.exact_control == pytest.approx(absolute.exact_control) and rel.target == pytest.approx(0.12)
    down = sample_size(0.12, -0.02)
    assert down.target == pytest.approx(0.10) and down.n_control == 3841  # the pooled formula is symmetric in arms


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0.0, 0.02), {}, "baseline"),
        ((0.1, 0.0), {}, "a non-zero number"),
        ((0.1, 0.95), {}, "is not a conversion rate strictly between 0 and 1"),
        ((0.1, 10.0), {"relative": True}, r"x \(1 \+ mde\)"),
        ((0.1, 0.02), {"power": 0.04}, "must exceed alpha"),
        ((0.1, 0.02), {"ratio": 0}, "ratio"),
        ((0.1, 0.02), {"method": "exact"}, r"allowed: \['pooled', 'arcsine'\]"),
        ((0.1, 0.02), {"relative": "yes"}, r"allowed: \[True, False\]"),
        ((0.1, True), {}, "a non-zero number"),
    ],
)
def test_sample_size_errors(args, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        sample_size(*args, **kwargs)


def test_mde_known_values():
    assert minimum_detectable_effect(3841, 0.10) == pytest.approx(0.02, abs=2e-6)
    assert minimum_detectable_effect(3841, 0.10, relative=True) == pytest.approx(0.2, abs=2e-5)
    # arcsine closed form: h = (za + zb) * sqrt(2 / n); statsmodels solves the two-tailed power exactly and
    # gets 0.1252903 at n = 1000 (the far tail adds ~3e-6 relative)
    h = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * math.sqrt(2 / 1000)
    assert h == pytest.approx(0.1252903452971738, rel=1e-5)
    expected = math.sin(math.asin(math.sqrt(0.1)) + h / 2) ** 2 - 0.1
    assert minimum_detectable_effect(1000, 0.1, method="arcsine") == pytest.approx(expected)


@settings(max_examples=30, deadline=None)
@given(st.integers(50, 200_000), st.floats(0.01, 0.9), st.sampled_from([0.25, 1.0, 3.0]),
       st.sampled_from(["pooled", "arcsine"]))
def test_mde_inverts_sample_size(n, baseline, ratio, method):
    try:
        d = minimum_detectable_effect(n, baseline, ratio=ratio, method=method)
    except ParameterError:
        return  # too small to detect anything below 100 %
    assert 0 < d < 1 - baseline
    assert sample_size(baseline, d, ratio=ratio, method=method).exact_control == pytest.approx(n, rel=1e-6)


def test_mde_errors():
    with pytest.raises(ParameterError, match="cannot detect any increase"):
        minimum_detectable_effect(3, 0.9)
    with pytest.raises(ParameterError, match="cannot detect any increase"):
        minimum_detectable_effect(3, 0.9, method="arcsine")
    with pytest.raises(ParameterError, match="n_control"):
        minimum_detectable_effect(1, 0.1)
    with pytest.raises(ParameterError, match="baseline"):
        minimum_detectable_effect(100, 1.0)


# --------------------------------------------------------------------------------------------
# Simulation: a planted lift is recovered
# --------------------------------------------------------------------------------------------

USERS = [f"u{i:05d}" for i in range(4000)]


def test_simulate_experiment_shape_and_determinism():
    sim = simulate_experiment(USERS, baseline=0.1, lift=0.3, seed=7)
    assert list(sim.columns) == ["user_id", "group", "converted"] and sim["user_id"].tolist() == USERS
    assert set(sim["group"]) == {"control", "treatment"} and sim["converted"].dtype == bool
    pd.testing.assert_frame_equal(sim, simulate_experiment(USERS, baseline=0.1, lift=0.3, seed=7))
    assert not sim.equals(simulate_experiment(USERS, baseline=0.1, lift=0.3, seed=8))
    assert sim.attrs == {"baseline": 0.1, "lift": 0.3, "seed": 7, "treatment_share": 0.5,
                         "true_abs_lift": pytest.approx(0.03)}


def test_planted_lift_is_recovered_within_the_ci_in_most_seeds():
    covered_abs = covered_rel = 0
    for seed in range(100):
        sim = simulate_experiment(USERS, baseline=0.1, lift=0.3, seed=seed)
        r = ab_test(sim)
        covered_abs += r.abs_ci[0] <= 0.03 <= r.abs_ci[1]
        covered_rel += r.rel_ci[0] <= 0.3 <= r.rel_ci[1]
    assert covered_abs >= 90 and covered_rel >= 90


def test_no_planted_lift_rarely_significant_and_no_srm():
    hits = srm = 0
    for seed in range(100):
        r = ab_test(simulate_experiment(USERS[:1000], baseline=0.2, lift=0.0, seed=seed))
        hits += r.p_value < 0.05
        srm += r.srm
    assert hits <= 12 and srm <= 2


def test_simulate_with_per_user_baseline_and_a_segment():
    membership = pd.DataFrame({"user_id": USERS[:4000], "segment": "cart_abandoners"})
    users = membership.assign(p=np.where(np.arange(4000) % 2 == 0, 0.05, 0.25))
    before = users.copy()
    sim = simulate_experiment(users, baseline="p", lift=0.5, seed=3, treatment_share=0.25)
    pd.testing.assert_frame_equal(users, before)
    assert sim.attrs["true_abs_lift"] == pytest.approx(0.075)
    r = ab_test(sim, expected_share=0.25)
    assert not r.srm and r.abs_ci[0] < 0.075 < r.abs_ci[1]
    assert 0.2 < r.observed_share < 0.3


@pytest.mark.parametrize(
    ("users", "kwargs", "exc", "match"),
    [
        (["a", "a"], {"baseline": 0.1}, SchemaError, "null or repeated"),
        (["a", None], {"baseline": 0.1}, SchemaError, "null or repeated"),
        (["a"], {"baseline": 0.9, "lift": 0.2}, ParameterError, r"exceeds 1 for 1 user"),
        (["a"], {"baseline": 0.1, "lift": -1.0}, ParameterError, "a relative lift > -1"),
        (["a"], {"baseline": 1.0}, ParameterError, "baseline"),
        (["a"], {"baseline": "p"}, ParameterError, "users is not a DataFrame"),
        (pd.DataFrame({"user_id": ["a"], "prob": [0.1]}), {"baseline": "probs"}, ParameterError,
         r"Column 'probs' not found in users;.*did you mean 'prob'"),
        (pd.DataFrame({"user_id": ["a"], "prob": [1.5]}), {"baseline": "prob"}, ParameterError, "outside"),
        (pd.DataFrame({"user_id": ["a"], "prob": ["x"]}), {"baseline": "prob"}, ParameterError, "must hold probabilities"),
        (pd.DataFrame({"uid": ["a"]}), {"baseline": 0.1}, SchemaError, r"Column 'user_id' not found"),
        (["a"], {"baseline": 0.1, "seed": 1.5}, ParameterError, "an integer"),
        (["a"], {"baseline": 0.1, "treatment_share": 0}, ParameterError, "treatment_share"),
        (["a"], {"baseline": 0.1, "group_col": "user_id"}, ParameterError, "three different names"),
        ("abc", {"baseline": 0.1}, ParameterError, "users must be a DataFrame"),
    ],
)
def test_simulate_experiment_errors(users, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        simulate_experiment(users, **kwargs)


# --------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------


def test_plot_ab_returns_a_figure_with_srm_warning():
    fig = plot_ab(ab_test(frame(9000, 900, 11000, 1100)))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert "DO NOT TRUST" in fig.axes[1].get_title()
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    assert plot_ab(ab_test_counts(48, 80, 56, 70), ax=axes) is fig
    plt.close(fig)
    with pytest.raises(ParameterError, match="must be the ABResult"):
        plot_ab({"abs_lift": 0.1})


def test_ab_result_is_frozen():
    r = ab_test_counts(1, 10, 2, 10)
    assert isinstance(r, ABResult)
    with pytest.raises(AttributeError):
        r.p_value = 0.0  # type: ignore[misc]


def test_docstring_examples_run():
    result = doctest.testmod(experiments_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    plt.close("all")
    assert result.failed == 0 and result.attempted >= 12
