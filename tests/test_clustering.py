"""Tests of segkit.clustering: kernels against scikit-learn, the k rule on blobs with a known k,
determinism, every error path, profiles and names, crosstab and ARI, plots, and integration on a
small simulated shop (ARI against the planted personas) and on the UCI Online Shoppers table."""
from __future__ import annotations

import doctest
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.datasets import make_blobs
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_samples,
)

import segkit
import segkit.clustering as clustering_module
from segkit.clustering import (
    DEFAULT_FEATURES,
    BehaviorClusterer,
    ClusterResult,
    _ari,
    _names,
    _partition_stats,
    _silhouettes,
    cluster_users,
    plot_cluster_profiles,
    plot_elbow,
    plot_validation,
)
from segkit.errors import NotFittedError, ParameterError, SchemaError

ROOT = Path(__file__).resolve().parents[1]
FAST = {"stability_runs": 4, "n_bootstrap": 50}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _blobs(n: int = 400, k: int = 4, d: int = 3, seed: int = 0, std: float = 1.0) -> pd.DataFrame:
    X, y = make_blobs(n, n_features=d, centers=k, cluster_std=std, center_box=(-12, 12), random_state=seed)
    t = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
    t.insert(0, "user_id", [f"u{i:04d}" for i in range(n)])
    t["_truth"] = y
    return t


def _extra(t: pd.DataFrame) -> list[str]:
    return [c for c in t.columns if c.startswith("x")]


def _fit(t: pd.DataFrame, **kw) -> BehaviorClusterer:
    params = {"features": [], "extra_features": _extra(t), "k_range": (2, 7), **FAST, **kw}
    return BehaviorClusterer(**params).fit(t)


def _users(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small registry-shaped user table with every default feature."""
    rng = np.random.default_rng(seed)
    t = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "n_sessions": rng.integers(1, 5, n)})
    for name in DEFAULT_FEATURES:
        if name == "n_sessions":
            continue
        t[name] = rng.integers(0, 10, n).astype("int64")
    t["avg_session_s"] = rng.uniform(10, 600, n)
    t["avg_max_scroll_depth"] = rng.uniform(0, 100, n)
    t["max_scroll_depth"] = np.maximum(t["avg_max_scroll_depth"], rng.uniform(0, 100, n))
    t["conversion_rate"] = rng.uniform(0, 1, n)
    t["abandoned_carts"] = np.minimum(t["abandoned_carts"], t["n_sessions"])
    return t


# --------------------------------------------------------------------------------------------
# Kernels against scikit-learn
# --------------------------------------------------------------------------------------------


def test_silhouette_kernel_matches_sklearn():
    X, _ = make_blobs(300, n_features=4, centers=5, random_state=3)
    labels = [np.random.default_rng(0).integers(0, 3, 300), make_blobs(300, centers=5, random_state=3)[1]]
    labels.append(np.r_[np.zeros(299, dtype=np.int64), [1]])  # a singleton cluster scores 0
    for lab, ours in zip(labels, _silhouettes(X, labels)):
        np.testing.assert_allclose(ours, silhouette_samples(X, lab), atol=1e-9)


def test_partition_stats_match_sklearn():
    X, y = make_blobs(500, n_features=3, centers=4, random_state=1)
    stats = _partition_stats(X, y, 4)
    assert stats["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, y), rel=1e-9)
    assert stats["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(X, y), rel=1e-9)
    means = np.vstack([X[y == c].mean(axis=0) for c in range(4)])
    assert stats["inertia"] == pytest.approx(((X - means[y]) ** 2).sum(), rel=1e-9)


def test_ari_kernel_matches_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 4, 200), rng.integers(0, 6, 200)
        assert _ari(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    assert _ari(a, a) == 1.0


# --------------------------------------------------------------------------------------------
# Choosing k on data with a known k
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k_true", [3, 4, 5])
def test_blobs_recover_the_planted_k(k_true):
    t = _blobs(k=k_true, seed=k_true)
    m = _fit(t)
    assert m.chosen_k_ == k_true
    assert m.ari(t["_truth"].to_numpy()) > 0.95
    v = m.validation_
    assert list(v.index) == list(range(2, 8)) and v.index.name == "k"
    assert v["chosen"].sum() == 1 and v.loc[k_true, "chosen"] and v.loc[k_true, "candidate"]
    assert v.loc[k_true, "stability"] > 0.95
    assert m.knee_k_ is not None and v["knee"].sum() == 1
    assert f"k={k_true}" in m.reason_ and "silhouette" in m.reason_.lower() and "stability" in m.reason_.lower()


def test_validation_table_numbers_are_consistent():
    t = _blobs(600, k=4, seed=2)
    m = _fit(t, silhouette_sample=250)
    v = m.validation_
    assert (v["silhouette_n"] == 250).all() and m.silhouette_sample_size_ == 250
    assert ((v["silhouette_low"] <= v["silhouette"]) & (v["silhouette"] <= v["silhouette_high"])).all()
    assert (np.diff(v["inertia"].to_numpy()) < 0).all()  # more clusters, less inertia
    assert (v["stability_pairs"] == 6).all()  # 4 runs -> 6 pairs
    assert v.loc[m.chosen_k_, "silhouette"] >= v["silhouette"].max() - 0.05
    assert "250 sampled rows" in m.reason_


def test_stability_can_be_switched_off():
    m = _fit(_blobs(k=3, seed=5), stability_runs=0)
    assert m.chosen_k_ == 3 and m.validation_["stability"].isna().all()
    assert "stability not computed" in m.reason_


def test_reason_flags_a_choice_at_the_top_of_the_range():
    m = _fit(_blobs(k=5, seed=5), k_range=(2, 4))
    assert m.chosen_k_ == 4 and "top of k_range" in m.reason_


def test_fixed_n_clusters_is_validated_and_explained():
    t = _blobs(k=3, seed=4)
    m = _fit(t, n_clusters=9, k_range=(2, 5))
    assert m.chosen_k_ == 9 and list(m.validation_.index) == [2, 3, 4, 5, 9]
    assert m.reason_.startswith("k=9 was fixed by n_clusters") and "would choose k=3" in m.reason_
    only = _fit(t, n_clusters=3, k_range=None, stability_runs=0)
    assert list(only.validation_.index) == [3] and only.labels_.max() == 2


def test_deterministic_given_random_state():
    t = _blobs(k=4, seed=7, std=2.5)
    a, b = _fit(t, random_state=3), _fit(t, random_state=3)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    pd.testing.assert_frame_equal(a.validation_, b.validation_)
    assert a.reason_ == b.reason_ and a.names_ == b.names_
    c = _fit(t, random_state=4)
    assert c.chosen_k_ == a.chosen_k_


def test_clusters_are_ordered_by_size():
    t = pd.concat([_blobs(300, k=1, seed=1).assign(x0=lambda d: d.x0 + 30), _blobs(100, k=1, seed=2)],
                  ignore_index=True)
    t["user_id"] = [f"v{i}" for i in range(len(t))]
    m = _fit(t, n_clusters=2, k_range=None)
    assert np.bincount(m.labels_).tolist() == [300, 100]


@pytest.mark.parametrize("method", ["kmeans", "minibatch", "ward"])
def test_every_method_recovers_the_blobs(method):
    t = _blobs(k=4, seed=11)
    m = _fit(t, method=method)
    assert m.method_ == method and m.chosen_k_ == 4 and m.ari(t["_truth"].to_numpy()) > 0.95


def test_auto_switches_to_minibatch_on_large_tables(monkeypatch):
    monkeypatch.setattr(clustering_module, "MINIBATCH_ABOVE", 500)
    monkeypatch.setattr(clustering_module, "_MINIBATCH_POOL", 400)  # batches from a pool smaller than the table
    t = _blobs(900, k=3, seed=8)
    m = _fit(t, k_range=(2, 4), stability_sample=500)
    assert m.method_ == "minibatch" and m.stability_method_ == "kmeans"  # 400-row subsamples: exact k-means
    assert m.chosen_k_ == 3 and m.ari(t["_truth"].to_numpy()) > 0.95
    assert _fit(t, k_range=(2, 4), method="kmeans").method_ == "kmeans"


def test_ward_on_a_sample_assigns_the_rest():
    t = _blobs(600, k=3, seed=12)
    m = _fit(t, method="ward", ward_sample=150, k_range=(2, 5))
    assert m.chosen_k_ == 3 and m.ari(t["_truth"].to_numpy()) > 0.95
    assert m.stability_subsample_size_ <= 150
    # the rows outside the tree's sample are assigned to the nearest cluster mean
    assert (m.predict(t) == m.labels_).mean() > 0.99


def test_predict_reproduces_training_labels_and_assigns_new_rows():
    t = _blobs(k=3, seed=13)
    m = _fit(t)
    np.testing.assert_array_equal(m.predict(t), m.labels_)
    assert m.fit_predict(t).tolist() == m.labels_.tolist()
    new = t.iloc[[0, 1]].copy()
    assert m.predict(new).tolist() == m.labels_[:2].tolist()


def test_input_is_not_mutated():
    t = _users()
    before = t.copy()
    BehaviorClusterer(k_range=(2, 3), **FAST).fit(t)
    pd.testing.assert_frame_equal(t, before)


def test_get_params_round_trip():
    m = BehaviorClusterer(n_clusters=4, scaler="robust")
    assert m.get_params()["n_clusters"] == 4 and not hasattr(m, "labels_")
    assert BehaviorClusterer(**m.get_params()).get_params() == m.get_params()


# --------------------------------------------------------------------------------------------
# Feature selection and transforms
# --------------------------------------------------------------------------------------------


def test_per_session_rates_and_log1p():
    t = _users()
    m = BehaviorClusterer(features=["n_sessions", "product_views", "conversion_rate"], n_clusters=2, k_range=None,
                          stability_runs=0).fit(t)
    assert m.feature_names_ == ["n_sessions", "product_views_per_session", "conversion_rate"]
    assert m.units_ == {"n_sessions": "count", "product_views_per_session": "count", "conversion_rate": "share"}
    z = m.preprocess(t)
    expected = np.log1p(t["product_views"] / t["n_sessions"])
    np.testing.assert_allclose(z["product_views_per_session"], (expected - expected.mean()) / expected.std(ddof=0))
    share = t["conversion_rate"]  # a share: no log
    np.testing.assert_allclose(z["conversion_rate"], (share - share.mean()) / share.std(ddof=0))
    # mean profiles are back in per-session units
    means = m.profiles(kind="mean")
    lab = m.labels_
    rate = (t["product_views"] / t["n_sessions"]).to_numpy()
    assert means.loc[0, "product_views_per_session"] == pytest.approx(np.expm1(np.log1p(rate[lab == 0]).mean()))


def test_totals_without_per_session_and_without_log():
    t = _users()
    m = BehaviorClusterer(features=["product_views"], per_session=False, transform=None, n_clusters=2, k_range=None,
                          stability_runs=0).fit(t.drop(columns="n_sessions"))
    assert m.feature_names_ == ["product_views"]
    pv = t["product_views"]
    np.testing.assert_allclose(m.preprocess(t)["product_views"], (pv - pv.mean()) / pv.std(ddof=0))


def test_extra_features_with_units_get_log1p():
    t = _users().assign(markov_p=lambda d: np.linspace(0, 1, len(d)), pattern_hits=lambda d: np.arange(len(d)))
    m = BehaviorClusterer(features=["purchases"], extra_features={"markov_p": "share", "pattern_hits": "count"},
                          n_clusters=2, k_range=None, stability_runs=0).fit(t)
    assert m.feature_names_ == ["purchases_per_session", "markov_p", "pattern_hits"]
    hits = np.log1p(t["pattern_hits"])
    np.testing.assert_allclose(m.preprocess(t)["pattern_hits"], (hits - hits.mean()) / hits.std(ddof=0))


def test_missing_values_are_filled_with_the_median():
    t = _users()
    t.loc[:4, "searches"] = np.nan
    m = BehaviorClusterer(n_clusters=2, k_range=None, stability_runs=0).fit(t)
    assert m.n_missing_["searches_per_session"] == 5
    filled = m.fill_values_["searches_per_session"]
    assert np.allclose(m.preprocess(t.iloc[:5])["searches_per_session"],
                       (filled - m.center_["searches_per_session"]) / m.scale_["searches_per_session"])


def test_robust_scaler_falls_back_to_sd_when_the_iqr_is_zero():
    t = pd.DataFrame({"a": [0.0] * 40 + [3.0, 5.0, 8.0, 9.0], "b": np.linspace(0, 10, 44)})
    m = BehaviorClusterer(features=[], extra_features=["a", "b"], scaler="robust", n_clusters=2, k_range=None,
                          stability_runs=0).fit(t)
    assert m.center_["a"] == 0 and m.scale_["a"] == pytest.approx(1.349 * t["a"].std(ddof=0))
    q75, q25 = np.percentile(t["b"], [75, 25])
    assert m.scale_["b"] == pytest.approx(q75 - q25) and m.center_["b"] == pytest.approx(t["b"].median())


def test_pca_reduces_the_model_space():
    t = _blobs(k=3, d=6, seed=15)
    m = _fit(t, pca=2, n_clusters=3)
    assert m.cluster_centers_.shape == (3, 2) and m.pca_.n_components_ == 2
    assert m.ari(t["_truth"].to_numpy()) > 0.95
    assert _fit(t, pca=0.9).pca_.explained_variance_ratio_.sum() >= 0.9


def test_ids_from_the_index_when_there_is_no_user_column():
    t = _blobs(k=2, seed=1).drop(columns="user_id").set_index(pd.Index([f"s{i}" for i in range(400)]))
    m = _fit(t, k_range=(2, 3))
    assert m.assignments()["user_id"].iloc[0] == "s0"


# --------------------------------------------------------------------------------------------
# Profiles, names, crosstab, ARI
# --------------------------------------------------------------------------------------------


def _two_groups() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 80
    high = np.r_[np.ones(n // 2), np.zeros(n // 2)].astype(bool)
    t = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "n_sessions": 2})
    t["blog_views"] = np.where(high, rng.poisson(12, n), rng.poisson(0.2, n))
    t["deep_reads"] = np.where(high, rng.poisson(6, n), rng.poisson(0.1, n))
    t["purchases"] = np.where(high, rng.poisson(0.1, n), rng.poisson(3, n))
    return t


def test_profiles_top_features_and_names_reflect_the_clusters():
    t = _two_groups()
    m = BehaviorClusterer(features=["blog_views", "deep_reads", "purchases"], n_clusters=2, k_range=None,
                          stability_runs=0).fit(t)
    z = m.profiles()
    assert list(z.index) == [0, 1] and z.index.name == "cluster"
    assert list(z.columns) == ["blog_views_per_session", "deep_reads_per_session", "purchases_per_session"]
    reader = int(np.argmax(z["blog_views_per_session"]))
    assert z.loc[reader, "blog_views_per_session"] > 0.8 and z.loc[reader, "purchases_per_session"] < -0.5
    top = m.top_features(2)
    assert len(top) == 4 and top["rank"].tolist() == [1, 2, 1, 2]
    first = top[top["cluster"] == reader].iloc[0]
    assert first["direction"] == "high" and first["feature"] in {"blog_views_per_session", "deep_reads_per_session"}
    name = m.names_[reader]
    assert name.startswith("high ") and ("blog_views" in name or "deep_reads" in name) and "_per_session" not in name
    assert len(set(m.names_)) == 2
    s = m.summary()
    assert s["n_users"].tolist() == [40, 40] and s["share"].sum() == pytest.approx(1.0)
    assert z.attrs["n_users"] == [40, 40] and z.attrs["names"] == m.names_


def test_names_are_deduplicated_by_adding_features():
    z = pd.DataFrame({"a": [2.0, 1.5, -1.0], "b": [1.0, 1.2, 0.1], "c": [0.5, -0.9, 0.0]})
    names = _names(z)
    assert names[0] == "high a, high b, high c" and names[1] == "high a, high b, low c"
    assert names[2] == "low a, high b"
    same = pd.DataFrame({"a": [1.0, 1.0], "b": [0.5, 0.5]})
    assert _names(same) == ["high a, high b", "high a, high b (2)"]


def test_profiles_of_new_rows_use_the_training_population():
    t = _two_groups()
    m = BehaviorClusterer(features=["blog_views", "deep_reads", "purchases"], n_clusters=2, k_range=None,
                          stability_runs=0).fit(t)
    pd.testing.assert_frame_equal(m.profiles(t), m.profiles(), check_exact=False)


def test_crosstab_against_a_membership_table():
    t = _two_groups()
    m = BehaviorClusterer(features=["blog_views", "deep_reads", "purchases"], n_clusters=2, k_range=None,
                          stability_runs=0).fit(t)
    buyers = t.loc[t["purchases"] > 0, "user_id"]
    membership = pd.DataFrame({"user_id": list(buyers) + ["u0", "u0", "ghost"],
                               "segment": ["buyers"] * len(buyers) + ["readers", "readers", "readers"]})
    membership.attrs["segments"] = ["readers", "buyers", "empty"]
    ct = m.crosstab(membership)
    assert list(ct.columns) == ["readers", "buyers", "empty", "(no segment)", "n_users"]
    assert list(ct.index) == m.names_ and ct.shape == (2, 5)
    assert ct["n_users"].tolist() == [40, 40] and ct["empty"].sum() == 0
    assert ct["readers"].sum() == 1  # u0 counted once, the unknown member ignored
    assert ct["buyers"].sum() == buyers.nunique() and ct.attrs["n_unmatched"] == 1
    in_none = ~t["user_id"].isin(membership["user_id"])
    assert ct["(no segment)"].sum() == int(in_none.sum())
    shares = m.crosstab(membership, normalize=True)
    assert shares["buyers"].tolist() == pytest.approx((ct["buyers"] / ct["n_users"]).tolist())


def test_ari_from_a_truth_table_or_an_array():
    t = _blobs(k=3, seed=21)
    m = _fit(t)
    truth = pd.DataFrame({"user_id": t["user_id"], "persona": t["_truth"].map({0: "a", 1: "b", 2: "c"})})
    assert m.ari(truth) == pytest.approx(m.ari(t["_truth"].to_numpy())) and m.ari(truth) > 0.95
    partial = truth.iloc[:100].copy()
    partial.loc[:10, "persona"] = None
    assert 0.9 < m.ari(partial) <= 1.0
    with pytest.raises(SchemaError, match="'persona' not found in truth table"):
        m.ari(truth.rename(columns={"persona": "personas"}))
    with pytest.raises(ParameterError, match="one label per training row"):
        m.ari([0, 1, 2])


def test_cluster_users_returns_everything():
    t = _blobs(k=3, seed=22)
    res = cluster_users(t, features=[], extra_features=_extra(t), k_range=(2, 5), **FAST)
    assert isinstance(res, ClusterResult) and res.chosen_k == 3 == res.model.chosen_k_
    assert list(res.assignments.columns) == ["user_id", "cluster", "cluster_name"]
    assert res.summary["n_users"].sum() == len(t) and res.reason == res.model.reason_
    assert res.names == res.model.names_ and res.profiles.shape == (3, 3)


# --------------------------------------------------------------------------------------------
# Bad input and unfitted use
# --------------------------------------------------------------------------------------------


def test_fewer_rows_than_k():
    t = _blobs(8, k=2, seed=1)
    with pytest.raises(ParameterError, match=r"8 row\(s\), too few for k=10"):
        BehaviorClusterer(features=[], extra_features=_extra(t)).fit(t)
    with pytest.raises(ParameterError, match="too few for k=9 clusters") as e:
        BehaviorClusterer(features=[], extra_features=_extra(t), n_clusters=9, k_range=None).fit(t)
    assert e.value.name == "n_clusters"
    dup = pd.DataFrame({"a": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]})
    with pytest.raises(ParameterError, match=r"only 2 distinct row\(s\)"):
        BehaviorClusterer(features=[], extra_features=["a"], k_range=(2, 3), stability_runs=0).fit(dup)
    with pytest.raises(ParameterError, match="Stability subsamples of 8 rows"):
        BehaviorClusterer(features=[], extra_features=_extra(t), k_range=(2, 8), stability_runs=2).fit(
            _blobs(10, k=2, seed=1))


def test_constant_and_all_missing_features_are_reported_together():
    t = _users().assign(purchases=3, searches=np.nan)
    with pytest.raises(SchemaError, match="cannot be clustered: 2 problem") as e:
        BehaviorClusterer(features=["product_views", "purchases", "searches"], per_session=False, n_clusters=2,
                          k_range=None).fit(t)
    msg = str(e.value)
    assert "'purchases' is constant (every non-missing value is 1.38629" in msg
    assert "'searches' is missing on every row" in msg and e.value.columns == ["purchases", "searches"]
    # a count that is the same per session is constant after the per-session step
    same_rate = _users().assign(purchases=lambda d: d["n_sessions"] * 2)
    with pytest.raises(SchemaError, match="'purchases_per_session' is constant"):
        BehaviorClusterer(features=["product_views", "purchases"], n_clusters=2, k_range=None).fit(same_rate)


def test_unknown_and_wrong_kind_features():
    t = _users()
    with pytest.raises(ParameterError, match=r"Unknown user-level feature 'prodct_views'; did you mean 'product_views'\?"):
        BehaviorClusterer(features=["prodct_views"]).fit(t)
    with pytest.raises(ParameterError, match="'n_product_views' is a session-level feature"):
        BehaviorClusterer(features=["n_product_views"]).fit(t)
    with pytest.raises(ParameterError, match="'primary_device' is a label"):
        BehaviorClusterer(features=["primary_device"]).fit(t)
    with pytest.raises(ParameterError, match="'purchases' is a registry feature; put it in features"):
        BehaviorClusterer(features=[], extra_features=["purchases"]).fit(t)
    with pytest.raises(ParameterError, match="features and extra_features are both empty"):
        BehaviorClusterer(features=[]).fit(t)
    with pytest.raises(ParameterError, match="'features' lists 'purchases' twice"):
        BehaviorClusterer(features=["purchases", "purchases"]).fit(t)
    with pytest.raises(ParameterError, match="a list of column names"):
        BehaviorClusterer(features="purchases").fit(t)
    with pytest.raises(ParameterError, match=r"'extra_features.m' got 'probability'"):
        BehaviorClusterer(features=[], extra_features={"m": "probability"}).fit(t)


def test_bad_columns_are_schema_errors():
    t = _users()
    with pytest.raises(SchemaError, match=r"Column 'revenue' not found in feature table"):
        BehaviorClusterer(features=["revenue"]).fit(t)
    with pytest.raises(SchemaError, match=r"Column 'n_sessions' not found"):
        BehaviorClusterer(features=["purchases"]).fit(t.drop(columns="n_sessions"))
    with pytest.raises(SchemaError, match="'n_sessions' must be a positive number on every row"):
        BehaviorClusterer(features=["purchases"]).fit(t.assign(n_sessions=0))
    with pytest.raises(SchemaError, match="'label' is not numeric"):
        BehaviorClusterer(features=[], extra_features=["label"]).fit(t.assign(label="x"))
    with pytest.raises(SchemaError, match=r"'purchases' \(unit 'count'\) has 1 negative value"):
        BehaviorClusterer(features=["purchases"]).fit(t.assign(purchases=lambda d: d["purchases"].where(d.index > 0, -1)))
    with pytest.raises(SchemaError, match=r"'x' has 1 infinite value"):
        BehaviorClusterer(features=[], extra_features=["x"]).fit(t.assign(x=[np.inf] + [1.0] * (len(t) - 1)))
    with pytest.raises(SchemaError, match="must be unique and not null"):
        BehaviorClusterer().fit(pd.concat([t, t.iloc[:1]]))
    with pytest.raises(SchemaError, match=r"'searches' has 2 missing value\(s\) \(missing='error'"):
        BehaviorClusterer(missing="error").fit(t.assign(searches=t["searches"].astype(float).where(t.index > 1)))
    with pytest.raises(ParameterError, match="X must be a feature table"):
        BehaviorClusterer().fit([[1, 2], [3, 4]])


@pytest.mark.parametrize(("params", "match"), [
    ({"method": "kmean"}, r"'method' got 'kmean'; allowed: \['auto', 'kmeans', 'minibatch', 'ward', 'spark_kmeans'\] "
                          r"did you mean 'kmeans'"),
    ({"scaler": "minmax"}, r"'scaler' got 'minmax'"),
    ({"transform": "log"}, r"'transform' got 'log'"),
    ({"n_clusters": 1}, r"'n_clusters' got 1; allowed: an integer >= 2"),
    ({"n_clusters": "six"}, r"'n_clusters' got 'six'"),
    ({"k_range": (5, 3)}, r"'k_range' got \(5, 3\)"),
    ({"k_range": None}, r"k_range=None needs an integer n_clusters"),
    ({"stability_runs": 1}, r"use 0 \(no stability\) or at least 2"),
    ({"stability_fraction": 1.0}, r"'stability_fraction' got 1.0; allowed: a number in \(0, 1\)"),
    ({"min_stability": 1.5}, r"'min_stability' got 1.5"),
    ({"pca": 0}, r"'pca' got 0"),
    ({"pca": 1.5}, r"'pca' got 1.5"),
    ({"method": "ward", "n_init": 3}, r"Ward clustering is deterministic"),
    ({"method": "kmeans", "batch_size": 100}, r"'batch_size' is for method='minibatch'"),
    ({"method": "kmeans", "ward_sample": 100}, r"'ward_sample' is for method='ward'"),
    ({"missing": "drop"}, r"'missing' got 'drop'"),
    ({"random_state": -1}, r"'random_state' got -1"),
    ({"n_jobs": 0}, r"'n_jobs' got 0"),
    ({"per_session": "yes"}, r"'per_session' got 'yes'"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ParameterError, match=match):
        BehaviorClusterer(**params).fit(_users())


@pytest.mark.parametrize(("params", "match"), [
    ({"n_init": 3}, r"'n_init' sets k-means starts.*'spark_kmeans' runs Spark's single k-means\|\| initialisation"),
    ({"batch_size": 100}, r"'batch_size' is for method='minibatch'.*not method='spark_kmeans'"),
    ({"ward_sample": 100}, r"'ward_sample' is for method='ward', not method='spark_kmeans'"),
])
def test_spark_kmeans_rejects_the_options_of_other_methods(params, match):
    # raised before the features are prepared or Spark starts
    with pytest.raises(ParameterError, match=match) as info:
        BehaviorClusterer(method="spark_kmeans", **params).fit(_users())
    assert info.value.name == next(iter(params))


def test_spark_kmeans_without_pyspark_says_what_to_install(monkeypatch):
    from segkit.spark import SparkUnavailableError

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(SparkUnavailableError, match=r"pyspark, which is not installed.*segkit\[spark\]"):
        _fit(_blobs(k=2), method="spark_kmeans")


def test_pca_larger_than_the_features():
    t = _blobs(k=2, seed=1)
    with pytest.raises(ParameterError, match="asks for 5 components but there are only 3 features"):
        _fit(t, pca=5)


def test_cluster_users_rejects_unknown_parameters():
    with pytest.raises(ParameterError, match=r"Unknown parameter 'n_cluster' of cluster_users; did you mean 'n_clusters'\?"):
        cluster_users(_users(), n_cluster=3)


def test_unfitted_use_raises_not_fitted():
    m = BehaviorClusterer()
    for call in (lambda: m.predict(_users()), m.profiles, m.top_features, m.summary, m.assignments,
                 lambda: m.crosstab(pd.DataFrame({"user_id": [], "segment": []})), lambda: m.ari([1]),
                 lambda: m.preprocess(_users()), lambda: plot_elbow(m), lambda: plot_validation(m)):
        with pytest.raises(NotFittedError, match="BehaviorClusterer is not fitted yet; call fit"):
            call()


def test_use_after_fit_checks_its_inputs():
    t = _blobs(k=2, seed=1)
    m = _fit(t, k_range=(2, 3))
    with pytest.raises(SchemaError, match="'x1' not found in feature table"):
        m.predict(t.drop(columns="x1"))
    with pytest.raises(SchemaError, match="'segment' not found in membership table"):
        m.crosstab(pd.DataFrame({"user_id": ["u0001"]}))
    with pytest.raises(ParameterError, match="membership must be a pandas DataFrame"):
        m.crosstab([("u1", "s")])
    with pytest.raises(ParameterError, match="'kind' got 'median'"):
        m.profiles(kind="median")
    with pytest.raises(ParameterError, match="'n' got 0"):
        m.top_features(0)


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def test_plots_return_figures():
    t = _blobs(k=3, seed=31)
    res = cluster_users(t, features=[], extra_features=_extra(t), k_range=(2, 5), **FAST)
    m = res.model
    for fig in (plot_elbow(m), plot_elbow(res), plot_elbow(m.validation_), plot_validation(m), plot_validation(res),
                plot_cluster_profiles(m), plot_cluster_profiles(res), plot_cluster_profiles(m.profiles())):
        assert isinstance(fig, Figure)
    assert len(plot_validation(m).axes) == 4
    heat = plot_cluster_profiles(m)
    assert any("(n=" in lbl.get_text() for lbl in heat.axes[0].get_yticklabels())
    _, ax = plt.subplots()
    assert plot_elbow(m, ax=ax) is ax.figure
    with pytest.raises(ParameterError, match="draws z-scores"):
        plot_cluster_profiles(m.profiles(kind="mean"))
    with pytest.raises(SchemaError, match="'inertia' not found in validation table"):
        plot_elbow(pd.DataFrame({"k": [2]}))
    with pytest.raises(ParameterError, match="Expected a fitted BehaviorClusterer"):
        plot_validation([1, 2])


def test_docstring_examples_run():
    result = doctest.testmod(clustering_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 30


# --------------------------------------------------------------------------------------------
# Integration: a small simulated shop, and the UCI Online Shoppers sessions
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_shop():
    tax = segkit.load_taxonomy(ROOT / "parameters" / "taxonomy" / "default.yaml")
    shop = segkit.simulate_shop(600, n_days=21, seed=1)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    cleaned = segkit.clean_events(segkit.apply_taxonomy(loaded.events, tax), rejected=loaded.rejected)
    events = segkit.split_sessions(cleaned.events)
    features = segkit.build_user_features(events, crm=shop.crm)
    return shop, tax, events, features


def test_clusters_recover_the_planted_personas(small_shop):
    from segkit.segments import evaluate_segments

    shop, tax, events, features = small_shop
    truth = shop.truth[shop.truth["user_id"].isin(features["user_id"])]
    assert not truth["is_bot"].any()  # cleaning removed the planted bots
    res = cluster_users(features)
    m = res.model
    ari = m.ari(truth)
    assert ari >= 0.6, res.reason
    assert 5 <= m.chosen_k_ <= 7 and m.method_ == "kmeans"
    assert len(set(m.names_)) == m.chosen_k_
    assert len(m.feature_names_) == len(DEFAULT_FEATURES) == 20
    # names read from the numbers: the blog cluster is a content reader cluster
    z = m.profiles()
    blog = int(z["blog_views_per_session"].idxmax())
    assert "high blog_views" in m.names_[blog]
    members = truth.set_index("user_id").loc[m.user_ids_[m.labels_ == blog], "persona"]
    assert members.value_counts(normalize=True).idxmax() == "content_reader"

    membership = evaluate_segments(ROOT / "parameters" / "segments" / "default.yaml", events=events,
                                   features=features, taxonomy_events=tax)
    ct = m.crosstab(membership)
    assert ct.shape == (m.chosen_k_, len(membership.attrs["segments"]) + 2)
    assert ct["n_users"].sum() == len(features)
    for fig in (plot_elbow(res), plot_validation(res), plot_cluster_profiles(res)):
        assert isinstance(fig, Figure)


UCI_UNITS = {
    "Administrative": "count", "Administrative_Duration": "s", "Informational": "count",
    "Informational_Duration": "s", "ProductRelated": "count", "ProductRelated_Duration": "s",
    "BounceRates": "share", "ExitRates": "share", "PageValues": "currency",
}


@pytest.mark.shared_data
def test_uci_online_shoppers_sessions(shared_data):
    raw = pd.read_csv(shared_data / "uci_online_shoppers" / "online_shoppers_intention.csv")
    assert raw.shape == (12330, 18)
    durations = [c for c in UCI_UNITS if c.endswith("_Duration")]
    with pytest.raises(SchemaError, match=r"'Administrative_Duration' \(unit 's'\) has 33 negative value"):
        BehaviorClusterer(features=[], extra_features=UCI_UNITS).fit(raw)
    sessions = raw.assign(**{c: raw[c].mask(raw[c] < 0) for c in durations})  # -1 marks an unknown duration
    res = cluster_users(sessions, features=[], extra_features=UCI_UNITS, k_range=(2, 6), stability_runs=4)
    v = res.validation
    assert list(v.index) == [2, 3, 4, 5, 6] and v["chosen"].sum() == 1
    assert (v["silhouette_n"] == 10_000).all() and v["stability"].notna().all()
    assert res.model.n_missing_["Administrative_Duration"] > 0
    assert len(set(res.names)) == res.chosen_k
    # sessions with a purchase concentrate in the cluster with high page values
    z = res.profiles
    pv = int(z["PageValues"].idxmax())
    rate = raw.groupby(res.model.labels_)["Revenue"].mean()
    assert rate.idxmax() == pv and rate[pv] > 3 * raw["Revenue"].mean()
