"""A classifier that tries to tell current from reference examples: its held-out AUC, p-value and leanings.

Lipton et al., *Detecting and Correcting for Label Shift*, 2018; Rabanser et al., *Failing Loudly*, 2019.
A cross-validated ROC AUC near 0.5 means the classifier cannot tell the sides apart.
"""

import numpy as np
import pandas as pd

from recipes.debug.shift.features import MAX_CATEGORIES

# A cross-validated AUC of at least this, and significant, means the sides differ enough to act on. 0.5 is
# chance; 0.6 is a classifier right on 60% of (current, reference) pairs.
MIN_DOMAIN_AUC = 0.6
_CLASSIFIER_ROWS = 5000  # per side: the domain classifier needs no more to see a shift worth acting on


def domain_classifier(features, extra, classifier, cv, seed):
    """Cross-validated AUC of a classifier telling current (1) from reference (0), its p-value, its leanings."""
    import scipy.sparse
    from scipy import stats
    from sklearn.base import clone
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    blocks, names = [], []
    for feature in filter(lambda f: f.classify, features):
        if feature.type == "numeric":
            blocks.append((feature.reference[:, None], feature.current[:, None]))
            names.append(feature.name)
        else:
            categories = pd.Series(feature.reference).astype(str).value_counts().index[:MAX_CATEGORIES]
            for category in categories:
                blocks.append(((feature.reference.astype(str) == category)[:, None].astype(float),
                               (feature.current.astype(str) == category)[:, None].astype(float)))  # fmt: skip
                names.append(f"{feature.name} = {category}")
    x_ref = np.hstack([b[0] for b in blocks]).astype(float)
    x_cur = np.hstack([b[1] for b in blocks]).astype(float)
    x = np.vstack([x_ref, x_cur])
    sparse_block = None
    if extra is not None and scipy.sparse.issparse(extra[0]):
        sparse_block, sparse_names = extra
    elif extra is not None:
        (ref_extra, extra_names), (cur_extra, _) = extra
        x = np.hstack([x, np.vstack([ref_extra, cur_extra])])
        names += extra_names
    y = np.r_[np.zeros(len(x_ref)), np.ones(len(x_cur))]
    rng = np.random.default_rng(seed)
    keep = np.r_[_subsample(rng, len(x_ref)), len(x_ref) + _subsample(rng, len(x_cur))]
    dense = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
    x = dense.fit_transform(x[keep])
    if sparse_block is not None:
        x = scipy.sparse.hstack([sparse_block[keep], scipy.sparse.csr_matrix(x)]).tocsr()
        names = list(sparse_names) + names
    y = y[keep]
    model = classifier if classifier is not None else LogisticRegression(solver="liblinear", class_weight="balanced")
    # Each fold's held-out scores come from a model that never saw that fold's labels, so the Mann-Whitney
    # test of that fold is exact; the folds are then joined by Bonferroni. A test on the out-of-fold scores
    # pooled over the folds is not valid (every score depends on the other folds' labels): on random
    # splits of real data it raised three times too many false alarms.
    folds = StratifiedKFold(n_splits=min(cv, int(min(y.sum(), len(y) - y.sum()))), shuffle=True, random_state=seed)
    aucs, p_values = [], []
    for train, held_out in folds.split(x, y):
        scores = clone(model).fit(x[train], y[train]).predict_proba(x[held_out])[:, 1]
        truth = y[held_out]
        test = stats.mannwhitneyu(scores[truth == 1], scores[truth == 0], alternative="greater")
        aucs.append(test.statistic / (truth.sum() * (len(truth) - truth.sum())))
        p_values.append(test.pvalue)
    auc = float(np.mean(aucs))
    p_value = min(1.0, len(p_values) * min(p_values))
    fitted = clone(model).fit(x, y)
    weights = getattr(fitted, "coef_", None)
    weights = weights[0] if weights is not None else getattr(fitted, "feature_importances_", None)
    leans = []
    if weights is not None and len(weights) == len(names):
        order = np.argsort(-np.abs(weights))[:10]
        leans = [(names[i], float(weights[i])) for i in order if weights[i] != 0]
    return auc, float(p_value), leans


def _subsample(rng, n):
    return np.sort(rng.choice(n, _CLASSIFIER_ROWS, replace=False)) if n > _CLASSIFIER_ROWS else np.arange(n)
