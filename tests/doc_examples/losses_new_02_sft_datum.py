# Tinker doc example `losses_new_02_sft_datum`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   https://tinker-docs.thinkingmachines.ai/tinker/losses ("Loss Functions")
# FIDELITY:
#   exact copy (official page, docs-corpus HTML excerpt)
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: input_tokens, target_tokens, training_client, weights
#   input_tokens, target_tokens: list[int], data[0]'s (full[:-1], full[1:])
#   weights: list[float], data[0]'s (0 for the prompt, 1 for the completion)
#   training_client: the module's shared tinker_offline LoRA training client (SmolLM2-135M, rank 16)
# DEPENDS: (none)
# RUN: top-level await: compiled with ast.PyCF_ALLOW_TOP_LEVEL_AWAIT and run with asyncio.run
# EXPECTED: xfail AttributeError
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
import tinker
from tinker import types

# A single training example: predict target_tokens from input_tokens
datum = types.Datum(
    model_input=types.ModelInput.from_ints(input_tokens),  # shape: (N,)
    loss_fn_inputs={
        "target_tokens": target_tokens,  # shape: (N,) — what to predict at each position
        "weights": weights,              # shape: (N,) — 0 for prompt, 1 for completion
    }
)

# forward_backward computes the loss and gradients in one call
future = await training_client.forward_backward_async([datum], loss_fn="cross_entropy")
result = await future.result_async()
print(f"Loss: {result.loss}")
