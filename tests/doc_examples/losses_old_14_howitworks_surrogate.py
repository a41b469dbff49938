# Tinker doc example `losses_old_14_howitworks_surrogate`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   https://tinker-docs.thinkingmachines.ai/losses (the old docs site, "Loss functions in Tinker")
#   markdown source: thinking-machines-lab/tinker-cookbook docs/losses.mdx
#     @ a2b1b820d4802cb8b2b016d7b202d6c3bf65fdd7
# FIDELITY:
#   exact copy of the code block (not reconstructed); pseudo-code explaining
#   forward_backward_custom
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: compute_target_logprobs, logprob_grads, params
#   params, compute_target_logprobs: as in losses_old_13_howitworks_nonlinear
#   logprob_grads: dLoss/dLogprobs of torch.var(logprobs), detached (what the snippet's comment says)
# DEPENDS: (none)
# RUN: exec
# EXPECTED: pass
# AFTER the example, the test checks:
#   d(surrogate_loss)/d(params) equals d(var(logprobs))/d(params): the page's claim
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
logprobs = compute_target_logprobs(params)
surrogate_loss = (logprobs * logprob_grads).sum()
# where logprob_grads = dLoss/dLogprobs
