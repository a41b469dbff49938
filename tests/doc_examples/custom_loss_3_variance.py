# Tinker doc example `custom_loss_3_variance`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   https://tinker-docs.thinkingmachines.ai/tinker/losses/custom ("Custom Loss Functions")
# FIDELITY:
#   exact copy (official page, pages-corpus excerpt); a function definition only
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
#   the test passes variance_loss to training_client.forward_backward_custom(data, ...)
#     .result() on the shared client, as the page's usage section shows
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
def variance_loss(data: list[Datum], logprobs: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    flat_logprobs = torch.cat(logprobs)
    variance = torch.var(flat_logprobs)
    return variance, {"variance_loss": variance.item()}
