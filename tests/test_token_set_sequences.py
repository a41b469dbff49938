"""Labels of any length (token_set.sequences): the trie's datums, the exact KL and its gradient
against a hand-written computation, one-token sets unchanged, and label_logprobs on the model
against one datum per label."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tinker import types

import token_set
from engine_support import BASE_MODEL, new_client  # noqa: F401

VOCAB, PROMPT = 50, [3, 7, 9, 4]
#: 1-, 2- and 3-token labels; 10 is the first token of three labels, (10, 11) starts two
SEQUENCES = [[5], [10, 11], [10, 12], [10, 11, 13], [20, 21]]
TARGET = [0.1, 0.2, 0.3, 0.15, 0.25]


class Bigram(torch.nn.Module):
    """A causal toy model: the logits after a token depend only on that token."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.table = torch.nn.Parameter(torch.randn(VOCAB, VOCAB))

    def logprobs_after(self, token: int) -> torch.Tensor:
        return torch.log_softmax(self.table[token], dim=-1)

    def datum_logprobs(self, datum: types.Datum) -> torch.Tensor:
        """What Tinker returns: row t holds log P(target_tokens[t, c] | inputs 0..t)."""
        tokens = datum.model_input.to_ints()
        target_tokens = datum.loss_fn_inputs["target_tokens"].to_torch()
        rows = torch.stack([self.logprobs_after(token) for token in tokens])  # [T', V]
        return rows.gather(1, target_tokens.reshape(len(tokens), -1)).reshape(target_tokens.shape)


def hand_written_kl(model: Bigram, sequences, target) -> torch.Tensor:
    """KL(p || q), q the renormalized product of each label's next-token probabilities."""
    log_p = []
    for seq in sequences:
        previous = [PROMPT[-1]] + seq[:-1]
        log_p.append(sum(model.logprobs_after(prev)[token] for prev, token in zip(previous, seq)))
    log_p = torch.stack(log_p)
    log_q = log_p - torch.logsumexp(log_p, dim=0)
    p = torch.tensor(target)
    return (torch.xlogy(p, p) - p * log_q).sum()


def library_kl(model: Bigram, data) -> torch.Tensor:
    return token_set.kl_over_label_sequences(data, [model.datum_logprobs(d) for d in data])[0]


def test_the_trie_gives_one_datum_per_longest_context():
    branches = token_set.label_branches(SEQUENCES)
    assert [b.path for b in branches] == [(10, 11), (20,)]  # [10] is the start of [10, 11]
    assert [b.labels for b in branches] == [(0, 1, 2, 3), (4,)]
    data = token_set.build_label_datums(types.ModelInput.from_ints(PROMPT), TARGET, SEQUENCES)
    assert [d.model_input.length for d in data] == [len(PROMPT) + 2, len(PROMPT) + 1]
    assert token_set.label_branches([[1], [2, 3]]) == [token_set.LabelBranch((2,), (0, 1))]  # one datum, one longer


def test_the_exact_kl_and_its_gradient_equal_a_hand_written_computation():
    data = token_set.build_label_datums(types.ModelInput.from_ints(PROMPT), TARGET, SEQUENCES)
    model = Bigram()
    ours = library_kl(model, data)
    ours.backward()
    our_gradient = model.table.grad.clone()
    model.table.grad = None
    theirs = hand_written_kl(model, SEQUENCES, TARGET)
    theirs.backward()
    assert float(ours.detach()) > 0.1 and torch.allclose(ours, theirs, atol=1e-6)
    assert torch.allclose(our_gradient, model.table.grad, atol=1e-6)


def test_the_cross_entropy_weights_give_minus_the_target_weighted_sequence_logprob():
    data = token_set.build_label_datums(types.ModelInput.from_ints(PROMPT), TARGET, SEQUENCES)
    model = Bigram()
    cross_entropy = sum(-(model.datum_logprobs(d) * d.loss_fn_inputs["weights"].to_torch()).sum() for d in data)
    [(p, log_p)] = token_set.example_label_logprobs(data, [model.datum_logprobs(d) for d in data])
    assert torch.allclose(cross_entropy, -(p * log_p).sum(), atol=1e-5)


def test_one_token_label_sets_give_todays_datum_and_numbers():
    label_ids = [5, 10, 20]
    target = [0.5, 0.3, 0.2]
    model_input = types.ModelInput.from_ints(PROMPT)
    [datum] = token_set.build_label_datums(model_input, target, [[i] for i in label_ids])
    today = token_set.build_datum(model_input, target, label_ids)
    assert set(datum.loss_fn_inputs) == set(today.loss_fn_inputs)
    for key in today.loss_fn_inputs:
        assert torch.equal(datum.loss_fn_inputs[key].to_torch(), today.loss_fn_inputs[key].to_torch()), key
    logprobs = Bigram().datum_logprobs(datum)
    assert torch.equal(token_set.kl_over_label_sequences([datum], [logprobs])[0],
                       token_set.kl_over_labels([today], [logprobs])[0])


def test_two_examples_in_one_batch_are_normalized_apart_and_a_missing_datum_is_refused():
    model = Bigram()
    first = token_set.build_label_datums(types.ModelInput.from_ints(PROMPT), TARGET, SEQUENCES)
    second_target = [0.6, 0.1, 0.1, 0.1, 0.1]
    second = token_set.build_label_datums(types.ModelInput.from_ints(PROMPT), second_target, SEQUENCES)
    batch = [first[0], second[0], first[1], second[1]]  # interleaved, as a shuffled batch may be
    together = library_kl(model, batch)
    apart = hand_written_kl(model, SEQUENCES, TARGET) + hand_written_kl(model, SEQUENCES, second_target)
    assert torch.allclose(together, apart, atol=1e-6)
    with pytest.raises(ValueError, match="not each scored once"):
        library_kl(model, [first[0], second[0], second[1]])


def test_label_sets_that_cannot_be_scored_exactly_are_refused_by_name():
    tokenizer = new_client().get_tokenizer()
    prompt = tokenizer.encode("<|im_start|>assistant\nEmotion:", add_special_tokens=False)
    with pytest.raises(ValueError, match="'content' is the start of 'contentment'"):
        token_set.label_token_sequences(tokenizer, prompt, ["content", "contentment", "sarcasm"])
    sequences = token_set.label_token_sequences(tokenizer, prompt, ["content", "contentment", "sarcasm"], end="<|im_end|>")
    assert [tokenizer.convert_ids_to_tokens(s) for s in sequences] == [
        ["Ġcontent", "<|im_end|>"], ["Ġcontent", "ment", "<|im_end|>"], ["Ġsarc", "asm", "<|im_end|>"]]
    with pytest.raises(ValueError, match="'joy' and 'joy' have the same tokens"):
        token_set.label_token_sequences(tokenizer, prompt, ["joy", "joy"])


@pytest.mark.slow
def test_label_logprobs_equals_one_datum_per_label_on_the_model():
    """Slow: one forward on SmolLM2 per label, and one for all labels."""
    client = new_client()
    tokenizer = client.get_tokenizer()
    prompt = tokenizer.encode("<|im_start|>user\nThe bus left without me.<|im_end|>\n<|im_start|>assistant\nEmotion:",
                              add_special_tokens=False)
    # 1, 2 and 3 tokens; " Dis", " B" and " sarc" each start two labels
    words = ["anger", "Anger", "sarcasm", "sarcastic", "Disgust", "Disdain", "Boredom", "Boring"]
    sequences = token_set.label_token_sequences(tokenizer, prompt, words)
    assert sorted({len(s) for s in sequences}) == [1, 2, 3]  # labels of 1, 2 and 3 tokens
    assert len({s[0] for s in sequences}) < len(sequences)  # some share a first token
    model_input = types.ModelInput.from_ints(prompt)
    exact = token_set.label_logprobs(client, model_input, sequences)
    one_at_a_time = []
    for seq in sequences:  # a [T]-contract datum per label: the label's tokens as next tokens
        tokens = prompt + seq[:-1]
        target_tokens = np.zeros(len(tokens), dtype=np.int64)
        target_tokens[len(prompt) - 1:] = seq
        weights = np.zeros(len(tokens), dtype=np.float32)
        weights[len(prompt) - 1:] = 1
        datum = types.Datum(model_input=types.ModelInput.from_ints(tokens),
                            loss_fn_inputs={"target_tokens": target_tokens, "weights": weights})
        logprobs = client.forward([datum], "cross_entropy").result().loss_fn_outputs[0]["logprobs"].to_numpy()
        one_at_a_time.append(float(logprobs[len(prompt) - 1:].sum()))
    assert exact == pytest.approx(one_at_a_time, abs=2e-4)
