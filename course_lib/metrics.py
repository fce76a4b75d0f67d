"""Evaluation metrics: accuracy, perplexity, linear probe, kNN, Fréchet distance, alignment/uniformity.

Pure functions over tensors (and scikit-learn for the linear probe). Used by
notebooks 02-05 and their CLI chapters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["accuracy", "perplexity", "linear_probe", "linear_probe_scores", "linear_probe_weights", "knn_accuracy",
           "frechet_distance",
           "alignment", "uniformity"]


def accuracy(logits_or_preds: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction correct; accepts logits (N, C) or predicted labels (N,)."""
    preds = logits_or_preds.argmax(-1) if logits_or_preds.ndim == labels.ndim + 1 else logits_or_preds
    if preds.shape != labels.shape:
        raise ValueError(f"predictions {tuple(preds.shape)} and labels {tuple(labels.shape)} differ in shape")
    return float((preds == labels).float().mean())


def perplexity(nats: float) -> float:
    """exp(mean negative log-likelihood in nats); ``inf`` past what a float holds (a diverged model)."""
    if not nats >= 0:
        raise ValueError(f"perplexity expects a mean negative log-likelihood >= 0 nats, got {nats}")
    return math.exp(nats) if nats < 709.0 else math.inf


def _check_features(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                    test_y: torch.Tensor) -> None:
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"expected features (N, D) and (M, D); got {tuple(train_x.shape)} and {tuple(test_x.shape)}")
    if train_y.shape != (len(train_x),) or test_y.shape != (len(test_x),):
        raise ValueError("expected one label per feature row")


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 C: float = 1.0, max_iter: int = 1000) -> float:
    """Test accuracy of scikit-learn logistic regression on standardised frozen features."""
    return linear_probe_scores(train_x, train_y, [(test_x, test_y)], C, max_iter)[0]


def _fit_probe(train_x: torch.Tensor, train_y: torch.Tensor, C: float, max_iter: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(torch.unique(train_y)) < 2:
        raise ValueError("a linear probe needs at least two classes in its training labels")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    return clf.fit(train_x.double().cpu().numpy(), train_y.cpu().numpy())


def linear_probe_scores(train_x: torch.Tensor, train_y: torch.Tensor,
                        evals: list[tuple[torch.Tensor, torch.Tensor]], C: float = 1.0, max_iter: int = 1000
                        ) -> list[float]:
    """One logistic regression fitted on (train_x, train_y), its accuracy on each (x, y) of ``evals``
    (e.g. validation and test: a choice made on the first is reported on the second)."""
    for x, y in evals:
        _check_features(train_x, train_y, x, y)
    clf = _fit_probe(train_x, train_y, C, max_iter)
    return [float(clf.score(x.double().cpu().numpy(), y.cpu().numpy())) for x, y in evals]


def linear_probe_weights(train_x: torch.Tensor, train_y: torch.Tensor, C: float = 1.0, max_iter: int = 1000
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe of :func:`linear_probe` as a linear layer on the raw features: W (K, D), b (K,) with
    logits = x W^T + b (the standardisation folded in: W = coef / σ, b = intercept − Σ_d coef·μ / σ).

    The classes are 0 … K−1 and all must occur in ``train_y``.
    """
    _check_features(train_x, train_y, train_x, train_y)
    classes = torch.unique(train_y)
    if len(classes) < 3 or not torch.equal(classes, torch.arange(len(classes))):
        raise ValueError(f"expected labels 0 .. K-1 (K >= 3), all present; got classes {classes.tolist()}")
    clf = _fit_probe(train_x, train_y, C, max_iter)
    scaler, reg = clf[0], clf[-1]
    coef = torch.from_numpy(reg.coef_) / torch.from_numpy(scaler.scale_)                 # (K, D)
    bias = torch.from_numpy(reg.intercept_) - coef @ torch.from_numpy(scaler.mean_)     # (K,)
    return coef.float(), bias.float()


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 k: int = 5) -> float:
    """k-nearest-neighbour accuracy with cosine similarity and a majority vote (ties: nearest wins)."""
    _check_features(train_x, train_y, test_x, test_y)
    k = min(k, len(train_x))
    sims = F.normalize(test_x.float(), dim=1) @ F.normalize(train_x.float(), dim=1).T   # (M, N)
    top = sims.topk(k, dim=1).indices                                                   # (M, k)
    votes = train_y[top]                                                                # (M, k)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    counts = F.one_hot(votes, n_classes).float()
    counts += torch.linspace(1e-3, 0, k).view(1, k, 1)        # earlier (nearer) neighbours break ties
    preds = counts.sum(1).argmax(1)
    return float((preds == test_y).float().mean())


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2}); the trace
    term is computed from the eigenvalues of S_a^{1/2} S_b S_a^{1/2} (symmetric PSD).
    """
    if feats_a.ndim != 2 or feats_b.ndim != 2 or feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D) features, got {tuple(feats_a.shape)}, {tuple(feats_b.shape)}")
    if min(len(feats_a), len(feats_b)) < 2:
        raise ValueError("need at least 2 samples per set to estimate a covariance")
    a, b = feats_a.double().cpu(), feats_b.double().cpu()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    sqrt_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    middle = sqrt_a @ cov_b @ sqrt_a
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    d2 = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_sqrt
    return float(d2.clamp_min(0))


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> float:
    """Wang & Isola (2020) alignment: E ||f(x) - f(x+)||^alpha over positive pairs of unit vectors."""
    z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    return float((z1 - z2).norm(dim=1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """Wang & Isola (2020) uniformity: log E exp(-t ||f(x) - f(y)||^2) over distinct pairs."""
    z = F.normalize(z.float(), dim=1)
    sq = torch.pdist(z).pow(2)
    return float(torch.log(torch.exp(-t * sq).mean()))
