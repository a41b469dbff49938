# Tinker doc example `losses_new_01_select_loss`, checked by tests/test_tinker_doc_examples.py.
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
# PREPARED: data, training_client
#   data: two tinker.types.Datum built with the offline tokenizer ("The capital of France is" + " Paris.", "Two plus two equals" + " four."; input = full[:-1], target_tokens = full[1:], weights 0 on the prompt and 1 on the completion)
#   training_client: the module's shared tinker_offline LoRA training client (SmolLM2-135M, rank 16)
# DEPENDS: (none)
# RUN: top-level await: compiled with ast.PyCF_ALLOW_TOP_LEVEL_AWAIT and run with asyncio.run
# EXPECTED: pass
# AFTER the example, the test checks:
#   result.metrics['loss:sum'] is finite
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
future = await training_client.forward_backward_async(data, loss_fn="cross_entropy")
result = await future.result_async()
