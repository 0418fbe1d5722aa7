"""benchmarks/ensemble_combiners.py: the fitted combinations it compares with the plain mean."""

import numpy as np

from conftest import REPO, load_script

bench = load_script(REPO / "benchmarks" / "ensemble_combiners.py")


def _members(rng: np.random.Generator, labels: np.ndarray, strengths: list[float]) -> np.ndarray:
    """(M, N, C) probabilities: member m puts logit `strengths[m]` (plus noise) on the true class."""
    logits = rng.normal(size=(len(strengths), len(labels), 4))
    logits[:, np.arange(len(labels)), labels] += np.array(strengths)[:, None]
    e = np.exp(logits)
    return e / e.sum(2, keepdims=True)


def test_zero_parameters_give_the_plain_mean_and_geometric_mean():
    rng = np.random.default_rng(0)
    probs = _members(rng, rng.integers(0, 4, 50), [1.0, 2.0, 0.5])
    theta = np.zeros(3 + 4)
    np.testing.assert_allclose(np.exp(bench.combine(theta, probs, (True, True, False))), probs.mean(0), atol=1e-12)
    geo = np.exp(np.log(probs).mean(0))
    np.testing.assert_allclose(np.exp(bench.combine(theta, probs, (True, False, True))),
                               geo / geo.sum(1, keepdims=True), atol=1e-12)


def test_weights_favour_the_informative_member():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 600)
    probs = _members(rng, labels, [3.0, 0.0])  # member 1 is pure noise
    theta = bench.fit(probs, labels, (True, False, False), l2=1e-4)
    assert theta[0] > theta[1] + 1.0
    fitted = bench.combine(theta, probs, (True, False, False)).argmax(1)
    assert (fitted == labels).mean() > (probs.mean(0).argmax(1) == labels).mean()


def test_class_bias_corrects_a_member_prior_shift():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 800)
    probs = _members(rng, labels, [1.5, 1.5])
    probs[..., 0] *= 0.2  # both members under-predict class 0
    probs /= probs.sum(2, keepdims=True)
    theta = bench.fit(probs, labels, (False, True, False), l2=1e-4)
    bias = theta[2:]
    assert bias[0] == max(bias) and bias[0] - np.mean(bias[1:]) > 0.8
    corrected = bench.combine(theta, probs, (False, True, False)).argmax(1)
    assert (corrected == labels).mean() > (probs.mean(0).argmax(1) == labels).mean() + 0.02
