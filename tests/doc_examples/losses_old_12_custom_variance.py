# Tinker doc example `losses_old_12_custom_variance`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   https://tinker-docs.thinkingmachines.ai/losses (the old docs site, "Loss functions in Tinker")
#   markdown source: thinking-machines-lab/tinker-cookbook docs/losses.mdx
#     @ a2b1b820d4802cb8b2b016d7b202d6c3bf65fdd7
# FIDELITY:
#   exact copy of the code block (not reconstructed); a function definition only
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
