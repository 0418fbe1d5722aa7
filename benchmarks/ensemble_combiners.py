"""Would a fitted combination beat the plain mean of an ensemble's members? Measured on PublicTest only.

Shipped ensembles average their members' probabilities with equal weights (`mean_probs`). This
benchmark fits the alternatives on PublicTest and scores them by stratified k-fold cross-validation
inside PublicTest (fit on k-1 folds, score the held-out fold), against the plain mean on the same
folds. PrivateTest is never read, so the answer can decide how a future ensemble combines.

Combinations, each fitted by minimising the log-loss (L2 penalty `--l2` on its parameters):
- `weights`: a weighted arithmetic mean of the members' probabilities (softmax-parametrised weights);
- `weights, geometric`: a weighted mean of their log-probabilities;
- `class bias`: the plain mean plus a learnt log-space bias per class (a prior correction);
- `weights + class bias`, arithmetic and geometric.

    .venv/bin/python benchmarks/ensemble_combiners.py --data ../shared/data/fer2013.npz
    .venv/bin/python benchmarks/ensemble_combiners.py resnet_small_ema_e90 deep_cnn --tta flip --folds 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np

COMBINERS = {  # name -> (fit weights, fit class bias, geometric)
    "plain mean (shipped)": None,
    "weights": (True, False, False),
    "weights, geometric": (True, False, True),
    "class bias": (False, True, False),
    "weights + class bias": (True, True, False),
    "weights + class bias, geometric": (True, True, True),
}


def combine(theta: np.ndarray, probs: np.ndarray, how: tuple[bool, bool, bool]) -> np.ndarray:
    """(M, N, C) member probabilities -> (N, C) log-probabilities of the combination `theta` describes."""
    fit_w, fit_b, geometric = how
    members, classes = probs.shape[0], probs.shape[2]
    w = np.exp(theta[:members]) if fit_w else np.ones(members)
    w = w / w.sum()
    bias = theta[members:] if fit_b else np.zeros(classes)
    logp = np.log(np.clip(probs, 1e-12, None))
    z = (np.einsum("m,mnc->nc", w, logp) if geometric else np.log(np.einsum("m,mnc->nc", w, probs))) + bias
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def fit(probs: np.ndarray, labels: np.ndarray, how: tuple[bool, bool, bool], l2: float) -> np.ndarray:
    """Parameters (member logits, then class biases) minimising log-loss + l2 * |theta|^2."""
    from scipy.optimize import minimize

    rows = np.arange(len(labels))

    def loss(theta: np.ndarray) -> float:
        return float(-combine(theta, probs, how)[rows, labels].mean() + l2 * (theta ** 2).sum())

    return minimize(loss, np.zeros(probs.shape[0] + probs.shape[2]), method="L-BFGS-B").x


def main() -> int:
    from sklearn.model_selection import StratifiedKFold

    from mien.evaluate.run import checkpoint_probs
    from mien.memory import retain_freed_memory
    from mien.train.checkpoint import load_model
    from mien.train.hardware import cpu_model
    from mien.weights import resolve_model_source, shipped_path
    from mien.weights.ensemble import mean_probs, read_ensemble
    from mien.weights.ship import SHIPPED_PRECISION, official_splits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="*", help="shipped model names (default: the shipped `ensemble`'s members)")
    parser.add_argument("--data", default=None, help="FER2013 source overriding the members' own")
    parser.add_argument("--tta", default=None, help="none or flip (default: the shipped ensemble's)")
    parser.add_argument("--folds", type=int, default=10, help="cross-validation folds inside PublicTest")
    parser.add_argument("--l2", type=float, default=1e-3, help="L2 penalty on the fitted parameters")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    args = parser.parse_args()
    retain_freed_memory()

    ensemble = read_ensemble(resolve_model_source("ensemble", allow_ensemble=True))
    members = args.members or [p.stem for p in ensemble.members]
    tta = args.tta or ensemble.tta
    loaded = {m: load_model(shipped_path(m)) for m in members}
    val = official_splits(loaded[members[0]][1]["config"], args.data).val
    start = time.perf_counter()
    probs = np.stack([checkpoint_probs(*loaded[m], val.images, tta=tta, precision=SHIPPED_PRECISION)
                      for m in members]).astype(np.float64)  # (M, N, C), PublicTest only
    labels = val.labels
    print(f"cpu         {cpu_model()}")
    print(f"members     {', '.join(members)} (tta {tta}); PublicTest probabilities in {time.perf_counter() - start:.0f} s")
    for m, p in zip(members, probs):
        print(f"  {m}: {100 * (p.argmax(1) == labels).mean():.2f} %")

    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=args.seed).split(labels, labels))
    print(f"\n| combination | PublicTest, {args.folds}-fold CV | fitted and scored on all of PublicTest |")
    print("|---|---:|---:|")
    for name, how in COMBINERS.items():
        if how is None:
            cv = full = float((mean_probs(probs).argmax(1) == labels).mean())  # the shipped rule itself
        else:
            hits = sum(int((combine(fit(probs[:, tr], labels[tr], how, args.l2), probs[:, te], how).argmax(1)
                            == labels[te]).sum()) for tr, te in folds)
            cv = hits / len(labels)
            full = float((combine(fit(probs, labels, how, args.l2), probs, how).argmax(1) == labels).mean())
        print(f"| {name} | {100 * cv:.2f} % | {100 * full:.2f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
