# Tinker doc example `losses_old_01_rl_train_example`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   https://tinker-docs.thinkingmachines.ai/losses (the old docs site, "Loss functions in Tinker")
#   markdown source: thinking-machines-lab/tinker-cookbook docs/losses.mdx
#     @ a2b1b820d4802cb8b2b016d7b202d6c3bf65fdd7
# FIDELITY:
#   exact copy of the code block (not reconstructed)
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: advantages, input_tokens, sampling_logprobs, target_tokens, training_client
#   input_tokens: a tinker.types.ModelInput of data[0]'s input tokens (the page passes it as model_input)
#   target_tokens: list[int], data[0]'s target tokens
#   sampling_logprobs: list[float], the offline engine's logprobs of those targets (an on-policy rollout)
#   advantages: list[float], 1.0 on the completion, 0.0 on the prompt
#   training_client: the module's shared tinker_offline LoRA training client (SmolLM2-135M, rank 16)
# DEPENDS: (none)
# RUN: top-level await: compiled with ast.PyCF_ALLOW_TOP_LEVEL_AWAIT and run with asyncio.run
# EXPECTED: xfail RequestFailedError
# AFTER the example, the test checks:
#   fwd_bwd_result.result() (the example stops at the future; its first future, for
#   importance_sampling, is overwritten by the ppo one)
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
import tinker
import torch
from tinker import TensorData

# Create training data with required inputs
datum = tinker.Datum(
    model_input=input_tokens,
    loss_fn_inputs={
        "target_tokens": TensorData.from_torch(torch.tensor(target_tokens)),
        "logprobs": TensorData.from_torch(torch.tensor(sampling_logprobs)),  # Reference logprobs
        "advantages": TensorData.from_torch(torch.tensor(advantages)),
    }
)

# Option 1: Use importance sampling REINFORCE
fwd_bwd_result = await training_client.forward_backward_async(
    [datum], loss_fn="importance_sampling"
)

# Option 2: Use PPO with clipping
fwd_bwd_result = await training_client.forward_backward_async(
    [datum], loss_fn="ppo"
)
