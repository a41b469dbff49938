# Tinker doc example `tutorial202_3_prepare_data`, checked by tests/test_tinker_doc_examples.py.
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
# DEPENDS: tutorial202_1_imports, tutorial202_2_setup_client
# RUN: exec
# EXPECTED: pass
# AFTER the example, the test checks:
#   sft_datum and rl_datum are defined
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
# -- SFT datum (for cross_entropy) --
prompt_text = "The capital of France is"
target_text = " Paris."
prompt_ids = tokenizer.encode(prompt_text)
target_ids = tokenizer.encode(target_text)

all_ids = prompt_ids + target_ids
model_input_sft = tinker.ModelInput.from_ints(all_ids[:-1])

# Target tokens: the next token at each position
sft_target_tokens = all_ids[1:]
# Weights: 0 for prompt positions, 1 for completion positions
sft_weights = [0.0] * (len(prompt_ids) - 1) + [1.0] * len(target_ids)

sft_datum = tinker.Datum(
    model_input=model_input_sft,
    loss_fn_inputs={
        "target_tokens": TensorData.from_torch(torch.tensor(sft_target_tokens)),
        "weights": TensorData.from_torch(torch.tensor(sft_weights)),
    },
)

# -- RL datum (for importance_sampling, ppo, cispo) --
# Simulate a sampled completion with fake logprobs and advantages
model_input_rl = tinker.ModelInput.from_ints(all_ids[:-1])
rl_target_tokens = all_ids[1:]
# Fake sampling logprobs (as if from a sampler)
rl_logprobs = [0.0] * (len(prompt_ids) - 1) + [-1.5] * len(target_ids)
# Positive advantage: this completion was good
rl_advantages = [0.0] * (len(prompt_ids) - 1) + [1.0] * len(target_ids)

rl_datum = tinker.Datum(
    model_input=model_input_rl,
    loss_fn_inputs={
        "target_tokens": TensorData.from_torch(torch.tensor(rl_target_tokens)),
        "logprobs": TensorData.from_torch(torch.tensor(rl_logprobs)),
        "advantages": TensorData.from_torch(torch.tensor(rl_advantages)),
    },
)

print(f"SFT datum: {len(all_ids)-1} tokens, {sum(sft_weights):.0f} completion tokens")
print(f"RL datum:  {len(all_ids)-1} tokens, advantage=+1.0 on completion")
