"""Model cards for shipped models, rendered from the numbers `ship_run` measured (never typed by hand)."""

from __future__ import annotations

from typing import Any

FER_LIMITS = """\
- **FER2013 itself**: labels are noisy (human agreement on FER2013 is estimated near 65 %); faces
  come from web image search, so they are mostly posed or semi-posed, skewed towards adults and
  lighter skin tones, and under-represent children, older people and non-frontal poses.
- **Class imbalance**: disgust has 436 training faces (1.5 %); its recall is the lowest of all
  classes, and fear is often confused with sad and surprise.
- **Input framing**: trained on tight 48x48 grayscale crops; faces must be detected and cropped the
  same way (`mien predict` and `Recognizer` do this).
- Expression is not emotion: the model labels facial configurations, not what a person feels."""


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _hardware_line(sessions: list[dict[str, Any]]) -> str:
    if not sessions:
        return "not recorded"
    seen = []
    for s in sessions:
        line = f"{s.get('cpu_model', '?')} ({s.get('cpu_capability', '?')}), {s.get('device', '?')}, " \
               f"{s.get('precision', '?')}, {s.get('threads', '?')} threads"
        if line not in seen:
            seen.append(line)
    return "; ".join(seen)


def render_card(*, meta: dict[str, Any], shipped: dict[str, Any], test: dict[str, Any], title: str,
                limits: str = "") -> str:
    """Markdown model card: architecture, protocol, accuracy, per-class table, confusion, robustness, limits."""
    spec = meta["model"]
    kwargs = ", ".join(f"{k}={v}" for k, v in spec["kwargs"].items()) or "defaults"
    lines = [
        f"# Model card: `{shipped['name']}` ({title})",
        "",
        f"- **Architecture**: `{spec['name']}` ({kwargs}), {spec['in_chans']}-channel "
        f"{meta['input_size'][0]}x{meta['input_size'][1]} input normalised with the training-set mean/std "
        f"stored in `{shipped['name']}.json`.",
        *_storage_lines(shipped.get("weights_dtype", "float32")),
        "- **Data and protocol**: FER2013 (rebuilt npz). Trained on Training; the checkpoint "
        f"(epoch {shipped['epoch']}) and the test-time augmentation (`{shipped['tta']}`) were chosen on "
        f"PublicTest; PrivateTest ({test['n']} faces) was evaluated once with that choice.",
        f"- **Training command**: `{shipped['command']}`",
        *_distill_lines(meta),
        f"- **Hardware and time**: {_hardware_line(shipped['hardware'])}; "
        f"{shipped['training_minutes']:.1f} minutes of training{_prior_note(shipped)}.",
        "",
        *_results_sections(shipped, test, limits),
    ]
    return "\n".join(lines)


def total_minutes(shipped: dict[str, Any]) -> float:
    """A shipped model's whole training time: its own run's plus that of the model it started from."""
    return shipped["training_minutes"] + shipped.get("starts_from", {}).get("training_minutes", 0.0)


def _prior_note(shipped: dict[str, Any]) -> str:
    prior = shipped.get("starts_from")
    if not prior:
        return ""
    return (f", after the {prior['training_minutes']:.1f} minutes that trained `{prior['weights']}`, the weights it "
            f"starts from ({total_minutes(shipped):.1f} in all)")


def _member_minutes(member: dict[str, Any]) -> str:
    own = f"{member['training_minutes']:.1f}"
    return own + (f" (+{member['starts_from']['training_minutes']:.1f} before it)"
                  if "starts_from" in member else "")


def _storage_lines(storage: str) -> list[str]:
    how = {"float16": "as float16 (half the bytes)",
           "int8": "as int8 with a float32 scale per output channel for every convolution and linear weight, "
                   "float16 elsewhere (about a quarter of the bytes),"}
    if storage not in how:
        return []
    return [f"- **Weights**: stored {how[storage]} and run in fp32; every figure on this card was measured on "
            "those rounded weights."]


def _distill_lines(meta: dict[str, Any]) -> list[str]:
    distill = meta.get("config", {}).get("distill", {})
    if not distill.get("teacher"):
        return []
    return [f"- **Distilled from**: `{distill['teacher']}` (soft-target weight {distill['alpha']:g}, temperature "
            f"{distill['temperature']:g}); while distilling, the teacher sees Training images only."]


def render_ensemble_card(*, shipped: dict[str, Any], test: dict[str, Any], members: list[dict[str, Any]],
                         title: str, limits: str = "") -> str:
    """Markdown card of a shipped ensemble: members (each with its own card), selection, then the results."""
    lines = [
        f"# Model card: `{shipped['name']}` ({title})",
        "",
        f"- **Ensemble**: the mean of {len(members)} shipped models' class probabilities, each run with "
        f"test-time augmentation `{shipped['tta']}`: " + ", ".join(f"`{m['name']}`" for m in members)
        + ". Each member has its own card (`MEMBER.md`) with its training command, hardware and minutes.",
        "- **Data and protocol**: FER2013 (rebuilt npz). Members were trained on Training; the members "
        "and the test-time augmentation were chosen on PublicTest by greedy forward selection; "
        f"PrivateTest ({test['n']} faces) was evaluated once with that choice.",
        f"- **Training time**: {sum(total_minutes(m) for m in members):.1f} minutes for all members"
        + (", the weights warm-restarted members start from included." if any("starts_from" in m for m in members)
           else "."),
        "",
        "| member | architecture | PublicTest | PrivateTest (its own card) | training command | hardware, minutes |",
        "|---|---|---|---|---|---|",
        *(f"| `{m['name']}` | `{m['model']}` | {_pct(m['val_accuracy'])} | {_pct(m['test_accuracy'])} | "
          f"`{m['command']}` | {_hardware_line(m['hardware'])}, {_member_minutes(m)} |" for m in members),
        "",
        "Selection on PublicTest (each step adds the member that raised accuracy most):",
        "",
        "| step | members | PublicTest accuracy | PublicTest log-loss |",
        "|---|---|---|---|",
        *(f"| {i + 1} | {', '.join(row['members'])} | {_pct(row['val_accuracy'])} | {row['val_nll']:.4f} |"
          for i, row in enumerate(shipped["selection"])),
        "",
        *_results_sections(shipped, test, limits),
    ]
    return "\n".join(lines)


def _results_sections(shipped: dict[str, Any], test: dict[str, Any], limits: str) -> list[str]:
    """Accuracy, per-class table, confusion matrix, robustness table and known limits."""
    from ..evaluate.robustness import table_markdown

    names = test["classes"]
    return [
        f"## Accuracy (PrivateTest, tta={shipped['tta']})",
        "",
        f"Accuracy **{_pct(shipped['test_accuracy'])}**, macro F1 {test['f1']['macro']:.3f}, weighted F1 "
        f"{test['f1']['weighted']:.3f}, top-2 accuracy {_pct(test['top2_accuracy'])}. PublicTest accuracy by "
        "TTA: " + ", ".join(f"{k} {_pct(v)}" for k, v in shipped["val_accuracy_by_tta"].items()) + ".",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
        *(f"| {c['name']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
          for c in test["per_class"]),
        "",
        "Confusion matrix (counts, rows = true class):",
        "",
        "| true \\ pred | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        *(f"| {name} | " + " | ".join(str(v) for v in row) + " |" for name, row in zip(names, test["confusion"])),
        "",
        "## Robustness (PrivateTest under photometric corruptions)",
        "",
        "Levels are defined in `mien.evaluate.robustness`; reproduce with "
        f"`python benchmarks/robustness.py --model {shipped['name']}`.",
        "",
        table_markdown(shipped["robustness"]),
        "",
        "## Known limits and biases",
        "",
        *([limits.rstrip()] if limits else []),
        FER_LIMITS,
        "",
    ]
