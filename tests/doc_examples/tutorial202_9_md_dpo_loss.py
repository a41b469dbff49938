# Tinker doc example `tutorial202_9_md_dpo_loss`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   thinking-machines-lab/tinker-cookbook tutorials/202_loss_functions.py
#     @ 6a923104a2b62d8b23188b9155c0b85c77859cc2 (a marimo notebook; rendered as
#     https://tinker-docs.thinkingmachines.ai/tutorials/core-concepts/loss-functions)
# FIDELITY:
#   exact copy of a ```python block inside a markdown cell (mo.md), dedented; marimo renders it,
#   it never runs it
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: torch
#   torch: the torch module (tutorial cell 1 imports it)
# DEPENDS: (none)
# RUN: exec
# EXPECTED: pass
# AFTER the example, the test checks:
#   the test passes dpo_loss to training_client.forward_backward_custom(data, ...)
#     .result() on the shared client with the two datums of `data` (data[0] preferred,
#     data[1] rejected), as the tutorial's text describes
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
def dpo_loss(data, logprobs_list):
    # data[0] = preferred, data[1] = rejected
    preferred_lp = logprobs_list[0].sum()
    rejected_lp = logprobs_list[1].sum()
    beta = 0.1
    loss = -torch.nn.functional.logsigmoid(beta * (preferred_lp - rejected_lp))
    return loss, {"dpo_loss": loss.item()}
