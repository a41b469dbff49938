"""The two figures a run writes at the end: the curves, and a few evaluation examples before
and after training."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curves(train_records, eval_records, path):
    """Two panels against the optimizer steps taken (each record's ``step``): the KL (training
    KL per step and evaluation KL at each evaluation, with the two baselines; the training
    prior's in words when it is infinite: ``prior_kl`` is None), and the mass on the labels."""
    fig, (ax, mass_ax) = plt.subplots(2, 1, figsize=(7.5, 6.8), sharex=True, height_ratios=(3, 2))
    ax.plot([r["step"] for r in train_records], [r["train_kl"] for r in train_records],
            marker="o", markersize=3, color="tab:blue", label="training batch (measured before the step it counts)")
    if eval_records:
        ax.plot([r["step"] for r in eval_records], [r["eval_kl"] for r in eval_records],
                marker="s", color="tab:green", label="evaluation file")
        last = eval_records[-1]
        if last["prior_kl"] is None:  # infinite: a label the evaluation uses has probability 0 in the prior
            ax.plot([], [], linestyle="none", label="evaluation: training-prior baseline infinite\n"
                    "(it gives probability 0 to a label the evaluation uses)")
        else:
            ax.axhline(last["prior_kl"], linestyle="--", color="tab:green", linewidth=1,
                       label=f"evaluation: training-prior baseline ({last['prior_kl']:.2f})")
        ax.axhline(last["uniform_kl"], linestyle=":", color="gray", linewidth=1,
                   label=f"evaluation: uniform baseline ({last['uniform_kl']:.2f})")
    ax.set_ylabel("mean KL(p || q) over the labels")
    ax.set_title("KL over the label set")
    ax.legend(fontsize=8)
    mass_ax.plot([r["step"] for r in train_records], [r["train_mass"] for r in train_records],
                 marker="o", markersize=3, color="tab:blue", label="training batch (measured before the step it counts)")
    if eval_records:
        mass_ax.plot([r["step"] for r in eval_records], [r["eval_mass"] for r in eval_records],
                     marker="s", color="tab:green", label="evaluation file")
    mass_ax.set_ylim(0, 1.05)
    mass_ax.set_xlabel("optimizer steps taken")
    mass_ax.set_ylabel("mass on the labels")
    mass_ax.set_title("Probability on the label set (before renormalizing)")
    mass_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_before_after(labels, example_ids, targets, q_before, q_after, path):
    """For each example: the target, the model before training and after, over the labels."""
    fig, axes = plt.subplots(len(example_ids), 1, figsize=(8.5, 2.3 * len(example_ids)), sharex=True, squeeze=False)
    x = np.arange(len(labels))
    for ax, example_id, p, before, after in zip(axes[:, 0], example_ids, targets, q_before, q_after):
        ax.bar(x - 0.27, p, width=0.27, color="black", label="target")
        ax.bar(x, before, width=0.27, color="tab:gray", label="before training")
        ax.bar(x + 0.27, after, width=0.27, color="tab:blue", label="after training")
        ax.set_title(example_id, fontsize=9, loc="left")
        ax.set_ylabel("probability")
    axes[0, 0].legend(fontsize=8, ncol=3)
    axes[-1, 0].set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
