"""Metrics of a trained classifier's last layer and embedding, independent of any one paper.

- `cosine_matrix`: pairwise cosine similarity of class vectors.
- `confusion_matrix` and `confusion_cosine_correlation`: do classes whose vectors are close get confused?
- `group_contrast`: are classes of given groups closer to each other than to the rest?
- `image_class_cosine`: how close image embeddings sit to the vector of the class they are assigned to.
- `compactness` / `separability`: intra-class and inter-class geometry of embeddings.
- `project_2d`: a 2-D view of embeddings for plotting.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def cosine_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """(m, m) cosine similarity between the rows of `vectors` (m, d)."""
    if vectors.ndim != 2:
        raise ValueError(f"expected an (m, d) matrix of vectors, got shape {tuple(vectors.shape)}")
    v = F.normalize(vectors.detach().float(), dim=1)
    return v @ v.T


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(m, m) counts: entry [i, j] is the number of examples of class i predicted as class j."""
    predictions, targets = predictions.detach().long().cpu(), targets.detach().long().cpu()
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape")
    for name, t in (("predictions", predictions), ("targets", targets)):
        if len(t) and (t.min() < 0 or t.max() >= num_classes):
            raise ValueError(f"{name} hold labels outside [0, {num_classes})")
    flat = torch.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.view(num_classes, num_classes)


@dataclass
class PairCorrelation:
    """Spearman correlation between class-vector cosine and confusion counts over class pairs."""
    rho: float            # NaN when either side is constant
    pvalue: float
    cosine: np.ndarray    # one entry per pair
    confusions: np.ndarray


def confusion_cosine_correlation(confusion, cosines, symmetric: bool = False) -> PairCorrelation:
    """Spearman's rho between cos(w_i, w_j) and the confusions over all class pairs i != j.

    symmetric=False uses every ordered pair (i, j), counting examples of i predicted as j (the paper's
    figure); symmetric=True uses every unordered pair with the confusions of both directions added.
    """
    from scipy.stats import spearmanr
    conf = np.asarray(confusion, dtype=float)
    cos = np.asarray(cosines, dtype=float)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1] or conf.shape != cos.shape:
        raise ValueError(f"need two square matrices of one shape, got {conf.shape} and {cos.shape}")
    m = len(conf)
    if symmetric:
        i, j = np.triu_indices(m, k=1)
        x, y = cos[i, j], conf[i, j] + conf[j, i]
    else:
        mask = ~np.eye(m, dtype=bool)
        x, y = cos[mask], conf[mask]
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:  # undefined; scipy would warn
        return PairCorrelation(float("nan"), float("nan"), x, y)
    res = spearmanr(x, y)
    return PairCorrelation(float(res.statistic), float(res.pvalue), x, y)


def group_contrast(similarity, groups: list[list[int]]) -> float:
    """Mean similarity of the pairs inside any of `groups` (lists of class indices) minus the mean
    similarity of all other pairs of distinct classes: > 0 when grouped classes sit closer together."""
    s = np.asarray(similarity, dtype=float)
    inside = np.zeros(s.shape, dtype=bool)
    for g in groups:
        inside[np.ix_(g, g)] = True
    off = ~np.eye(len(s), dtype=bool)
    if not (inside & off).any() or not (~inside & off).any():
        raise ValueError("groups must hold at least one pair of distinct classes and leave some pairs outside")
    return float(s[inside & off].mean() - s[~inside & off].mean())


def image_class_cosine(features: torch.Tensor, class_vectors: torch.Tensor,
                       predictions: torch.Tensor) -> float:
    """Mean cosine between each image embedding and the vector of its predicted class."""
    f = F.normalize(features.detach().float(), dim=1)
    w = F.normalize(class_vectors.detach().float().to(f.device), dim=1)
    return float((f * w[predictions.to(f.device)]).sum(1).mean())


def _class_means(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    classes = torch.unique(labels)
    return classes, torch.stack([features[labels == c].mean(0) for c in classes])


def compactness(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Intra-class compactness: the mean cosine between each embedding and its class's mean embedding
    (1 = every class collapsed onto one direction)."""
    f = features.detach().float()
    classes, means = _class_means(f, labels)
    index = torch.searchsorted(classes, labels)
    return float(F.cosine_similarity(f, means[index], dim=1).mean())


def separability(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Inter-class separability: one minus the mean cosine between the mean embeddings of two different
    classes (0 = all classes in one direction; 1 = mutually orthogonal on average)."""
    _, means = _class_means(features.detach().float(), labels)
    if len(means) < 2:
        raise ValueError("separability needs at least two classes")
    cos = cosine_matrix(means)
    off = cos[~torch.eye(len(cos), dtype=torch.bool)]
    return float(1 - off.mean())


def project_2d(features: torch.Tensor, method: str = "pca", seed: int = 0, normalize: bool = False) -> np.ndarray:
    """(N, 2) view of embeddings: 'pca' (linear, keeps radial structure) or 'tsne' (neighbourhoods).
    normalize=True projects the unit-length embeddings, as a cosine classifier sees them."""
    x = features.detach().float()
    if normalize:
        x = F.normalize(x, dim=1)
    x = x.cpu().numpy()
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE
        return TSNE(2, init="pca", random_state=seed, perplexity=min(30.0, (len(x) - 1) / 3)).fit_transform(x)
    raise ValueError(f"unknown projection {method!r}; choose 'pca' or 'tsne'")
