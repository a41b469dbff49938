# Tinker doc example `custom_loss_1_logprob_squared`, checked by tests/test_tinker_doc_examples.py.
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
#   logprob_squared_loss is defined (calling it is custom_loss_2_call)
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
def logprob_squared_loss(data: list[Datum], logprobs: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    loss = (logprobs ** 2).sum()
    return loss, {"logprob_squared_loss": loss.item()}
