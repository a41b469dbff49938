# Tinker doc example `losses_old_11_custom_call`, checked by tests/test_tinker_doc_examples.py.
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
# PREPARED: data, training_client
#   data: two tinker.types.Datum built with the offline tokenizer ("The capital of France is" + " Paris.", "Two plus two equals" + " four."; input = full[:-1], target_tokens = full[1:], weights 0 on the prompt and 1 on the completion)
#   training_client: a fresh tinker_offline LoRA training client of its own (the failure poisons the client it runs on)
#   logprob_squared_loss: defined by running losses_old_10_custom_logprob_squared first
# DEPENDS: losses_old_10_custom_logprob_squared
# RUN: exec
# EXPECTED: xfail TypeError
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
loss, metrics = training_client.forward_backward_custom(data, logprob_squared_loss)
