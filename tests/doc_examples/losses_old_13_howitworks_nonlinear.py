# Tinker doc example `losses_old_13_howitworks_nonlinear`, checked by tests/test_tinker_doc_examples.py.
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
# PREPARED: compute_loss_from_logprobs, compute_target_logprobs, params
#   params: a torch [6, 10] tensor with requires_grad (a toy stand-in for the model weights)
#   compute_target_logprobs(params): log_softmax(params)[t, target_t] for 6 fixed targets
#   compute_loss_from_logprobs(logprobs): torch.var(logprobs) (the page's variance loss, nonlinear)
# DEPENDS: (none)
# RUN: exec
# EXPECTED: pass
# AFTER the example, the test checks:
#   `loss` is a finite scalar (pure torch: the engine is not called)
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
loss = compute_loss_from_logprobs(compute_target_logprobs(params))
