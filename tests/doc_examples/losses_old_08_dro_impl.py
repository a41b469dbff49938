# Tinker doc example `losses_old_08_dro_impl`, checked by tests/test_tinker_doc_examples.py.
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
# PREPARED: advantages, beta, sampling_logprobs, target_logprobs
#   target_logprobs: torch float32 [N], the offline engine's logprobs of data[0]'s target_tokens
#     (training_client.forward([data[0]], 'cross_entropy'))
#   sampling_logprobs: target_logprobs - 0.1 (as if recorded by a slightly different sampler)
#   advantages: torch float32 [N], 1.0 on the completion tokens, 0.0 on the prompt
#   beta: 0.05 (the value in the page's dro loss_fn_config example)
# DEPENDS: (none)
# RUN: exec
# EXPECTED: pass
# AFTER the example, the test checks:
#   `loss` is a finite scalar (pure torch: the engine is not called)
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
# Compute quadratic penalty term
quadratic_term = (target_logprobs - sampling_logprobs) ** 2
# Compute DRO objective
dro_objective = target_logprobs * advantages - 0.5 * beta * quadratic_term
# DRO loss is negative of objective
loss = -dro_objective.sum()
