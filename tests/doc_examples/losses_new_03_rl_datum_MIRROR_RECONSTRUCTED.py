# Tinker doc example `losses_new_03_rl_datum_MIRROR_RECONSTRUCTED`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   https://tinker-docs.thinkingmachines.ai/tinker/losses ("Loss Functions")
#   mirror: GitHub-file index id 59259640026 (no repository or path known)
# FIDELITY:
#   RECONSTRUCTED FROM A MIRROR: only the start of the official page could be read; this code
#   comes from a scraped copy of the page (a slightly different revision) whose code blocks had
#   lost their newlines. Line breaks were restored; no token was changed.
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: advantages, sampling_logprobs, target_tokens, tokens, training_client, types, weights
#   types: tinker.types (the page's SFT example above imports it)
#   tokens, target_tokens: list[int], data[0]'s input and target tokens
#   weights: list[float], data[0]'s weights
#   sampling_logprobs: list[float], the engine's logprobs of target_tokens (an on-policy rollout)
#   advantages: list[float], 1.0 on the completion, 0.0 on the prompt
#   training_client: the module's shared tinker_offline LoRA training client (SmolLM2-135M, rank 16)
# DEPENDS: (none)
# RUN: top-level await: compiled with ast.PyCF_ALLOW_TOP_LEVEL_AWAIT and run with asyncio.run
# EXPECTED: xfail RequestFailedError
# AFTER the example, the test checks:
#   future.result() (the example stops at the future)
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
rl_datum = types.Datum(
    model_input=types.ModelInput.from_ints(tokens),    # shape: (N,)
    loss_fn_inputs={
        "target_tokens": target_tokens,                 # shape: (N,)
        "weights": weights,                             # shape: (N,)
        "logprobs": sampling_logprobs,                  # shape: (N,) — from the rollout policy
        "advantages": advantages,                       # shape: (N,) — reward signal per token
    }
)
future = await training_client.forward_backward_async([rl_datum], loss_fn="importance_sampling")
