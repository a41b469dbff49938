# Tinker doc example `custom_loss_2_call`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   https://tinker-docs.thinkingmachines.ai/tinker/losses/custom ("Custom Loss Functions")
# FIDELITY:
#   exact copy (official page, pages-corpus excerpt)
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: data, training_client
#   data: two tinker.types.Datum built with the offline tokenizer ("The capital of France is" + " Paris.", "Two plus two equals" + " four."; input = full[:-1], target_tokens = full[1:], weights 0 on the prompt and 1 on the completion)
#   training_client: a fresh tinker_offline LoRA training client of its own (the failure poisons the client it runs on)
#   logprob_squared_loss: defined by running custom_loss_1_logprob_squared first
# DEPENDS: custom_loss_1_logprob_squared
# RUN: exec
# EXPECTED: xfail TypeError
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
future = training_client.forward_backward_custom(data, logprob_squared_loss)
result = future.result()
print(f"Loss: {result.loss}, Metrics: {result.metrics}")
