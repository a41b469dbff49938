# Tinker doc example `losses_old_04_ppo_impl`, checked by tests/test_tinker_doc_examples.py.
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
# PREPARED: advantages, clip_high_threshold, clip_low_threshold, sampling_logprobs, target_logprobs, torch
#   torch: the torch module (the snippet calls torch.exp / torch.clamp / torch.min)
#   target_logprobs: torch float32 [N], the offline engine's logprobs of data[0]'s target_tokens
#     (training_client.forward([data[0]], 'cross_entropy'))
#   sampling_logprobs: target_logprobs - 0.1 (as if recorded by a slightly different sampler)
#   advantages: torch float32 [N], 1.0 on the completion tokens, 0.0 on the prompt
#   clip_low_threshold, clip_high_threshold: 0.8, 1.2 (the defaults tutorial 202 states)
# DEPENDS: (none)
# RUN: exec
# EXPECTED: pass
# AFTER the example, the test checks:
#   `loss` is a finite scalar (pure torch: the engine is not called)
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
# Compute probability ratio
prob_ratio = torch.exp(target_logprobs - sampling_logprobs)
# Apply clipping
clipped_ratio = torch.clamp(prob_ratio, clip_low_threshold, clip_high_threshold)
# Compute both objectives
unclipped_objective = prob_ratio * advantages
clipped_objective = clipped_ratio * advantages
# Take minimum (most conservative)
ppo_objective = torch.min(unclipped_objective, clipped_objective)
# PPO loss is negative of objective
loss = -ppo_objective.sum()
