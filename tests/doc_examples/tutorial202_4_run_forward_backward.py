# Tinker doc example `tutorial202_4_run_forward_backward`, checked by tests/test_tinker_doc_examples.py.
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
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: (none)
# DEPENDS: tutorial202_2_setup_client, tutorial202_3_prepare_data
# RUN: top-level await: compiled with ast.PyCF_ALLOW_TOP_LEVEL_AWAIT and run with asyncio.run
# EXPECTED: xfail RequestFailedError
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
# Cross-entropy (SFT)
ce_future = await training_client.forward_backward_async([sft_datum], loss_fn="cross_entropy")
ce_result = await ce_future.result_async()
print(f"cross_entropy      loss:sum = {ce_result.metrics['loss:sum']:.4f}")

# Importance sampling (REINFORCE with IS correction)
is_future = await training_client.forward_backward_async(
    [rl_datum], loss_fn="importance_sampling"
)
is_result = await is_future.result_async()
print(f"importance_sampling loss:sum = {is_result.metrics['loss:sum']:.4f}")

# PPO (clipped objective)
ppo_future = await training_client.forward_backward_async([rl_datum], loss_fn="ppo")
ppo_result = await ppo_future.result_async()
print(f"ppo                loss:sum = {ppo_result.metrics['loss:sum']:.4f}")

# CISPO (clipped ratio weighting the log-prob)
cispo_future = await training_client.forward_backward_async([rl_datum], loss_fn="cispo")
cispo_result = await cispo_future.result_async()
print(f"cispo              loss:sum = {cispo_result.metrics['loss:sum']:.4f}")
