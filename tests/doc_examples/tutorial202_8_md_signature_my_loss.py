# Tinker doc example `tutorial202_8_md_signature_my_loss`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   thinking-machines-lab/tinker-cookbook tutorials/202_loss_functions.py
#     @ 6a923104a2b62d8b23188b9155c0b85c77859cc2 (a marimo notebook; rendered as
#     https://tinker-docs.thinkingmachines.ai/tutorials/core-concepts/loss-functions)
# FIDELITY:
#   exact copy of a ```python block inside a markdown cell (mo.md), dedented; marimo renders it,
#   it never runs it; a signature illustration whose body is `...`
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: Datum, torch
#   Datum: tinker.Datum (the signature names it; the page shows no import)
#   torch: the torch module
# DEPENDS: (none)
# RUN: exec
# EXPECTED: pass
# AFTER the example, the test checks:
#   my_loss is defined (its body refers to undefined names: never called)
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
def my_loss(data: list[Datum], logprobs: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    ...
    return loss, metrics
