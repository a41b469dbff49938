# Tinker doc example `losses_old_02_cross_entropy_impl`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   https://tinker-docs.thinkingmachines.ai/losses (the old docs site, "Loss functions in Tinker")
#   markdown source: thinking-machines-lab/tinker-cookbook docs/losses.mdx
#     @ a2b1b820d4802cb8b2b016d7b202d6c3bf65fdd7
# FIDELITY:
#   exact copy of the code block (not reconstructed); implementation snippet (pseudo-code of
#   what the server computes)
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: target_logprobs, weights
#   target_logprobs: torch float32 [N], the offline engine's logprobs of data[0]'s target_tokens
#     (training_client.forward([data[0]], 'cross_entropy'))
#   weights: torch float32 [N], data[0]'s weights (0 on the prompt, 1 on the completion)
# DEPENDS: (none)
# RUN: exec
# EXPECTED: pass
# AFTER the example, the test checks:
#   `loss` equals the engine's loss:sum for data[0] (it runs this very formula)
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
# Apply weights and compute elementwise loss
elementwise_loss = -target_logprobs * weights
# Apply sum reduction to get the total loss
loss = elementwise_loss.sum()  # scalar
