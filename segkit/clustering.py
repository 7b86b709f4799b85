"""Behavioral clustering of users, validated: elbow, silhouette, Davies–Bouldin, Calinski–Harabasz,
stability, profiles and names (notebook 05).

:class:`BehaviorClusterer` clusters the rows of a feature table (one row per user, the output of
:func:`segkit.features.build_user_features`, optionally joined with Markov or pattern features)
with k-means, MiniBatch k-means or Ward hierarchical clustering for every ``k`` in a range,
validates each ``k``, chooses one by a documented rule and says why from the numbers. The fitted
model profiles and names its clusters, cross-tabulates them against rule segments and scores them
against planted truth. :func:`cluster_users` wraps it in one call returning a
:class:`ClusterResult`; :func:`plot_elbow`, :func:`plot_validation` and
:func:`plot_cluster_profiles` draw the evidence.

From features to the model space
--------------------------------
1. **Selection.** ``features`` names user-level features of the registry
   (:func:`segkit.features.feature_registry`); the default, :data:`DEFAULT_FEATURES`, is one or
   a few features per behavior (visit frequency, session length and depth, browsing, research,
   content, search, and the cart funnel). ``extra_features`` adds columns that are not in the
   registry (Markov transition shares, pattern flags, another table's columns), optionally with
   their units.
2. **Per session** (``per_session=True``). Features that add up over the user's sessions (the
   registry's "Total ..." and "Number of sessions with ..." definitions, such as
   ``product_views`` or ``abandoned_carts``) are divided by ``n_sessions`` and renamed
   ``<name>_per_session``: otherwise every count mostly measures how often the user came, and
   the clusters split frequent from rare visitors instead of separating behaviors.
3. **log1p** (``transform="log1p"``) for heavy-tailed non-negative units: ``count``, ``s``,
   ``currency`` and ``per week`` (shares, percents, days, scores and flags are left as they are).
4. **Missing values** are filled with the training median of the transformed feature
   (``missing="median"``, counts in ``n_missing_``) or refused (``missing="error"``).
5. **Scaling**: ``"standard"`` (mean 0, standard deviation 1) or ``"robust"`` (median 0, IQR 1;
   a feature whose IQR is 0, such as a rate that most users have at 0, is divided by
   ``1.349 * sd`` instead, the IQR of a normal distribution with that deviation).
6. **PCA** (optional): ``pca=int`` components or ``pca=float`` share of variance.

Validation per k
----------------
``inertia``
    Within-cluster sum of squared distances to the cluster means, on all rows.
``knee``
    The elbow of the inertia curve, found by ``kneed.KneeLocator`` (convex, decreasing).
``silhouette``
    Mean silhouette on a random sample of ``silhouette_sample`` rows (all rows when fewer; the
    same sample for every ``k``, size in ``silhouette_n``), with a 95 % percentile bootstrap
    interval (``n_bootstrap`` resamples of the sampled rows' silhouette values).
``davies_bouldin``, ``calinski_harabasz``
    On all rows (both are linear in the number of rows).
``stability``
    Mean (and sd) adjusted Rand index between the clusterings of ``stability_runs`` random
    subsamples (each ``stability_fraction`` of a base sample of at most ``stability_sample``
    rows), over every pair of runs, on the rows the two subsamples share.

Choosing k
----------
With ``n_clusters="auto"`` the chosen k is **the largest k at or beyond the elbow whose
silhouette is within** ``silhouette_tol`` **of the best silhouette at or beyond the elbow, and
whose stability is at least** ``min_stability``:

* fewer clusters than the knee leave much within-cluster variance that one more cluster would
  still explain (the elbow is the lower bound; without a knee every k in range is considered);
* silhouette differences smaller than ``silhouette_tol`` (default 0.05) are not a reason to
  merge segments: among equally well separated partitions, the finer one keeps distinct
  behaviors apart, and an unneeded split is visible in the profiles while a merge is not;
* a partition that does not reproduce on subsamples (stability below ``min_stability``,
  default 0.8) is not kept; when no candidate is stable enough, the most stable candidate is
  chosen and the reason says so (with ``stability_runs=0`` stability is not used).

Davies–Bouldin and Calinski–Harabasz are reported beside the choice, with the k where each is
best. ``reason_`` states all of this from the numbers.

Large tables
------------
``method="auto"`` uses k-means (Lloyd, ``n_init`` starts) up to :data:`MINIBATCH_ABOVE` rows and
MiniBatch k-means (``batch_size`` rows per step, the best of ``n_init`` initialisations) above.
MiniBatch draws its batches from a fixed random pool of 200,000 rows (scikit-learn 1.9 draws
each batch with weights over all rows, a pass over the whole table per step; a pool that large
pins the centres down to well below the differences between clusters, and MiniBatch rarely
sees more rows before it converges anyway). Every row is then assigned to its nearest centre,
and inertia, Davies–Bouldin and
Calinski–Harabasz are computed on all rows; the silhouette (quadratic) on the sample. Ward
builds the tree on a random sample of ``ward_sample`` rows when the table is larger and assigns
the other rows to the nearest cluster mean. Stability fits the same method on subsamples of the
base sample (for Ward at most ``ward_sample`` rows each); with ``method="auto"`` the method is
the one auto picks at the subsample's size, so 16,000-row subsamples of a large table use exact
k-means, the method MiniBatch approximates (``stability_method_``). Clustering runs on ``n_jobs``
threads (default 1: small fits run fastest single-threaded, and many OpenMP threads slow a shared
machine down).

``method="spark_kmeans"`` fits every k with Spark MLlib's K-Means (:func:`segkit.spark.kmeans_spark`:
Lloyd iterations from one ``k-means||`` initialisation seeded by ``random_state``, at most 100
iterations) on the running Spark session (the one ``engine: spark`` started; otherwise a local
one), for tables whose k-means iterations are too heavy for one process. The model matrix is
prepared here as for the other methods and sent to Spark once for all k; the centres come back
and every row is assigned to its nearest centre, clusters numbered by size. The validation
metrics are computed as for the other methods (inertia, Davies–Bouldin and Calinski–Harabasz on
all rows, the silhouette on its sample), and the stability fits, on subsamples of at most
``stability_sample`` rows, use exact k-means (MiniBatch above :data:`MINIBATCH_ABOVE` rows), the
method Spark's K-Means runs. It needs the ``spark`` extra and Java; ``n_init`` and ``batch_size``
do not apply (Spark runs one initialisation, on all rows).

Examples
--------
>>> import pandas as pd
>>> from sklearn.datasets import make_blobs
>>> X, _ = make_blobs(300, n_features=3, centers=3, cluster_std=0.8, random_state=0)
>>> table = pd.DataFrame(X, columns=["a", "b", "c"])
>>> model = BehaviorClusterer(features=[], extra_features=["a", "b", "c"], k_range=(2, 6),
...                           stability_runs=4).fit(table)
>>> model.chosen_k_, model.validation_.loc[model.chosen_k_, "stability"].round(2)
(3, np.float64(1.0))
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .errors import NotFittedError, ParameterError, SchemaError, check_columns, did_you_mean, format_allowed

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_FEATURES",
    "LOG_UNITS",
    "MINIBATCH_ABOVE",
    "BehaviorClusterer",
    "ClusterResult",
    "cluster_users",
    "plot_elbow",
    "plot_validation",
    "plot_cluster_profiles",
]

#: Default features: one or a few per behavior, all from the user-level registry.
DEFAULT_FEATURES: tuple[str, ...] = (
    "n_sessions",  # how often the user comes
    "avg_session_s",  # how long a visit lasts
    "avg_max_scroll_depth", "max_scroll_depth",  # how deep they read
    "product_views", "category_views",  # browsing
    "image_clicks", "review_clicks", "related_clicks", "wishlist_adds",  # researching products
    "blog_views", "deep_reads", "video_plays",  # content
    "searches",  # search
    "add_to_carts", "cart_views", "checkout_starts",  # the cart funnel
    "purchases", "conversion_rate", "abandoned_carts",  # how it ends
)
#: ``method="auto"`` switches from k-means to MiniBatch k-means above this many rows.
MINIBATCH_ABOVE = 50_000
#: Units that get ``log1p`` with ``transform="log1p"``: non-negative and heavy-tailed.
LOG_UNITS: frozenset[str] = frozenset({"count", "s", "currency", "per week"})
_UNITS = ("count", "s", "days", "percent", "share", "currency", "flag", "per week", "score")
_METHODS = ("auto", "kmeans", "minibatch", "ward", "spark_kmeans")
_SCALERS = ("standard", "robust")
_TRANSFORMS = ("log1p", None)
_MISSING = ("median", "error")
_IQR_PER_SD = 1.349  # IQR of a normal distribution, in standard deviations
_DEFAULT_N_INIT = {"kmeans": 4, "minibatch": 10}
_DEFAULT_BATCH = 8192
_DEFAULT_WARD_SAMPLE = 5_000
#: MiniBatch draws its batches from a random pool of this many rows (see the module docstring).
_MINIBATCH_POOL = 200_000
_CHUNK_BYTES = 32_000_000
_PER_SESSION = "_per_session"
_VALIDATION_COLUMNS = [
    "inertia", "knee", "silhouette", "silhouette_low", "silhouette_high", "silhouette_n", "davies_bouldin",
    "calinski_harabasz", "stability", "stability_sd", "stability_pairs", "candidate", "chosen",
]


# ---------------------------------------------------------------------------------------------
# Registry lookups
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _registry() -> pd.DataFrame:
    from .features import feature_registry

    return feature_registry("user").set_index("name")


@lru_cache(maxsize=1)
def _session_level_names() -> frozenset[str]:
    from .features import feature_registry

    return frozenset(feature_registry("session")["name"])


def _adds_up_over_sessions(name: str) -> bool:
    """Whether a registry feature is a sum over the user's sessions (divided by n_sessions)."""
    definition = str(_registry().loc[name, "definition"])
    return definition.startswith("Total ") or definition.startswith("Number of sessions with")


# ---------------------------------------------------------------------------------------------
# Parameter checks
# ---------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, lo: int, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < lo:
        raise ParameterError(name, value, f"an integer >= {lo}" + (" or None" if allow_none else ""))
    return int(value)


def _check_real(name: str, value: Any, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, Real) and not math.isnan(float(value))
    if ok:
        v = float(value)
        ok = (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)
    if not ok:
        lb, rb = ("(" if open_lo else "["), (")" if open_hi else "]")
        raise ParameterError(name, value, f"a number in {lb}{lo:g}, {hi:g}{rb}")
    return float(value)


def _check_choice(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    if not any(value is a or (isinstance(value, str) and value == a) for a in allowed):
        raise ParameterError(name, value, list(allowed))
    return value


def _check_names(name: str, value: Any) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ParameterError(name, value, "a list of column names")
    names = list(value)
    for v in names:
        if not isinstance(v, str):
            raise ParameterError(name, v, message=f"Parameter {name!r} must list column names as text; got {v!r}")
    dup = [v for i, v in enumerate(names) if v in names[:i]]
    if dup:
        raise ParameterError(name, dup[0], message=f"Parameter {name!r} lists {dup[0]!r} twice")
    return names


# ---------------------------------------------------------------------------------------------
# Numerical kernels (all chunked: nothing quadratic in the number of rows)
# ---------------------------------------------------------------------------------------------


def _chunk_rows(n_cols: int) -> int:
    return max(256, _CHUNK_BYTES // (8 * max(1, n_cols)))


def _assign(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (Euclidean) of every row."""
    c2 = np.einsum("ij,ij->i", centers, centers)
    out = np.empty(X.shape[0], dtype=np.int64)
    step = _chunk_rows(centers.shape[0])
    for s in range(0, X.shape[0], step):
        out[s:s + step] = np.argmin(c2 - 2.0 * (X[s:s + step] @ centers.T), axis=1)
    return out


def _cluster_sums(X: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sizes ``(k,)`` and per-cluster column sums ``(k, d)`` (one sparse product, one pass)."""
    from scipy.sparse import csr_matrix

    n = labels.size
    onehot = csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    return sizes, np.asarray(onehot @ X)


def _cluster_means(X: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sizes, sums = _cluster_sums(X, labels, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sizes, sums / sizes[:, None]


def _partition_stats(X: np.ndarray, labels: np.ndarray, k: int) -> dict[str, float]:
    """Inertia (around the cluster means), Davies–Bouldin and Calinski–Harabasz, as scikit-learn
    defines them, in one pass over the rows."""
    sizes, means = _cluster_means(X, labels, k)
    keep = sizes > 0
    dist_sum = np.zeros(k)
    sq_sum = np.zeros(k)
    step = _chunk_rows(X.shape[1])
    safe = np.nan_to_num(means)
    for s in range(0, X.shape[0], step):
        xs, lab = X[s:s + step], labels[s:s + step]
        diff = xs - safe[lab]
        sq = np.einsum("ij,ij->i", diff, diff)
        sq_sum += np.bincount(lab, weights=sq, minlength=k)
        dist_sum += np.bincount(lab, weights=np.sqrt(sq), minlength=k)
    n, kk = X.shape[0], int(keep.sum())
    inertia = float(sq_sum.sum())
    if kk < 2:
        return {"inertia": inertia, "davies_bouldin": math.nan, "calinski_harabasz": math.nan}
    mu = means[keep]
    intra = dist_sum[keep] / sizes[keep]
    centroid_d = np.sqrt(np.maximum(((mu[:, None, :] - mu[None, :, :]) ** 2).sum(axis=2), 0.0))
    if np.allclose(intra, 0) or np.allclose(centroid_d, 0):
        db = 0.0
    else:
        centroid_d[centroid_d == 0] = np.inf
        db = float(np.mean(np.max((intra[:, None] + intra[None, :]) / centroid_d, axis=1)))
    grand = X.mean(axis=0)
    extra = float((sizes[keep] * ((mu - grand) ** 2).sum(axis=1)).sum())
    ch = 1.0 if inertia == 0 else extra * (n - kk) / (inertia * (kk - 1))
    return {"inertia": inertia, "davies_bouldin": db, "calinski_harabasz": float(ch)}


def _silhouettes(X: np.ndarray, label_sets: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per-row silhouette values of ``X`` under each labelling, from one pass over the distances.

    Matches :func:`sklearn.metrics.silhouette_samples` (a row alone in its cluster scores 0).
    """
    n = X.shape[0]
    blocks, offsets = [], [0]
    for lab in label_sets:
        k = int(lab.max()) + 1
        h = np.zeros((n, k))
        h[np.arange(n), lab] = 1.0
        blocks.append(h)
        offsets.append(offsets[-1] + k)
    H = np.hstack(blocks)
    counts = H.sum(axis=0)
    x2 = np.einsum("ij,ij->i", X, X)
    sums = np.empty((n, H.shape[1]))
    step = max(64, _CHUNK_BYTES // (8 * n))
    for s in range(0, n, step):
        e = min(n, s + step)
        d2 = x2[s:e, None] + x2[None, :] - 2.0 * (X[s:e] @ X.T)
        np.maximum(d2, 0.0, out=d2)
        d = np.sqrt(d2, out=d2)
        d[np.arange(e - s), np.arange(s, e)] = 0.0
        sums[s:e] = d @ H
    out = []
    rows = np.arange(n)
    for lab, lo, hi in zip(label_sets, offsets[:-1], offsets[1:]):
        blk, cnt = sums[:, lo:hi], counts[lo:hi]
        own_n = cnt[lab]
        a = np.where(own_n > 1, blk[rows, lab] / np.maximum(own_n - 1, 1), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_other = blk / cnt[None, :]
        mean_other[:, cnt == 0] = np.inf
        mean_other[rows, lab] = np.inf
        b = mean_other.min(axis=1)
        denom = np.maximum(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            sil = np.where((own_n > 1) & np.isfinite(b) & (denom > 0), (b - a) / denom, 0.0)
        if not np.isfinite(b).any():
            sil = np.full(n, np.nan)
        out.append(sil)
    return out


def _ari(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two integer labellings (as :func:`sklearn.metrics.adjusted_rand_score`)."""
    n = a.size
    if n < 2:
        return 1.0
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(np.float64)
    sum_comb = (table * (table - 1)).sum() / 2
    rows = table.sum(axis=1)
    cols = table.sum(axis=0)
    sum_a = (rows * (rows - 1)).sum() / 2
    sum_b = (cols * (cols - 1)).sum() / 2
    total = n * (n - 1) / 2
    expected = sum_a * sum_b / total
    maximum = (sum_a + sum_b) / 2
    if maximum == expected:
        return 1.0
    return float((sum_comb - expected) / (maximum - expected))


def _order_by_size(labels: np.ndarray, centers: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Relabel 0..k'-1 by decreasing size (empty clusters dropped); among equal sizes, the cluster
    of the earlier first row comes first."""
    sizes = np.bincount(labels, minlength=k)
    first = np.full(k, labels.size, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(labels.size))
    order = np.array(sorted(np.flatnonzero(sizes), key=lambda c: (-sizes[c], first[c])), dtype=np.int64)
    remap = np.full(k, -1, dtype=np.int64)
    remap[order] = np.arange(order.size)
    return remap[labels], (None if centers is None else centers[order]), int(order.size)


def _ward_cuts(X: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Ward tree of ``X`` (scipy) cut into exactly k clusters for every k in ``ks``."""
    from scipy.cluster.hierarchy import linkage

    n = X.shape[0]
    Z = linkage(X, method="ward")
    wanted = {k for k in ks if k <= n}
    members: dict[int, np.ndarray] = {i: np.array([i], dtype=np.int64) for i in range(n)}
    out: dict[int, np.ndarray] = {}
    if n in wanted:
        out[n] = np.arange(n, dtype=np.int64)
    for i in range(n - 1):
        a, b = int(Z[i, 0]), int(Z[i, 1])
        members[n + i] = np.concatenate([members.pop(a), members.pop(b)])
        clusters = n - 1 - i
        if clusters in wanted:
            lab = np.empty(n, dtype=np.int64)
            for j, mem in enumerate(members.values()):
                lab[mem] = j
            out[clusters] = lab
        if clusters <= min(wanted, default=1):
            break
    return out


def _knee(ks: Sequence[int], inertia: Sequence[float]) -> int | None:
    if len(ks) < 3:
        return None
    from kneed import KneeLocator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        knee = KneeLocator(list(ks), list(inertia), curve="convex", direction="decreasing").knee
    return None if knee is None else int(knee)


# ---------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------


class BehaviorClusterer(BaseEstimator):
    """Cluster users on behavioral features over a range of k, validate each k and choose one.

    Parameters
    ----------
    features : list of str, optional
        User-level registry features to cluster on (:func:`segkit.features.feature_registry`);
        default :data:`DEFAULT_FEATURES`. ``[]`` uses only ``extra_features``. Unknown names raise
        :class:`ParameterError` with a did-you-mean hint; label features are not allowed.
    extra_features : list of str or mapping of str to str, optional
        Other numeric columns of ``X`` (Markov or pattern features, another dataset's columns).
        A mapping gives each column's unit (``"count"``, ``"s"``, ``"share"``, ...; see
        :data:`LOG_UNITS`), which decides ``log1p`` as for registry features; listed without
        units they are only imputed and scaled. Never divided per session.
    per_session : bool, default=True
        Divide registry features that add up over sessions by ``n_sessions`` (which ``X`` must
        then have) and name them ``<name>_per_session``.
    transform : {"log1p", None}, default="log1p"
        ``log1p`` of features whose unit is in :data:`LOG_UNITS`.
    scaler : {"standard", "robust"}, default="standard"
        Standardize by mean and sd, or by median and IQR (``1.349 * sd`` where the IQR is 0).
    pca : int, float or None, default=None
        Cluster on this many principal components (int) or on the components explaining this
        share of variance (float in (0, 1)).
    method : {"auto", "kmeans", "minibatch", "ward", "spark_kmeans"}, default="auto"
        ``"auto"``: k-means up to :data:`MINIBATCH_ABOVE` rows, MiniBatch k-means above.
        ``"spark_kmeans"``: Spark MLlib's K-Means on the running Spark session (see "Large
        tables" in the module docstring); needs the ``spark`` extra and Java.
    n_clusters : "auto" or int, default="auto"
        ``"auto"`` chooses k by the rule in the module docstring; an integer fixes k (the
        validation table is still computed over ``k_range``, plus that k).
    k_range : tuple of (int, int) or None, default=(2, 10)
        Smallest and largest k to validate, inclusive, both >= 2. ``None`` only with an integer
        ``n_clusters`` (then only that k is validated).
    silhouette_sample : int, default=10_000
        Rows the silhouette is computed on (the same random rows for every k; all rows when fewer).
    n_bootstrap : int, default=200
        Bootstrap resamples of the sampled silhouette values for its 95 % interval (0: no interval).
    stability_runs : int, default=10
        Subsample clusterings per k; stability is the ARI over all pairs of them (0: not computed,
        and the k rule ignores stability; otherwise at least 2).
    stability_sample : int, default=20_000
        Rows of the base sample the stability subsamples are drawn from.
    stability_fraction : float, default=0.8
        Share of the base sample in each subsample.
    min_stability : float, default=0.8
        Stability a k needs to be chosen.
    silhouette_tol : float, default=0.05
        How far below the best silhouette a k may be and still be chosen.
    n_init : int, optional
        k-means starts (default 4: the fit with the lowest inertia is kept) or MiniBatch
        initialisations (default 10: the best on ``3 * batch_size`` rows starts the single
        mini-batch run). Not for Ward or ``"spark_kmeans"`` (one ``k-means||`` initialisation).
    batch_size : int, optional
        MiniBatch rows per step (default 8192). Only for ``"minibatch"`` (or ``"auto"``).
    ward_sample : int, optional
        Ward builds its tree on at most this many rows (default 5000) and assigns the rest to the
        nearest cluster mean. Only for ``"ward"``.
    missing : {"median", "error"}, default="median"
        Fill missing values with the training median of the transformed feature, or raise.
    user_col : str, default="user_id"
        Id column of ``X`` (kept for :meth:`assignments`, :meth:`crosstab` and :meth:`ari`);
        when ``X`` has no such column its index is used.
    random_state : int or None, default=0
        Seed of every random step (samples, subsamples, initialisations); equal seeds give equal
        results.
    n_jobs : int or None, default=1
        Threads of the clustering and distance kernels (``None``: the libraries' defaults).

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Input columns used (registry features, then extra features).
    feature_names_ : list of str
        Names after the per-session step (``product_views_per_session``, ...).
    units_ : dict of str to str or None
        Unit of each entry of ``feature_names_``.
    method_ : str
        The algorithm used: ``"kmeans"``, ``"minibatch"``, ``"ward"`` or ``"spark_kmeans"``.
    n_samples_ : int
        Training rows.
    n_missing_ : pandas.Series
        Missing values filled per feature.
    fill_values_, center_, scale_ : pandas.Series
        Medians used to fill, and the scaler's centre and scale, per feature.
    pca_ : sklearn.decomposition.PCA or None
        The fitted PCA.
    validation_ : DataFrame
        One row per k (index ``k``): ``inertia``, ``knee`` (bool), ``silhouette``,
        ``silhouette_low``, ``silhouette_high``, ``silhouette_n``, ``davies_bouldin``,
        ``calinski_harabasz``, ``stability``, ``stability_sd``, ``stability_pairs``,
        ``candidate`` (passes the rule's silhouette, elbow and stability conditions) and ``chosen``.
    knee_k_ : int or None
        Knee of the inertia curve.
    chosen_k_ : int
        The number of clusters of ``labels_``.
    reason_ : str
        Why ``chosen_k_``, from the numbers.
    labels_ : ndarray of int, shape (n_samples,)
        Cluster of each training row, 0 the largest cluster.
    cluster_centers_ : ndarray, shape (chosen_k_, n_model_dims)
        Centres in the model space (scaled, after PCA); :meth:`predict` assigns to the nearest.
    names_ : list of str
        Unique descriptive name per cluster from its top features (``"high blog_views, high
        deep_reads"``).
    user_ids_ : ndarray
        Ids of the training rows (``user_col`` or the index).
    n_clusters_ : int
        Clusters in ``labels_`` (``chosen_k_`` unless a fit left a cluster empty).
    n_features_in_ : int
        Number of input columns.
    silhouette_sample_size_ : int
        Rows the silhouette was computed on.
    stability_subsample_size_ : int
        Rows of each stability subsample (0 without stability).
    stability_method_ : str or None
        Method of the stability fits (see the module docstring).

    See Also
    --------
    cluster_users : Fit and collect the outputs in one call.
    plot_elbow, plot_validation, plot_cluster_profiles : The evidence as figures.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(200, n_features=2, centers=[[0, 0], [6, 6]], random_state=1)
    >>> t = pd.DataFrame({"user_id": [f"u{i}" for i in range(200)], "a": X[:, 0], "b": X[:, 1]})
    >>> model = BehaviorClusterer(features=[], extra_features=["a", "b"], k_range=(2, 4),
    ...                           stability_runs=3).fit(t)
    >>> model.chosen_k_, model.names_
    (2, ['low b, low a', 'high b, high a'])
    >>> model.predict(pd.DataFrame({"a": [6.0], "b": [5.0]})).tolist()
    [1]
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        *,
        extra_features: Sequence[str] | Mapping[str, str] | None = None,
        per_session: bool = True,
        transform: Literal["log1p"] | None = "log1p",
        scaler: Literal["standard", "robust"] = "standard",
        pca: int | float | None = None,
        method: Literal["auto", "kmeans", "minibatch", "ward", "spark_kmeans"] = "auto",
        n_clusters: int | Literal["auto"] = "auto",
        k_range: tuple[int, int] | None = (2, 10),
        silhouette_sample: int = 10_000,
        n_bootstrap: int = 200,
        stability_runs: int = 10,
        stability_sample: int = 20_000,
        stability_fraction: float = 0.8,
        min_stability: float = 0.8,
        silhouette_tol: float = 0.05,
        n_init: int | None = None,
        batch_size: int | None = None,
        ward_sample: int | None = None,
        missing: Literal["median", "error"] = "median",
        user_col: str = "user_id",
        random_state: int | None = 0,
        n_jobs: int | None = 1,
    ) -> None:
        self.features = features
        self.extra_features = extra_features
        self.per_session = per_session
        self.transform = transform
        self.scaler = scaler
        self.pca = pca
        self.method = method
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.silhouette_sample = silhouette_sample
        self.n_bootstrap = n_bootstrap
        self.stability_runs = stability_runs
        self.stability_sample = stability_sample
        self.stability_fraction = stability_fraction
        self.min_stability = min_stability
        self.silhouette_tol = silhouette_tol
        self.n_init = n_init
        self.batch_size = batch_size
        self.ward_sample = ward_sample
        self.missing = missing
        self.user_col = user_col
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- parameters ---------------------------------------------------------------------------

    def _check_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {}
        p["features"] = list(DEFAULT_FEATURES) if self.features is None else _check_names("features", self.features)
        reg = _registry()
        for name in p["features"]:
            if name not in reg.index:
                if name in _session_level_names():
                    raise ParameterError("features", name, message=f"Feature {name!r} is a session-level feature; "
                                         "clustering uses user-level features (one row per user). User-level "
                                         f"features: {format_allowed(list(reg.index))}")
                raise ParameterError(
                    "features", name,
                    message=f"Unknown user-level feature {name!r};{did_you_mean(name, reg.index)} allowed: "
                    f"{format_allowed(list(reg.index))} (see segkit.features.feature_registry()); columns that are "
                    "not in the registry go in extra_features",
                )
            if reg.loc[name, "unit"] == "label":
                raise ParameterError("features", name, message=f"Feature {name!r} is a label (text), not a number; "
                                     "clustering needs numeric features (one-hot encode it into extra_features)")
        extra = self.extra_features
        if extra is None:
            p["extra"] = {}
        elif isinstance(extra, Mapping):
            names = _check_names("extra_features", list(extra))
            p["extra"] = {}
            for name in names:
                unit = extra[name]
                if unit is not None and unit not in _UNITS:
                    raise ParameterError(f"extra_features.{name}", unit, list(_UNITS))
                p["extra"][name] = unit
        else:
            p["extra"] = {name: None for name in _check_names("extra_features", extra)}
        for name in p["extra"]:
            if name in p["features"]:
                raise ParameterError("extra_features", name, message=f"Column {name!r} is in both features and "
                                     "extra_features; list it once")
            if name in reg.index:
                raise ParameterError("extra_features", name, message=f"Column {name!r} is a registry feature; "
                                     "put it in features (its unit then comes from the registry)")
        if not p["features"] and not p["extra"]:
            raise ParameterError("features", self.features, message="No features to cluster on: features and "
                                 "extra_features are both empty")
        if not isinstance(self.per_session, (bool, np.bool_)):
            raise ParameterError("per_session", self.per_session, [True, False])
        p["transform"] = _check_choice("transform", self.transform, _TRANSFORMS)
        p["scaler"] = _check_choice("scaler", self.scaler, _SCALERS)
        pca = self.pca
        if pca is not None:
            if isinstance(pca, bool) or not isinstance(pca, (Integral, Real)):
                raise ParameterError("pca", pca, "None, an integer >= 1 or a share of variance in (0, 1)")
            if isinstance(pca, Integral):
                _check_int("pca", pca, 1)
                pca = int(pca)
            else:
                pca = _check_real("pca", pca, 0.0, 1.0, open_lo=True, open_hi=True)
        p["pca"] = pca
        p["method"] = _check_choice("method", self.method, _METHODS)
        if self.n_clusters == "auto":
            p["n_clusters"] = None
        else:
            if isinstance(self.n_clusters, str):
                raise ParameterError("n_clusters", self.n_clusters, "'auto' or an integer >= 2")
            p["n_clusters"] = _check_int("n_clusters", self.n_clusters, 2)
        kr = self.k_range
        if kr is None:
            if p["n_clusters"] is None:
                raise ParameterError("k_range", kr, message="k_range=None needs an integer n_clusters; with "
                                     "n_clusters='auto' give the range of k to choose from, e.g. (2, 10)")
            p["ks"] = [p["n_clusters"]]
            p["rule_ks"] = []
        else:
            if isinstance(kr, (str, bytes)) or not isinstance(kr, Sequence) or len(kr) != 2 or any(
                    isinstance(v, bool) or not isinstance(v, Integral) for v in kr) or not 2 <= kr[0] <= kr[1]:
                raise ParameterError("k_range", kr, "a pair (smallest k, largest k) of integers with 2 <= smallest <= largest")
            p["rule_ks"] = list(range(int(kr[0]), int(kr[1]) + 1))
            p["ks"] = sorted(set(p["rule_ks"]) | ({p["n_clusters"]} if p["n_clusters"] else set()))
        p["silhouette_sample"] = _check_int("silhouette_sample", self.silhouette_sample, 10)
        p["n_bootstrap"] = _check_int("n_bootstrap", self.n_bootstrap, 0)
        runs = _check_int("stability_runs", self.stability_runs, 0)
        if runs == 1:
            raise ParameterError("stability_runs", runs, message="Parameter 'stability_runs' got 1; stability compares "
                                 "pairs of runs, so use 0 (no stability) or at least 2")
        p["stability_runs"] = runs
        p["stability_sample"] = _check_int("stability_sample", self.stability_sample, 10)
        p["stability_fraction"] = _check_real("stability_fraction", self.stability_fraction, 0.0, 1.0,
                                              open_lo=True, open_hi=True)
        p["min_stability"] = _check_real("min_stability", self.min_stability, 0.0, 1.0)
        p["silhouette_tol"] = _check_real("silhouette_tol", self.silhouette_tol, 0.0, 2.0)
        method = p["method"]
        if self.n_init is not None and method == "ward":
            raise ParameterError("n_init", self.n_init, message="Parameter 'n_init' sets k-means starts; Ward "
                                 "clustering is deterministic and has none (leave n_init=None)")
        if self.n_init is not None and method == "spark_kmeans":
            raise ParameterError("n_init", self.n_init, message="Parameter 'n_init' sets k-means starts of "
                                 "method='kmeans' or 'minibatch'; method='spark_kmeans' runs Spark's single "
                                 "k-means|| initialisation (leave n_init=None)")
        p["n_init"] = _check_int("n_init", self.n_init, 1, allow_none=True)
        if self.batch_size is not None and method in ("kmeans", "ward", "spark_kmeans"):
            raise ParameterError("batch_size", self.batch_size, message=f"Parameter 'batch_size' is for "
                                 f"method='minibatch' (or 'auto' on large tables), not method={method!r}")
        p["batch_size"] = _check_int("batch_size", self.batch_size, 1, allow_none=True) or _DEFAULT_BATCH
        if self.ward_sample is not None and method != "ward":
            raise ParameterError("ward_sample", self.ward_sample, message=f"Parameter 'ward_sample' is for "
                                 f"method='ward', not method={method!r}")
        p["ward_sample"] = _check_int("ward_sample", self.ward_sample, 10, allow_none=True) or _DEFAULT_WARD_SAMPLE
        p["missing"] = _check_choice("missing", self.missing, _MISSING)
        if not isinstance(self.user_col, str) or not self.user_col:
            raise ParameterError("user_col", self.user_col, "a column name")
        rs = self.random_state
        if rs is not None and (isinstance(rs, bool) or not isinstance(rs, Integral) or rs < 0):
            raise ParameterError("random_state", rs, "an integer >= 0 or None")
        p["n_jobs"] = _check_int("n_jobs", self.n_jobs, 1, allow_none=True)
        return p

    # -- preparing the matrix -----------------------------------------------------------------

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        if isinstance(X, (str, Path)) or type(X).__module__.startswith("ibis"):
            from .engine import as_table, to_pandas

            return to_pandas(as_table(X))
        raise ParameterError("X", type(X).__name__, message="X must be a feature table: a pandas DataFrame (one row "
                             f"per user, e.g. build_user_features), a Parquet path or an Ibis table; got {type(X).__name__}")

    def _raw(self, df: pd.DataFrame, inputs: Sequence[str], need_sessions: bool, *, what: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The input columns as float64 plus ``n_sessions``; every problem reported together."""
        check_columns(df.columns, list(inputs) + (["n_sessions"] if need_sessions else []), what=what)
        failures: list[dict[str, Any]] = []
        cols = []
        for name in inputs:
            s = df[name]
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                v = s.to_numpy(dtype="float64", na_value=np.nan)
            else:
                failures.append({"column": name, "check": "numeric", "count": int(s.notna().sum()),
                                 "examples": df[[name]].dropna().head(3),
                                 "message": f"Column {name!r} is not numeric (dtype {str(s.dtype)!r})"})
                continue
            cols.append((name, v))
        sessions = None
        if need_sessions:
            s = df["n_sessions"]
            sessions = s.to_numpy(dtype="float64", na_value=np.nan) if pd.api.types.is_numeric_dtype(s) else None
            bad = np.ones(len(df), dtype=bool) if sessions is None else ~(np.isfinite(sessions) & (sessions > 0))
            if bad.any():
                failures.append({"column": "n_sessions", "check": "positive", "count": int(bad.sum()),
                                 "examples": df.loc[bad, ["n_sessions"]].head(3),
                                 "message": f"Column 'n_sessions' must be a positive number on every row to make "
                                 f"per-session rates; {int(bad.sum()):,} row(s) are not (or pass per_session=False)"})
        for name, v in cols:
            inf = np.isinf(v)
            if inf.any():
                failures.append({"column": name, "check": "finite", "count": int(inf.sum()),
                                 "examples": df.loc[inf, [name]].head(3),
                                 "message": f"Column {name!r} has {int(inf.sum()):,} infinite value(s)"})
            if self._log_unit(name) and (v < 0).any():
                neg = v < 0
                failures.append({"column": name, "check": "non_negative", "count": int(neg.sum()),
                                 "examples": df.loc[neg, [name]].head(3),
                                 "message": f"Column {name!r} (unit {self._unit(name)!r}) has {int(neg.sum()):,} "
                                 "negative value(s); log1p needs values >= 0 (or pass transform=None)"})
        if failures:
            raise SchemaError(failures, title=f"{what} cannot be clustered")
        M = np.column_stack([v for _, v in cols]) if cols else np.empty((len(df), 0))
        return M, sessions

    def _unit(self, name: str) -> str | None:
        reg = _registry()
        if name in reg.index:
            return str(reg.loc[name, "unit"])
        return self._extra_units.get(name)

    def _log_unit(self, name: str) -> bool:
        return self._transform == "log1p" and self._unit(name) in LOG_UNITS

    def _transformed(self, M: np.ndarray, sessions: np.ndarray | None) -> np.ndarray:
        T = np.array(M, dtype=np.float64, order="F")  # column-wise transforms on a column-major copy
        for j, name in enumerate(self._inputs):
            if self._rate[j]:
                T[:, j] /= sessions
            if self._log_unit(name):
                np.log1p(T[:, j], out=T[:, j])
        return T

    def _filled(self, T: np.ndarray, *, what: str, df: pd.DataFrame) -> np.ndarray:
        nan = np.isnan(T)
        if nan.any():
            if self._missing == "error":
                counts = nan.sum(axis=0)
                failures = [{"column": self._inputs[j], "check": "not_null", "count": int(c),
                             "examples": df.loc[nan[:, j], [self._inputs[j]]].head(3),
                             "message": f"Column {self._inputs[j]!r} has {int(c):,} missing value(s) "
                             "(missing='error'; use missing='median' to fill them)"}
                            for j, c in enumerate(counts) if c]
                raise SchemaError(failures, title=f"{what} has missing values")
            T = np.where(nan, self.fill_values_.to_numpy()[None, :], T)
        return T

    def _model_space(self, T: np.ndarray) -> np.ndarray:
        Xm = np.subtract(T, self.center_.to_numpy(), order="C")
        Xm /= self.scale_.to_numpy()
        if self.pca_ is not None:
            Xm = self.pca_.transform(Xm)
        return np.ascontiguousarray(Xm, dtype=np.float64)

    def _ids(self, df: pd.DataFrame) -> np.ndarray:
        if self.user_col in df.columns:
            return df[self.user_col].to_numpy()
        return df.index.to_numpy()

    # -- fitting ------------------------------------------------------------------------------

    def _threads(self, n_jobs: int | None) -> Any:
        if n_jobs is None:
            return nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(n_jobs)

    def _fitter(self, method: str, p: dict[str, Any]) -> Callable[[np.ndarray, Sequence[int], int], dict[int, tuple[np.ndarray, np.ndarray]]]:
        """``fit(X, ks, seed) -> {k: (labels, centers)}`` for the chosen method (labels by size)."""
        n_init = p["n_init"] or _DEFAULT_N_INIT.get(method, 1)

        def kmeans(X: np.ndarray, ks: Sequence[int], seed: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
            from sklearn.cluster import KMeans, MiniBatchKMeans

            out = {}
            for k in ks:
                if method == "kmeans":
                    est = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)
                else:
                    pool = X
                    if X.shape[0] > _MINIBATCH_POOL:
                        pool = X[np.sort(np.random.default_rng(seed).choice(X.shape[0], _MINIBATCH_POOL, replace=False))]
                    est = MiniBatchKMeans(n_clusters=k, n_init=n_init, batch_size=min(p["batch_size"], pool.shape[0]),
                                          random_state=seed, compute_labels=False).fit(pool)
                centers = est.cluster_centers_
                labels, centers, _ = _order_by_size(_assign(X, centers), centers, k)
                out[k] = (labels, centers)
            return out

        def ward(X: np.ndarray, ks: Sequence[int], seed: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
            n = X.shape[0]
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(n, p["ward_sample"], replace=False)) if n > p["ward_sample"] else None
            Xs = X if sample is None else X[sample]
            cuts = _ward_cuts(Xs, ks)
            out = {}
            for k in ks:
                lab_s = cuts[k]
                _, centers = _cluster_means(Xs, lab_s, k)
                if sample is None:
                    labels = lab_s
                else:
                    labels = _assign(X, centers)
                    labels[sample] = lab_s
                labels, _, kk = _order_by_size(labels, None, k)
                _, centers = _cluster_means(X, labels, kk)
                out[k] = (labels, centers)
            return out

        def spark_kmeans(X: np.ndarray, ks: Sequence[int], seed: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
            from .spark import _kmeans_centers

            fitted = _kmeans_centers(X, ks, seed)
            out = {}
            for k in ks:
                centers = fitted[k]
                labels, centers, _ = _order_by_size(_assign(X, centers), centers, centers.shape[0])
                out[k] = (labels, centers)
            return out

        return {"ward": ward, "spark_kmeans": spark_kmeans}.get(method, kmeans)

    def fit(self, X: Any, y: Any = None) -> BehaviorClusterer:
        """Prepare the features, cluster for every k, validate, choose k and profile the clusters.

        Parameters
        ----------
        X : DataFrame, Parquet path or Ibis table
            One row per user with the selected feature columns (and ``n_sessions`` when
            ``per_session`` applies), e.g. :func:`segkit.features.build_user_features`.
        y : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        self : BehaviorClusterer

        Raises
        ------
        ParameterError
            A parameter is out of range, a feature name is unknown, or the table has fewer rows
            than the largest k needs.
        SchemaError
            A column is missing, not numeric, all missing, constant or infinite, a log-transformed
            column is negative, ``n_sessions`` is not positive, or the ids repeat.

        Examples
        --------
        >>> t = pd.DataFrame({"a": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2]})
        >>> m = BehaviorClusterer(features=[], extra_features=["a"], n_clusters=2, k_range=None,
        ...                       stability_runs=0).fit(t)
        >>> m.labels_.tolist()
        [0, 0, 0, 1, 1, 1]
        """
        p = self._check_params()
        if p["method"] == "spark_kmeans":
            from .spark import _require_pyspark

            _require_pyspark()  # before the features are prepared
        df = self._frame(X)
        if hasattr(self, "labels_"):  # a refit that fails must not leave the old fit half-replaced
            del self.labels_
        self._extra_units = dict(p["extra"])
        self._transform = p["transform"]
        self._missing = p["missing"]
        inputs = p["features"] + list(p["extra"])
        rate = [bool(self.per_session) and j < len(p["features"]) and _adds_up_over_sessions(name)
                for j, name in enumerate(inputs)]
        self._inputs, self._rate = inputs, rate
        M, sessions = self._raw(df, inputs, any(rate), what="feature table")
        n = M.shape[0]
        ids = self._ids(df)
        dup = pd.Series(ids).duplicated().to_numpy() | pd.isna(ids)
        if dup.any():
            col = self.user_col if self.user_col in df.columns else "index"
            raise SchemaError([{"column": col, "check": "unique", "count": int(dup.sum()),
                                "examples": pd.DataFrame({col: ids[dup][:5]}),
                                "message": f"Ids ({col!r}) must be unique and not null: one row per user; "
                                f"{int(dup.sum()):,} repeated or null"}], title="feature table cannot be clustered")
        kmax = max(p["ks"])
        if n <= kmax:
            raise ParameterError("k_range" if p["rule_ks"] and kmax in p["rule_ks"] else "n_clusters", kmax,
                                 message=f"The feature table has {n:,} row(s), too few for k={kmax} clusters "
                                 f"(at least k + 1 = {kmax + 1} rows are needed); lower k_range or n_clusters")
        names = [f"{name}{_PER_SESSION}" if r else name for name, r in zip(inputs, rate)]
        T = self._transformed(M, sessions)
        del M
        failures = []
        for j, name in enumerate(names):
            col = T[:, j]
            ok = col[~np.isnan(col)]
            if ok.size == 0:
                failures.append({"column": inputs[j], "check": "all_missing", "count": n, "examples": None,
                                 "message": f"Feature {inputs[j]!r} is missing on every row; drop it from the features"})
            elif ok.min() == ok.max():
                failures.append({"column": inputs[j], "check": "constant", "count": int(ok.size), "examples": None,
                                 "message": f"Feature {name!r} is constant (every non-missing value is {ok[0]:g}) and "
                                 "cannot separate clusters; drop it from the features"})
        if failures:
            raise SchemaError(failures, title="feature table cannot be clustered")
        self.feature_names_in_ = np.asarray(inputs, dtype=object)
        self.feature_names_ = names
        self.units_ = {nm: self._unit(inp) for nm, inp in zip(names, inputs)}
        self.n_features_in_ = len(inputs)
        self.n_samples_ = n
        self.n_missing_ = pd.Series(np.isnan(T).sum(axis=0), index=names, name="n_missing")
        self.fill_values_ = pd.Series(np.nanmedian(T, axis=0), index=names, name="fill")
        T = self._filled(T, what="feature table", df=df)
        if p["scaler"] == "standard":
            center, scale = T.mean(axis=0), T.std(axis=0)
        else:
            center = np.median(T, axis=0)
            q75, q25 = np.percentile(T, [75, 25], axis=0)
            scale = np.where(q75 - q25 > 0, q75 - q25, _IQR_PER_SD * T.std(axis=0))
        self.center_ = pd.Series(center, index=names, name="center")
        self.scale_ = pd.Series(scale, index=names, name="scale")
        method = p["method"]
        if method == "auto":
            method = "minibatch" if n > MINIBATCH_ABOVE else "kmeans"
        self.method_ = method
        seeds = np.random.SeedSequence(self.random_state)
        s_fit, s_sil, s_boot, s_stab, s_pca = (int(c.generate_state(1)[0]) for c in seeds.spawn(5))

        with self._threads(p["n_jobs"]):
            self.pca_ = None
            Xs = np.subtract(T, center, order="C")
            Xs /= scale
            if p["pca"] is not None:
                from sklearn.decomposition import PCA

                if isinstance(p["pca"], int) and p["pca"] > len(names):
                    raise ParameterError("pca", p["pca"], message=f"Parameter 'pca' asks for {p['pca']} components but "
                                         f"there are only {len(names)} features")
                solver = "covariance_eigh" if n >= 10 * len(names) else "full"
                self.pca_ = PCA(n_components=p["pca"], svd_solver=solver, random_state=s_pca).fit(Xs)
                Xs = self.pca_.transform(Xs)
            Xm = np.ascontiguousarray(Xs, dtype=np.float64)
            del Xs
            if n <= 200_000:
                distinct = np.unique(Xm, axis=0).shape[0]
                if distinct <= kmax:
                    raise ParameterError("k_range" if p["rule_ks"] else "n_clusters", kmax,
                                         message=f"The feature table has only {distinct:,} distinct row(s), too few for "
                                         f"k={kmax} clusters; lower k_range or n_clusters, or add features")
            fit_all = self._fitter(method, p)
            fits = fit_all(Xm, p["ks"], s_fit)
            rows = {k: _partition_stats(Xm, fits[k][0], int(fits[k][0].max()) + 1) for k in p["ks"]}
            sil = self._silhouette(Xm, fits, p, s_sil, s_boot)
            stab = self._stability(Xm, p, s_stab)
            self._finish(T, fits, rows, sil, stab, p, ids)
        return self

    def _silhouette(self, Xm: np.ndarray, fits: dict, p: dict, s_sil: int, s_boot: int) -> dict[int, dict[str, float]]:
        n = Xm.shape[0]
        size = min(n, p["silhouette_sample"])
        rng = np.random.default_rng(s_sil)
        idx = np.arange(n) if size == n else np.sort(rng.choice(n, size, replace=False))
        ks = list(fits)
        values = _silhouettes(Xm[idx], [fits[k][0][idx] for k in ks])
        boot = None
        if p["n_bootstrap"]:
            boot = np.random.default_rng(s_boot).integers(0, size, size=(p["n_bootstrap"], size))
        self.silhouette_sample_size_ = size
        out = {}
        for k, v in zip(ks, values):
            row = {"silhouette": float(v.mean()), "silhouette_low": math.nan, "silhouette_high": math.nan,
                   "silhouette_n": size}
            if boot is not None and np.isfinite(v).all():
                means = v[boot].mean(axis=1)
                row["silhouette_low"], row["silhouette_high"] = (float(q) for q in np.percentile(means, [2.5, 97.5]))
            out[k] = row
        return out

    def _stability(self, Xm: np.ndarray, p: dict, seed: int) -> dict[int, dict[str, float]]:
        runs = p["stability_runs"]
        ks = p["ks"]
        empty = {k: {"stability": math.nan, "stability_sd": math.nan, "stability_pairs": 0} for k in ks}
        self.stability_subsample_size_ = 0
        self.stability_method_ = None
        if runs == 0:
            return empty
        n = Xm.shape[0]
        frac = p["stability_fraction"]
        nb = min(n, p["stability_sample"])
        if self.method_ == "ward":
            nb = min(nb, int(math.ceil(p["ward_sample"] / frac)))
        m = int(round(frac * nb))
        if m <= max(ks):
            raise ParameterError("stability_fraction", frac, message=f"Stability subsamples of {m:,} rows "
                                 f"(stability_fraction={frac:g} of {nb:,}) are too small for k={max(ks)}; raise "
                                 "stability_fraction or stability_sample, lower k_range, or pass stability_runs=0")
        self.stability_subsample_size_ = m
        method = self.method_
        if p["method"] in ("auto", "spark_kmeans"):  # the method auto picks at the subsample's size
            method = "minibatch" if m > MINIBATCH_ABOVE else "kmeans"
        self.stability_method_ = method
        fit_all = self._fitter(method, p)
        rng = np.random.default_rng(seed)
        base = np.arange(n) if nb == n else np.sort(rng.choice(n, nb, replace=False))
        subsets, labels = [], []
        for _ in range(runs):
            sub = np.sort(rng.choice(nb, m, replace=False))
            fit_seed = int(rng.integers(2**31 - 1))
            subsets.append(sub)
            labels.append({k: v[0] for k, v in fit_all(Xm[base[sub]], ks, fit_seed).items()})
        scores: dict[int, list[float]] = {k: [] for k in ks}
        for i in range(runs):
            for j in range(i + 1, runs):
                _, ia, ib = np.intersect1d(subsets[i], subsets[j], assume_unique=True, return_indices=True)
                for k in ks:
                    scores[k].append(_ari(labels[i][k][ia], labels[j][k][ib]))
        return {k: {"stability": float(np.mean(v)), "stability_sd": float(np.std(v)), "stability_pairs": len(v)}
                for k, v in scores.items()}

    def _finish(self, T: np.ndarray, fits: dict, rows: dict, sil: dict, stab: dict, p: dict, ids: np.ndarray) -> None:
        table = pd.DataFrame({k: {**rows[k], **sil[k], **stab[k]} for k in p["ks"]}).T
        table.index = pd.Index([int(k) for k in table.index], name="k")
        rule_ks = p["rule_ks"]
        knee = _knee(rule_ks, table.loc[rule_ks, "inertia"].tolist()) if rule_ks else None
        table["knee"] = [k == knee for k in table.index]
        rule_k, candidates, why = (None, set(), "")
        if rule_ks:
            rule_k, candidates, why = _choose_k(table.loc[rule_ks], knee=knee, tol=p["silhouette_tol"],
                                                min_stability=p["min_stability"], use_stability=p["stability_runs"] > 0,
                                                silhouette_n=self.silhouette_sample_size_,
                                                subsample_n=self.stability_subsample_size_)
        chosen = p["n_clusters"] if p["n_clusters"] is not None else rule_k
        if p["n_clusters"] is not None:
            r = table.loc[chosen]
            why = (f"k={chosen} was fixed by n_clusters (silhouette {r['silhouette']:.3f}, Davies–Bouldin "
                   f"{r['davies_bouldin']:.2f}, Calinski–Harabasz {r['calinski_harabasz']:,.0f}"
                   + (f", stability {r['stability']:.2f}" if p["stability_runs"] else "") + ")."
                   + (f" The validation rule would choose k={rule_k}: {why}" if rule_k is not None else ""))
        table["candidate"] = [k in candidates for k in table.index]
        table["chosen"] = table.index == chosen
        for col in ("knee", "candidate", "chosen"):
            table[col] = table[col].astype(bool)
        table["silhouette_n"] = table["silhouette_n"].astype(np.int64)
        table["stability_pairs"] = table["stability_pairs"].astype(np.int64)
        self.validation_ = table[_VALIDATION_COLUMNS]
        self.knee_k_ = knee
        self.chosen_k_ = int(chosen)
        self.reason_ = why
        labels, centers = fits[chosen]
        self.labels_ = labels
        self.cluster_centers_ = centers
        self.n_clusters_ = int(labels.max()) + 1
        self.user_ids_ = ids
        # profiles in the transformed, filled space (before scaling), standardized by mean and sd
        self._profile_mean = T.mean(axis=0)
        sd = T.std(axis=0)
        self._profile_sd = np.where(sd > 0, sd, 1.0)
        self._profiles = self._profile_frames(T, labels)
        self.names_ = _names(self._profiles["zscore"])

    def _profile_frames(self, T: np.ndarray, labels: np.ndarray) -> dict[str, pd.DataFrame]:
        k = self.n_clusters_
        sizes, means = _cluster_means(T, labels, k)
        index = pd.Index(range(k), name="cluster")
        z = pd.DataFrame((means - self._profile_mean) / self._profile_sd, index=index, columns=self.feature_names_)
        back = means.copy()
        for j, name in enumerate(self._inputs):  # cluster means of the transformed values, back in input units
            if self._log_unit(name):
                back[:, j] = np.expm1(back[:, j])
        mean = pd.DataFrame(back, index=index, columns=self.feature_names_)
        return {"zscore": z, "mean": mean, "sizes": pd.Series(sizes.astype(np.int64), index=index, name="n_users")}

    # -- using the fitted model -----------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(X) first")

    def _prepare(self, X: Any) -> tuple[pd.DataFrame, np.ndarray]:
        self._check_fitted()
        df = self._frame(X)
        M, sessions = self._raw(df, self._inputs, any(self._rate), what="feature table")
        T = self._filled(self._transformed(M, sessions), what="feature table", df=df)
        return df, T

    def predict(self, X: Any) -> np.ndarray:
        """Cluster of each row of ``X``: the nearest centre after the fitted transforms.

        For k-means these are the training labels on the training rows; for Ward on a sample,
        rows of the sample keep their tree labels in ``labels_``.

        Examples
        --------
        >>> t = pd.DataFrame({"a": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2]})
        >>> m = BehaviorClusterer(features=[], extra_features=["a"], n_clusters=2, k_range=None,
        ...                       stability_runs=0).fit(t)
        >>> m.predict(pd.DataFrame({"a": [4.0, -1.0]})).tolist()
        [1, 0]
        """
        _, T = self._prepare(X)
        return _assign(self._model_space(T), self.cluster_centers_)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit and return ``labels_``."""
        return self.fit(X).labels_

    def preprocess(self, X: Any) -> pd.DataFrame:
        """``X`` in the scaled feature space (before PCA), one column per ``feature_names_``.

        Examples
        --------
        >>> t = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
        >>> m = BehaviorClusterer(features=[], extra_features=["a"], n_clusters=2, k_range=None,
        ...                       stability_runs=0).fit(t)
        >>> m.preprocess(t)["a"].round(2).tolist()
        [-1.34, -0.45, 0.45, 1.34]
        """
        df, T = self._prepare(X)
        Z = (T - self.center_.to_numpy()) / self.scale_.to_numpy()
        return pd.DataFrame(Z, index=df.index, columns=self.feature_names_)

    def profiles(self, X: Any = None, *, kind: Literal["zscore", "mean"] = "zscore") -> pd.DataFrame:
        """Per cluster, the centroid of each feature as a z-score or as a mean.

        Parameters
        ----------
        X : DataFrame, optional
            Profile these rows (assigned by :meth:`predict`) instead of the training rows; z-scores
            stay relative to the training population.
        kind : {"zscore", "mean"}, default="zscore"
            ``"zscore"``: (cluster mean - mean of all users) / sd of all users, in the transformed
            space (per session, log1p), so +1 means one standard deviation above a typical user.
            ``"mean"``: the cluster mean of the transformed feature mapped back to the feature's
            units (for log1p features, ``expm1`` of the mean log: a geometric-type mean).

        Returns
        -------
        DataFrame
            Index ``cluster`` (0 the largest), one column per ``feature_names_``; ``attrs`` holds
            ``n_users`` (list) and ``names``.

        Examples
        --------
        >>> t = pd.DataFrame({"a": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2]})
        >>> m = BehaviorClusterer(features=[], extra_features=["a"], n_clusters=2, k_range=None,
        ...                       stability_runs=0).fit(t)
        >>> m.profiles().round(2)["a"].tolist()
        [-1.0, 1.0]
        """
        self._check_fitted()
        _check_choice("kind", kind, ("zscore", "mean"))
        if X is None:
            out = self._profiles[kind].copy()
            sizes = self._profiles["sizes"]
        else:
            _, T = self._prepare(X)
            frames = self._profile_frames(T, _assign(self._model_space(T), self.cluster_centers_))
            out, sizes = frames[kind], frames["sizes"]
        out.attrs["n_users"] = sizes.tolist()
        out.attrs["names"] = list(self.names_)
        out.attrs["kind"] = kind
        return out

    def top_features(self, n: int = 3) -> pd.DataFrame:
        """The ``n`` features that set each cluster apart most (largest absolute z-score).

        Returns
        -------
        DataFrame
            Columns ``cluster``, ``name``, ``rank`` (1 = most distinctive), ``feature``, ``zscore``
            and ``direction`` (``"high"`` or ``"low"``), ``n`` rows per cluster.

        Examples
        --------
        >>> t = pd.DataFrame({"a": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2], "b": [3.0, 2.0, 1.0, 2.0, 2.0, 3.0]})
        >>> m = BehaviorClusterer(features=[], extra_features=["a", "b"], n_clusters=2, k_range=None,
        ...                       stability_runs=0).fit(t)
        >>> m.top_features(1)[["cluster", "feature", "direction"]].values.tolist()
        [[0, 'a', 'low'], [1, 'a', 'high']]
        """
        self._check_fitted()
        n = _check_int("n", n, 1)
        z = self._profiles["zscore"]
        rows = []
        for c in z.index:
            order = _ranked(z.loc[c])
            for rank, feat in enumerate(order[:n], start=1):
                v = float(z.loc[c, feat])
                rows.append({"cluster": int(c), "name": self.names_[c], "rank": rank, "feature": feat, "zscore": v,
                             "direction": "high" if v >= 0 else "low"})
        return pd.DataFrame(rows, columns=["cluster", "name", "rank", "feature", "zscore", "direction"])

    def summary(self, n_top: int = 3) -> pd.DataFrame:
        """One row per cluster: ``name``, ``n_users``, ``share`` and ``top_features`` (text with z-scores).

        Examples
        --------
        >>> t = pd.DataFrame({"a": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2, 5.3]})
        >>> m = BehaviorClusterer(features=[], extra_features=["a"], n_clusters=2, k_range=None,
        ...                       stability_runs=0).fit(t)
        >>> m.summary()[["name", "n_users"]].values.tolist()
        [['high a', 4], ['low a', 3]]
        """
        self._check_fitted()
        top = self.top_features(n_top)
        sizes = self._profiles["sizes"]
        text = top.groupby("cluster").apply(
            lambda g: ", ".join(f"{f} {z:+.2f}" for f, z in zip(g["feature"], g["zscore"])), include_groups=False)
        return pd.DataFrame({"name": self.names_, "n_users": sizes.to_numpy(),
                             "share": sizes.to_numpy() / sizes.sum(), "top_features": text.reindex(sizes.index).to_numpy()},
                            index=sizes.index)

    def assignments(self) -> pd.DataFrame:
        """The training rows' clusters: ``user_col``, ``cluster`` and ``cluster_name``.

        Examples
        --------
        >>> t = pd.DataFrame({"user_id": list("abcdef"), "a": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2]})
        >>> m = BehaviorClusterer(features=[], extra_features=["a"], n_clusters=2, k_range=None,
        ...                       stability_runs=0).fit(t)
        >>> m.assignments().iloc[[3]].values.tolist()
        [['d', 1, 'high a']]
        """
        self._check_fitted()
        names = np.asarray(self.names_, dtype=object)
        return pd.DataFrame({self.user_col: self.user_ids_, "cluster": self.labels_.tolist(),
                             "cluster_name": pd.array(names[self.labels_], dtype="string")})

    def crosstab(self, membership: pd.DataFrame, *, normalize: bool = False) -> pd.DataFrame:
        """Clusters against rule segments: users of each cluster in each segment.

        Parameters
        ----------
        membership : DataFrame
            A membership table (:func:`segkit.segments.evaluate_segments`): one row per (user,
            segment) with ``user_col`` and ``segment``. A user may be in several segments, so a
            row can add up to more than its cluster's size.
        normalize : bool, default=False
            Shares of the cluster's users instead of counts.

        Returns
        -------
        DataFrame
            Index: cluster names (in cluster order); columns: the segments (definition order from
            ``attrs["segments"]`` when present, then by appearance), ``"(no segment)"`` (users in
            none) and ``n_users``. Members not among the clustered users are ignored (their count
            is in ``attrs["n_unmatched"]``).

        Examples
        --------
        >>> t = pd.DataFrame({"user_id": list("abcdef"), "a": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2]})
        >>> m = BehaviorClusterer(features=[], extra_features=["a"], n_clusters=2, k_range=None,
        ...                       stability_runs=0).fit(t)
        >>> seg = pd.DataFrame({"user_id": ["a", "b", "e"], "segment": ["s", "s", "s"]})
        >>> m.crosstab(seg).values.tolist()
        [[2, 1, 3], [1, 2, 3]]
        """
        self._check_fitted()
        if not isinstance(membership, pd.DataFrame):
            raise ParameterError("membership", type(membership).__name__, message="membership must be a pandas "
                                 f"DataFrame (the output of evaluate_segments), got {type(membership).__name__}")
        if not isinstance(normalize, (bool, np.bool_)):
            raise ParameterError("normalize", normalize, [True, False])
        check_columns(membership.columns, [self.user_col, "segment"], what="membership table")
        segments = [str(s) for s in membership.attrs.get("segments") or []]
        for s in membership["segment"].dropna().astype(str).unique():
            if s not in segments:
                segments.append(s)
        ids = pd.Series(self.user_ids_).astype(str)
        pos = pd.Series(np.arange(ids.size), index=ids.to_numpy())
        mem = membership[[self.user_col, "segment"]].dropna()
        users = mem[self.user_col].astype(str)
        known = users.isin(pos.index).to_numpy()
        rows = pos.loc[users[known]].to_numpy()
        cl = self.labels_[rows]
        seg_code = pd.Categorical(mem["segment"].astype(str)[known], categories=segments).codes
        pairs = pd.DataFrame({"c": cl, "s": seg_code, "r": rows}).drop_duplicates()
        k = self.n_clusters_
        counts = np.zeros((k, len(segments)), dtype=np.int64)
        np.add.at(counts, (pairs["c"].to_numpy(), pairs["s"].to_numpy()), 1)
        in_any = np.zeros(ids.size, dtype=bool)
        in_any[rows] = True
        sizes = np.bincount(self.labels_, minlength=k)
        none = np.bincount(self.labels_[~in_any], minlength=k)
        out = pd.DataFrame(counts, columns=segments, index=pd.Index(self.names_, name="cluster"))
        out["(no segment)"] = none
        if normalize:
            out = out.div(sizes, axis=0)
        out["n_users"] = sizes
        out.columns.name = "segment"
        out.attrs["n_unmatched"] = int((~known).sum())
        return out

    def ari(self, truth: Any, *, label_col: str = "persona") -> float:
        """Adjusted Rand index between ``labels_`` and known labels (planted personas).

        Parameters
        ----------
        truth : DataFrame or array-like
            A table with ``user_col`` and ``label_col`` (e.g. ``Shop.truth``), matched on the
            ids; or one label per training row, in order. Rows without a label are left out.
        label_col : str, default="persona"

        Examples
        --------
        >>> t = pd.DataFrame({"user_id": list("abcdef"), "a": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2]})
        >>> m = BehaviorClusterer(features=[], extra_features=["a"], n_clusters=2, k_range=None,
        ...                       stability_runs=0).fit(t)
        >>> m.ari(pd.DataFrame({"user_id": list("abcdef"), "persona": list("xxxyyy")}))
        1.0
        """
        self._check_fitted()
        from sklearn.metrics import adjusted_rand_score

        if isinstance(truth, pd.DataFrame):
            check_columns(truth.columns, [self.user_col, label_col], what="truth table")
            lookup = truth.assign(_k=truth[self.user_col].astype(str)).drop_duplicates("_k").set_index("_k")[label_col]
            labels = pd.Series(pd.Series(self.user_ids_).astype(str).map(lookup).to_numpy())
        else:
            arr = np.asarray(truth, dtype=object)
            if arr.ndim != 1 or arr.size != self.n_samples_:
                raise ParameterError("truth", f"array of shape {arr.shape}", message=f"truth must be a table with "
                                     f"{self.user_col!r} and {label_col!r}, or one label per training row "
                                     f"({self.n_samples_:,}); got shape {arr.shape}")
            labels = pd.Series(arr)
        ok = labels.notna().to_numpy()
        if ok.sum() < 2:
            raise ParameterError("truth", None, message=f"truth labels only {int(ok.sum())} of the clustered rows; "
                                 "the ARI needs at least 2")
        return float(adjusted_rand_score(labels[ok].astype(str).to_numpy(), self.labels_[ok]))


# ---------------------------------------------------------------------------------------------
# Choosing k, naming clusters
# ---------------------------------------------------------------------------------------------


def _choose_k(table: pd.DataFrame, *, knee: int | None, tol: float, min_stability: float, use_stability: bool,
              silhouette_n: int, subsample_n: int) -> tuple[int, set[int], str]:
    """Apply the k rule (module docstring) to the rows of ``table``; return (k, candidates, reason)."""
    ks = [int(k) for k in table.index]
    region = [k for k in ks if knee is None or k >= knee]
    sil = table["silhouette"]
    stab = table["stability"]
    finite = [k for k in region if np.isfinite(sil[k])]
    if not finite:
        k = max(region, key=lambda kk: stab[kk] if use_stability and np.isfinite(stab[kk]) else -kk)
        return k, set(), f"k={k}: no silhouette could be computed, so k is the most stable at or beyond the elbow."
    best = max(finite, key=lambda kk: (sil[kk], -kk))
    near = [k for k in finite if sil[k] >= sil[best] - tol]
    if use_stability:
        stable = [k for k in near if stab[k] >= min_stability]
        chosen = max(stable) if stable else max(near, key=lambda kk: (stab[kk], -kk))
        candidates = set(stable)
    else:
        stable = near
        chosen = max(near)
        candidates = set(near)
    r = table.loc[chosen]
    lo_k, hi_k = ks[0], ks[-1]
    where = (f"at or beyond the elbow of the inertia curve (knee at k={knee})" if knee is not None
             else "in the range (no knee was found in the inertia curve, so every k counts)")
    if use_stability and stable:
        lead = (f"k={chosen} is the largest k of {lo_k}-{hi_k} {where} whose silhouette is within {tol:g} of the best "
                f"there and whose stability reaches {min_stability:g}")
    elif use_stability:
        lead = (f"k={chosen}: no k {where} with a silhouette within {tol:g} of the best reached stability "
                f"{min_stability:g}, so k is the most stable of them (treat these clusters with caution)")
    else:
        lead = (f"k={chosen} is the largest k of {lo_k}-{hi_k} {where} whose silhouette is within {tol:g} of the best "
                "there (stability not computed)")
    ci = (f", 95% CI {r['silhouette_low']:.3f}-{r['silhouette_high']:.3f}" if np.isfinite(r["silhouette_low"]) else "")
    parts = [lead + ".",
             f"Silhouette {r['silhouette']:.3f}{ci} on {silhouette_n:,} sampled rows, against a best of "
             f"{sil[best]:.3f} at k={best}" + (f" (k={chosen} itself)" if best == chosen else "") + "."]
    overall = max((k for k in ks if np.isfinite(sil[k])), key=lambda kk: (sil[kk], -kk))
    if overall not in region:
        parts.append(f"The silhouette peaks below the elbow, at k={overall} ({sil[overall]:.3f}).")
    if use_stability:
        parts.append(f"Stability (ARI between subsample clusterings of {subsample_n:,} rows, "
                     f"{int(r['stability_pairs'])} pairs) {r['stability']:.2f} ± {r['stability_sd']:.2f}.")
    db, ch = table["davies_bouldin"], table["calinski_harabasz"]
    k_db, k_ch = int(db.idxmin()), int(ch.idxmax())
    parts.append(f"Davies–Bouldin {r['davies_bouldin']:.2f} (lowest {db[k_db]:.2f} at k={k_db}); "
                 f"Calinski–Harabasz {r['calinski_harabasz']:,.0f} (highest {ch[k_ch]:,.0f} at k={k_ch}).")
    if chosen == hi_k and len(ks) > 1:
        parts.append(f"k={chosen} is the top of k_range: widen it to see whether more clusters hold up.")
    return int(chosen), candidates, " ".join(parts)


def _ranked(z: pd.Series) -> list[str]:
    """Features by decreasing |z| (ties: feature order)."""
    vals = z.to_numpy(dtype="float64")
    order = sorted(range(vals.size), key=lambda j: (-abs(vals[j]) if np.isfinite(vals[j]) else 0.0, j))
    return [z.index[j] for j in order]


def _display(feature: str) -> str:
    return feature[: -len(_PER_SESSION)] if feature.endswith(_PER_SESSION) else feature


def _names(z: pd.DataFrame, n_words: int = 2) -> list[str]:
    """A unique name per cluster from its top features: ``"high blog_views, low purchases"``."""
    ranked = {c: _ranked(z.loc[c]) for c in z.index}

    def name(c: Any, words: int) -> str:
        return ", ".join(f"{'high' if z.loc[c, f] >= 0 else 'low'} {_display(f)}" for f in ranked[c][:words])

    words = {c: min(n_words, z.shape[1]) for c in z.index}
    names = {c: name(c, words[c]) for c in z.index}
    while True:
        groups: dict[str, list[Any]] = {}
        for c, nm in names.items():
            groups.setdefault(nm, []).append(c)
        clash = [cs for cs in groups.values() if len(cs) > 1]
        grown = False
        for cs in clash:
            for c in cs:
                if words[c] < z.shape[1]:
                    words[c] += 1
                    names[c] = name(c, words[c])
                    grown = True
        if not clash or not grown:
            break
    seen: dict[str, int] = {}
    out = []
    for c in z.index:
        nm = names[c]
        seen[nm] = seen.get(nm, 0) + 1
        out.append(nm if seen[nm] == 1 else f"{nm} ({seen[nm]})")
    return out


# ---------------------------------------------------------------------------------------------
# One call
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterResult:
    """What :func:`cluster_users` returns.

    Attributes
    ----------
    model : BehaviorClusterer
        The fitted model (for :meth:`~BehaviorClusterer.predict`, :meth:`~BehaviorClusterer.crosstab`,
        :meth:`~BehaviorClusterer.ari`).
    assignments : DataFrame
        ``user_col``, ``cluster``, ``cluster_name`` per user.
    validation : DataFrame
        ``model.validation_``: the metrics per k.
    summary : DataFrame
        ``model.summary()``: name, size, share and top features per cluster.
    profiles : DataFrame
        ``model.profiles()``: centroid z-scores.
    chosen_k : int
    reason : str
    """

    model: BehaviorClusterer
    assignments: pd.DataFrame = field(repr=False)
    validation: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    profiles: pd.DataFrame = field(repr=False)
    chosen_k: int = 0
    reason: str = ""

    @property
    def names(self) -> list[str]:
        """Cluster names, in cluster order."""
        return list(self.model.names_)


def cluster_users(table: Any, /, **params: Any) -> ClusterResult:
    """Cluster a user feature table with validation and return everything a notebook shows.

    Parameters
    ----------
    table : DataFrame, Parquet path or Ibis table
        One row per user (:func:`segkit.features.build_user_features`).
    **params
        Parameters of :class:`BehaviorClusterer` (``features=[...]`` selects the columns).
        An unknown name raises :class:`ParameterError` with a did-you-mean hint.

    Returns
    -------
    ClusterResult

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(240, n_features=2, centers=[[0, 0], [8, 0], [0, 8]], random_state=0)
    >>> t = pd.DataFrame({"user_id": range(240), "x": X[:, 0], "y": X[:, 1]})
    >>> res = cluster_users(t, features=[], extra_features=["x", "y"], k_range=(2, 5), stability_runs=4)
    >>> res.chosen_k, res.summary["n_users"].sum()
    (3, np.int64(240))
    """
    allowed = list(BehaviorClusterer().get_params())
    for key in params:
        if key not in allowed:
            raise ParameterError(key, params[key], message=f"Unknown parameter {key!r} of cluster_users;"
                                 f"{did_you_mean(key, allowed)} allowed: {format_allowed(allowed, limit=30)}")
    model = BehaviorClusterer(**params).fit(table)
    return ClusterResult(model=model, assignments=model.assignments(), validation=model.validation_,
                         summary=model.summary(), profiles=model.profiles(), chosen_k=model.chosen_k_,
                         reason=model.reason_)


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------


def _validation_of(obj: Any) -> pd.DataFrame:
    if isinstance(obj, ClusterResult):
        return obj.validation
    if isinstance(obj, BehaviorClusterer):
        obj._check_fitted()
        return obj.validation_
    if isinstance(obj, pd.DataFrame):
        check_columns(obj.columns, ["inertia", "silhouette", "davies_bouldin", "calinski_harabasz", "stability"],
                      what="validation table")
        return obj
    raise ParameterError("validation", type(obj).__name__, message="Expected a fitted BehaviorClusterer, a "
                         f"ClusterResult or its validation table; got {type(obj).__name__}")


def _mark_chosen(ax: Axes, table: pd.DataFrame) -> None:
    if "chosen" in table.columns and table["chosen"].any():
        k = int(table.index[table["chosen"].to_numpy(dtype=bool)][0])
        ax.axvline(k, color="#C44E52", linestyle="--", linewidth=1.2, label=f"chosen k={k}")


def plot_elbow(validation: Any, *, ax: Axes | None = None) -> Figure:
    """Inertia against k, with the knee and the chosen k marked.

    Parameters
    ----------
    validation : BehaviorClusterer, ClusterResult or DataFrame
        A fitted model, its result, or ``validation_``.
    ax : Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    Figure

    Examples
    --------
    >>> t = pd.DataFrame({"a": [0.0, 0.2, 0.4, 5.0, 5.2, 5.4, 9.0, 9.2, 9.4, 9.6]})
    >>> m = BehaviorClusterer(features=[], extra_features=["a"], k_range=(2, 5), stability_runs=0).fit(t)
    >>> fig = plot_elbow(m)
    >>> fig.axes[0].get_xlabel()
    'k (number of clusters)'
    """
    import matplotlib.pyplot as plt

    table = _validation_of(validation)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    ks = table.index.to_numpy()
    ax.plot(ks, table["inertia"], marker="o", color="#4C72B0", label="inertia")
    if "knee" in table.columns and table["knee"].any():
        kn = int(ks[table["knee"].to_numpy(dtype=bool)][0])
        ax.scatter([kn], [table.loc[kn, "inertia"]], s=140, facecolors="none", edgecolors="#55A868", linewidths=2,
                   label=f"knee k={kn}", zorder=3)
    _mark_chosen(ax, table)
    ax.set_xlabel("k (number of clusters)")
    ax.set_ylabel("within-cluster sum of squares")
    ax.set_title("Elbow: inertia by number of clusters")
    ax.set_xticks(ks)
    ax.legend(frameon=False)
    ax.figure.tight_layout()
    return ax.figure


def plot_validation(validation: Any) -> Figure:
    """Four panels against k: silhouette with its bootstrap interval, Davies–Bouldin,
    Calinski–Harabasz and stability (mean ± sd, with the threshold when known).

    Examples
    --------
    >>> t = pd.DataFrame({"a": [0.0, 0.2, 0.4, 5.0, 5.2, 5.4, 9.0, 9.2, 9.4, 9.6]})
    >>> m = BehaviorClusterer(features=[], extra_features=["a"], k_range=(2, 4), stability_runs=0).fit(t)
    >>> len(plot_validation(m).axes)
    4
    """
    import matplotlib.pyplot as plt

    threshold = None
    if isinstance(validation, ClusterResult):
        threshold = validation.model.min_stability
    elif isinstance(validation, BehaviorClusterer):
        threshold = validation.min_stability
    table = _validation_of(validation)
    ks = table.index.to_numpy()
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    (a_sil, a_db), (a_ch, a_st) = axes
    a_sil.plot(ks, table["silhouette"], marker="o", color="#4C72B0")
    if {"silhouette_low", "silhouette_high"} <= set(table.columns) and table["silhouette_low"].notna().any():
        a_sil.fill_between(ks, table["silhouette_low"], table["silhouette_high"], color="#4C72B0", alpha=0.2,
                           label="95% bootstrap interval")
        a_sil.legend(frameon=False, fontsize=8)
    n_sil = int(table["silhouette_n"].iloc[0]) if "silhouette_n" in table.columns else None
    a_sil.set_title("Silhouette (higher is better)" + (f", {n_sil:,} sampled rows" if n_sil else ""))
    a_db.plot(ks, table["davies_bouldin"], marker="o", color="#DD8452")
    a_db.set_title("Davies–Bouldin (lower is better)")
    a_ch.plot(ks, table["calinski_harabasz"], marker="o", color="#55A868")
    a_ch.set_title("Calinski–Harabasz (higher is better)")
    if table["stability"].notna().any():
        sd = table["stability_sd"] if "stability_sd" in table.columns else 0
        a_st.errorbar(ks, table["stability"], yerr=sd, marker="o", color="#8172B3", capsize=3)
        if threshold is not None:
            a_st.axhline(threshold, color="grey", linestyle=":", label=f"threshold {threshold:g}")
            a_st.legend(frameon=False, fontsize=8)
        a_st.set_ylim(min(0.0, float(np.nanmin(table["stability"] - sd))) if np.isfinite(np.nanmin(table["stability"])) else 0, 1.05)
    else:
        a_st.text(0.5, 0.5, "stability not computed", ha="center", va="center", transform=a_st.transAxes)
    a_st.set_title("Stability: ARI between subsample runs")
    for ax in axes.ravel():
        _mark_chosen(ax, table)
        ax.set_xticks(ks)
    for ax in axes[1]:
        ax.set_xlabel("k (number of clusters)")
    fig.tight_layout()
    return fig


def plot_cluster_profiles(profiles: Any, *, ax: Axes | None = None, annotate: bool = True) -> Figure:
    """Heatmap of the centroid z-scores: clusters (with names and sizes) by features.

    Parameters
    ----------
    profiles : BehaviorClusterer, ClusterResult or DataFrame
        A fitted model, its result, or :meth:`BehaviorClusterer.profiles` (z-scores).
    ax : Axes, optional
        Where to draw; a new figure by default.
    annotate : bool, default=True
        Write each z-score in its cell.

    Returns
    -------
    Figure

    Examples
    --------
    >>> t = pd.DataFrame({"a": [0.0, 0.1, 0.2, 5.0, 5.1, 5.2], "b": [3.0, 2.0, 1.0, 2.0, 2.0, 3.0]})
    >>> m = BehaviorClusterer(features=[], extra_features=["a", "b"], n_clusters=2, k_range=None,
    ...                       stability_runs=0).fit(t)
    >>> len(plot_cluster_profiles(m).axes[0].texts)
    4
    """
    import matplotlib.pyplot as plt

    if isinstance(profiles, ClusterResult):
        z = profiles.profiles
    elif isinstance(profiles, BehaviorClusterer):
        z = profiles.profiles()
    elif isinstance(profiles, pd.DataFrame):
        z = profiles
    else:
        raise ParameterError("profiles", type(profiles).__name__, message="Expected a fitted BehaviorClusterer, a "
                             f"ClusterResult or a profiles table; got {type(profiles).__name__}")
    if z.empty:
        raise ParameterError("profiles", None, message="profiles has no clusters to plot")
    if z.attrs.get("kind", "zscore") != "zscore":
        raise ParameterError("profiles", z.attrs.get("kind"), message="plot_cluster_profiles draws z-scores; pass "
                             "profiles(kind='zscore')")
    values = z.to_numpy(dtype="float64")
    lim = float(max(1.0, min(3.0, np.nanmax(np.abs(values))))) if np.isfinite(values).any() else 1.0
    names = z.attrs.get("names") or [str(i) for i in z.index]
    sizes = z.attrs.get("n_users")
    labels = [f"{c}: {nm}" + (f" (n={int(s):,})" if sizes else "") for c, nm, s in
              zip(z.index, names, sizes or [None] * len(z))]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.55 * z.shape[1] + 5), max(3.0, 0.5 * z.shape[0] + 2)))
    image = ax.imshow(values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="z-score of the cluster mean", fraction=0.04, pad=0.02)
    ax.set_xticks(range(z.shape[1]), [str(c) for c in z.columns], rotation=40, ha="right")
    ax.set_yticks(range(z.shape[0]), labels)
    ax.set_xticks(np.arange(-0.5, z.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, z.shape[0]), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.grid(which="major", visible=False)
    ax.tick_params(which="minor", length=0)
    if annotate:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(v) > 0.6 * lim else "black")
    ax.set_title("Cluster profiles: centroid z-scores (0 = a typical user)")
    ax.figure.tight_layout()
    return ax.figure


#: Units of the numeric session columns of the UCI Online Shoppers table (log1p for counts,
#: seconds and currency; shares only scaled).
ONLINE_SHOPPERS_UNITS: dict[str, str] = {
    "Administrative": "count", "Administrative_Duration": "s", "Informational": "count",
    "Informational_Duration": "s", "ProductRelated": "count", "ProductRelated_Duration": "s",
    "BounceRates": "share", "ExitRates": "share", "PageValues": "currency",
}


def online_shoppers_sessions(path: str | Any) -> pd.DataFrame:
    """The UCI Online Shoppers table as sessions to cluster (``extra_features=ONLINE_SHOPPERS_UNITS``).

    A duration of -1 (33 rows) marks an unknown duration and becomes missing (imputed by the
    clusterer); every other column is kept as read, ``Revenue`` included for profiling.
    """
    from pathlib import Path

    if not Path(path).exists():
        raise ParameterError("path", str(path), message=f"UCI Online Shoppers file {str(path)!r} does not exist")
    raw = pd.read_csv(path)
    check_columns(raw.columns, list(ONLINE_SHOPPERS_UNITS), what="UCI Online Shoppers table")
    durations = [c for c, u in ONLINE_SHOPPERS_UNITS.items() if u == "s"]
    return raw.assign(**{c: raw[c].mask(raw[c] < 0) for c in durations})
