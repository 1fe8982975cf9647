"""A classifier that tries to tell current from reference examples: its held-out AUC, p-value and leanings.

Lipton et al., *Detecting and Correcting for Label Shift*, 2018; Rabanser et al., *Failing Loudly*, 2019.
A cross-validated ROC AUC near 0.5 means the classifier cannot tell the sides apart.
"""

import dataclasses

import numpy as np
import pandas as pd

from recipes.debug.shift.features import MAX_CATEGORIES

# A cross-validated AUC of at least this, and significant, means the sides differ enough to act on. 0.5 is
# chance; 0.6 is a classifier right on 60% of (current, reference) pairs.
MIN_DOMAIN_AUC = 0.6
# Rows per side: the domain classifier (and the concept model) needs no more to see a shift worth acting on.
CLASSIFIER_ROWS = 5000


@dataclasses.dataclass(frozen=True)
class Design:
    """The inputs of both sides as numbers, one row per example, for the domain classifier and the concept model.

    `dense_*` hold the features (numbers as they are, NaN where missing; categories one-hot) and the modality's
    richer block (thumbnails, band energies); `sparse_*` the TF-IDF words of texts, or `None`.
    """

    dense_reference: np.ndarray
    dense_current: np.ndarray
    dense_names: list
    sparse_reference: object = None
    sparse_current: object = None
    sparse_names: list = dataclasses.field(default_factory=list)

    @property
    def names(self):
        """Column names of `stack`'s output: the sparse block first."""
        return list(self.sparse_names) + list(self.dense_names)

    def stack(self, dense, reference_rows=None, current_rows=None):
        """`dense` (the dense rows of both sides, already transformed) joined with the sparse block's rows."""
        if self.sparse_reference is None:
            return dense
        import scipy.sparse

        parts = [
            self.sparse_reference if reference_rows is None else self.sparse_reference[reference_rows],
            self.sparse_current if current_rows is None else self.sparse_current[current_rows],
        ]
        return scipy.sparse.hstack([scipy.sparse.vstack(parts), scipy.sparse.csr_matrix(dense)]).tocsr()

    def rows(self, side, positions, transform):
        """The rows `positions` of one side (`"reference"` or `"current"`): `transform` of the dense part,
        joined with the sparse block's rows."""
        dense = transform(self.dense_reference[positions] if side == "reference" else self.dense_current[positions])
        if self.sparse_reference is None:
            return dense
        import scipy.sparse

        sparse = self.sparse_reference if side == "reference" else self.sparse_current
        return scipy.sparse.hstack([sparse[positions], scipy.sparse.csr_matrix(dense)]).tocsr()


def design_matrix(features, extra):
    """The `Design` of the features given to the domain classifier (`Feature.classify`) and the extra block."""
    import scipy.sparse

    blocks, names = [], []
    for feature in filter(lambda f: f.classify, features):
        if feature.type == "numeric":
            blocks.append((feature.reference[:, None], feature.current[:, None]))
            names.append(feature.name)
        else:
            categories = pd.Series(feature.reference).astype(str).value_counts().index[:MAX_CATEGORIES]
            for category in categories:
                blocks.append(
                    (
                        (feature.reference.astype(str) == category)[:, None].astype(float),
                        (feature.current.astype(str) == category)[:, None].astype(float),
                    )
                )
                names.append(f"{feature.name} = {category}")
    num_reference, num_current = len(features[0].reference), len(features[0].current)
    x_ref = np.hstack([b[0] for b in blocks]).astype(float) if blocks else np.zeros((num_reference, 0))
    x_cur = np.hstack([b[1] for b in blocks]).astype(float) if blocks else np.zeros((num_current, 0))
    if extra is not None and scipy.sparse.issparse(extra[0]):
        matrix, sparse_names = extra
        matrix = matrix.tocsr()
        return Design(x_ref, x_cur, names, matrix[:num_reference], matrix[num_reference:], list(sparse_names))
    if extra is not None:
        (ref_extra, extra_names), (cur_extra, _) = extra
        x_ref, x_cur, names = np.hstack([x_ref, ref_extra]), np.hstack([x_cur, cur_extra]), names + list(extra_names)
    if not names:
        raise ValueError("nothing is left to compare: every column given is the split column")
    return Design(x_ref, x_cur, names)


def domain_classifier(design, classifier, cv, seed):
    """Cross-validated AUC of a classifier telling current (1) from reference (0), its p-value, its leanings."""
    from scipy import stats
    from sklearn.base import clone
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    num_reference, num_current = len(design.dense_reference), len(design.dense_current)
    y = np.r_[np.zeros(num_reference), np.ones(num_current)]
    rng = np.random.default_rng(seed)
    ref_rows, cur_rows = subsample(rng, num_reference), subsample(rng, num_current)
    dense = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
    x = dense.fit_transform(np.vstack([design.dense_reference[ref_rows], design.dense_current[cur_rows]]))
    x = design.stack(x, ref_rows, cur_rows)
    names = design.names
    y = np.r_[y[ref_rows], y[num_reference + cur_rows]]
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


def subsample(rng, n, size=CLASSIFIER_ROWS):
    """Sorted row positions: all `n` rows, or `size` drawn at random when there are more."""
    return np.sort(rng.choice(n, size, replace=False)) if n > size else np.arange(n)
