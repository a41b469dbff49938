# Tinker doc example `tutorial202_7_custom_logprob_squared`, checked by tests/test_tinker_doc_examples.py.
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
# DEPENDS: tutorial202_1_imports, tutorial202_2_setup_client, tutorial202_3_prepare_data
# RUN: top-level await: compiled with ast.PyCF_ALLOW_TOP_LEVEL_AWAIT and run with asyncio.run
# EXPECTED: pass
# AFTER the example, the test checks:
#   custom_result.metrics['logprob_sq'] equals its loss:sum and is finite
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
def logprob_squared_loss(data, logprobs_list):
    """Sum of squared target-token logprobs. Penalizes low-confidence predictions."""
    total_loss = torch.tensor(0.0)
    for logprobs in logprobs_list:
        # logprobs close to 0 = high confidence (small penalty)
        # logprobs << 0 = low confidence (large penalty)
        total_loss = total_loss + (logprobs**2).sum()
    return total_loss, {"logprob_sq": total_loss.item()}

custom_future = await training_client.forward_backward_custom_async(
    [sft_datum], logprob_squared_loss
)
custom_result = await custom_future.result_async()
print(f"Custom loss metrics: {custom_result.metrics}")
