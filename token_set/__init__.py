"""token_set: train and evaluate a language model's distribution over a fixed set of label
tokens at one position of a prompt, with the Tinker SDK (or any client with its API).

The functions take everything they need as arguments and read no file at import.

Shapes: ``T`` is ``model_input.length`` (image positions included), ``K`` the number of
labels. Row ``t`` of ``target_tokens``, ``weights`` and ``logprobs`` scores the token after
input position ``t``, so the token right after a prompt is row ``T - 1``.

- ``datums``: ``target_vector``, ``build_datum``, ``server_datum``, ``scored_row_of``;
- ``losses``: ``kl_over_labels`` (for ``forward_backward_custom``), ``set_kl`` (for
  ``create_custom_loss``), ``kl_divergence``;
- ``labels``: ``label_token_ids``, ``label_token_problems``, ``check_label_tokens``,
  ``compare_label_forms`` (with ``LABEL_FORMS``, ``LabelForm``, ``LabelFormReport``);
- ``checks``: ``datum_problems``;
- ``evaluation``: ``forward_logprobs``, ``evaluate_examples``, ``evaluate``, ``baseline_kls``,
  ``set_summary``;
- ``sequences``: labels of any length, scored exactly: ``label_token_sequences``,
  ``build_label_datums``, ``kl_over_label_sequences``, ``label_logprobs``,
  ``evaluate_label_sequences``, ``example_label_logprobs``, ``label_branches``.

Versions: the extra ``loss_fn_inputs`` key ``target_distribution`` needs tinker 0.32.0 or
later; ``set_kl`` as a handle needs ``create_custom_loss``, tinker 0.36.0 or later.
"""

from .checks import datum_problems
from .datums import build_datum, scored_row_of, server_datum, target_vector
from .evaluation import baseline_kls, evaluate, evaluate_examples, forward_logprobs, set_summary
from .labels import (LABEL_FORMS, LabelForm, LabelFormReport, check_label_tokens, compare_label_forms,
                     label_token_ids, label_token_problems)
from .losses import kl_divergence, kl_over_labels, set_kl
from .sequences import (LabelBranch, build_label_datums, evaluate_label_sequences, example_label_logprobs,
                        kl_over_label_sequences, label_branches, label_logprobs, label_token_sequences)

__all__ = [
    "LABEL_FORMS", "LabelForm", "LabelFormReport", "baseline_kls", "build_datum", "check_label_tokens",
    "compare_label_forms", "datum_problems", "evaluate", "evaluate_examples", "forward_logprobs",
    "kl_divergence", "kl_over_labels", "label_token_ids", "label_token_problems", "scored_row_of",
    "server_datum", "set_kl", "set_summary", "target_vector",
    "LabelBranch", "build_label_datums", "evaluate_label_sequences", "example_label_logprobs",
    "kl_over_label_sequences", "label_branches", "label_logprobs", "label_token_sequences",
]
