# Tinker doc example `tutorial202_2_setup_client`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   thinking-machines-lab/tinker-cookbook tutorials/202_loss_functions.py
#     @ 6a923104a2b62d8b23188b9155c0b85c77859cc2 (a marimo notebook; rendered as
#     https://tinker-docs.thinkingmachines.ai/tutorials/core-concepts/loss-functions)
# FIDELITY:
#   exact copy of one code cell, with marimo's 4-space cell indentation removed and the cell's
#   closing `return ...` line dropped (the rendered page omits it too);
#   test_tutorial202_cells_match_marimo_source checks it against tutorial202_full_marimo_file.py
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: 'tinker.ServiceClient()' -> 'tinker_offline.ServiceClient()'
# SUBSTITUTE: '"Qwen/Qwen3-4B-Instruct-2507"' -> '"HuggingFaceTB/SmolLM2-135M-Instruct"'
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: tinker_offline
#   tinker_offline: the tinker_offline package (the ServiceClient substitution names it)
#   The tutorial's cells run in one namespace, in order, each once (as marimo runs them).
# DEPENDS: tutorial202_1_imports
# RUN: top-level await: compiled with ast.PyCF_ALLOW_TOP_LEVEL_AWAIT and run with asyncio.run
# EXPECTED: pass
# AFTER the example, the test checks:
#   training_client and tokenizer are defined
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
MODEL_NAME = "Qwen/Qwen3-4B-Instruct-2507"

service_client = tinker.ServiceClient()
training_client = await service_client.create_lora_training_client_async(
    base_model=MODEL_NAME, rank=16
)
tokenizer = training_client.get_tokenizer()

print(f"Training client ready for {MODEL_NAME}")
