"""halyard.Context (the context C API) and Model.create_completions (prompts stepped together)."""

import pytest

import halyard

PROMPT = "The capital of France is"
PARIS = 7042  # " Paris", the greedy next token after PROMPT
# A prompt longer than the max_batch_tokens used below: its prefill takes several steps.
LONG = ("The quick brown fox jumps over the lazy dog, and then it rests for a while under the old oak "
        "tree by the river, where")


def alone(model, prompt, **kw):
    return model.create_completion(prompt, temperature=0, **kw)


def counts(usage):
    """Token counts without prompt_tokens_details: an earlier test may have left this prompt in
    the model's prefix cache, which create_completions (a fresh context) does not share."""
    return {k: v for k, v in usage.items() if k != "prompt_tokens_details"}


def test_batched_greedy_equals_each_prompt_alone(model):
    # On ref exactly; on cpu a token's arithmetic depends on its batch (other kernels for n > 1
    # tokens), which the C++ context tests bound: the greedy tokens of these prompts agree.
    prompts = [PROMPT, "Hi", LONG, "One, two, three, four, five,"]
    max_tokens = 8
    if model.device == "ref":  # ref is slow: fewer and shorter
        prompts, max_tokens = prompts[:3], 3
    batched = model.create_completions(prompts, max_tokens=max_tokens, temperature=0, max_batch_tokens=8)
    assert len(batched) == len(prompts)
    assert len(model.tokenize(LONG)) > 8
    for prompt, got in zip(prompts, batched):
        want = alone(model, prompt, max_tokens=max_tokens)
        assert got["choices"] == want["choices"], prompt
        assert counts(got["usage"]) == counts(want["usage"]), prompt
        assert got["object"] == "text_completion" and got["id"].startswith("cmpl-")
        assert got["model"] == model.model_path
    assert len({r["id"] for r in batched}) == len(prompts)


def test_sequences_finish_at_different_times(cpu_model):
    # A stop string ends the first after 3 tokens, the chat reply ends at <|im_end|> (after 7),
    # the last runs to max_tokens; each ends as it would alone, and the others go on. (Short
    # replies: on cpu a long greedy text can part at a near tie, batched or not.)
    chat = cpu_model.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}])
    prompts = [PROMPT, chat, "Hi"]
    batched = cpu_model.create_completions(prompts, max_tokens=16, temperature=0, stop=["\n"])
    for prompt, got in zip(prompts, batched):
        want = alone(cpu_model, prompt, max_tokens=16, stop=["\n"])
        assert got["choices"] == want["choices"], prompt
        assert counts(got["usage"]) == counts(want["usage"]), prompt
    assert batched[0]["choices"][0]["text"] == " Paris."
    assert [r["choices"][0]["finish_reason"] for r in batched] == ["stop", "stop", "length"]
    assert batched[1]["choices"][0]["text"] == "The capital of France is Paris."


def test_context_full_is_length(model_path):
    with halyard.Model(model_path, device="cpu", n_ctx=12, n_threads=2) as m:
        got = m.create_completions([PROMPT, "Hi"], max_tokens=None, temperature=0)
        for prompt, r in zip([PROMPT, "Hi"], got):
            want = m.create_completion(prompt, max_tokens=None, temperature=0)
            assert r["choices"] == want["choices"]
            assert r["choices"][0]["finish_reason"] == "length"
            assert r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] == 13  # the last is not fed


def test_seeded_sampling_repeats_and_does_not_depend_on_the_batch(ref_model):
    # On ref, whose batched arithmetic is exact: on cpu a sequence's logits depend on where its
    # tokens fall in the integer tiles at the rounding level, and a draw at temperature 1 can
    # land on either side of a boundary that close (seen: " Paris," against " Paris and").
    a = ref_model.create_completions([PROMPT, PROMPT, "Hi"], max_tokens=10, temperature=1.0, seed=7)
    b = ref_model.create_completions([PROMPT], max_tokens=10, temperature=1.0, seed=7)
    assert a[0]["choices"][0]["text"] == a[1]["choices"][0]["text"] == b[0]["choices"][0]["text"]
    assert a[0]["usage"]["completion_tokens"] > 0


def test_seeded_batch_texts_equal_create_completions_with_penalties_and_bias(ref_model):
    """Each prompt runs the library's sampler chain: with the same options and seed its text is
    create_completion's (penalties and logit bias included), whatever else is in the batch (on
    ref, exact; see above for cpu)."""
    options = dict(max_tokens=8, temperature=0.9, top_k=30, top_p=0.9, min_p=0.02, seed=1234,
                   repeat_penalty=1.2, presence_penalty=0.3, logit_bias={7042: -float("inf")})
    batched = ref_model.create_completions([PROMPT, "Hi"], **options)
    for prompt, got in zip([PROMPT, "Hi"], batched):
        want = ref_model.create_completion(prompt, **options)
        assert got["choices"][0]["text"] == want["choices"][0]["text"], prompt
        assert got["usage"]["completion_tokens"] == want["usage"]["completion_tokens"]
    with pytest.raises(halyard.InvalidArgument) as info:
        ref_model.create_completions([PROMPT], logit_bias={10**9: 1.0})
    assert "bias" in info.value.message


def test_create_completions_errors(ref_model):
    assert ref_model.create_completions([]) == []
    with pytest.raises(TypeError):
        ref_model.create_completions(PROMPT)
    with pytest.raises(halyard.OutOfRange) as info:
        ref_model.create_completions([PROMPT, "word " * 300], max_tokens=1)
    assert "prompts[1]" in info.value.message
    with pytest.raises(halyard.InvalidArgument) as info:
        ref_model.create_completions([PROMPT], temperature=-1)
    assert "temperature" in info.value.message
    with pytest.raises(halyard.InvalidArgument):
        ref_model.create_completions([PROMPT], top_p=0)
    with pytest.raises(halyard.InvalidArgument):
        ref_model.create_completions([PROMPT], max_batch_tokens=0)
    with pytest.raises(halyard.InvalidArgument) as info:
        ref_model.create_completions([""], max_tokens=1)
    assert "empty" in info.value.message


def test_step_logits_and_sequence_operations(ref_model):
    ids = ref_model.tokenize(PROMPT)
    with halyard.Context(ref_model, max_sequences=2, max_batch_tokens=16) as ctx:
        assert ctx.max_sequences == 2 and ctx.block_size == 16
        assert ctx.kv_blocks_total == 2 * 256 // 16  # room for the whole context, each
        assert ctx.kv_blocks_used == 0
        assert ctx.kv_bytes_per_block == 16 * 2 * 30 * 64 * 3 * 2  # f16, the model's
        ctx.step(ids, list(range(len(ids))), [0] * len(ids), [False, True, False, False, True])
        last = ctx.logits(len(ids) - 1)
        assert len(last) == ref_model.n_vocab() == len(ctx.logits(1))
        assert last.index(max(last)) == PARIS
        with pytest.raises(halyard.InvalidArgument):
            ctx.logits(0)  # it did not ask
        with pytest.raises(halyard.InvalidArgument):
            ctx.logits(len(ids))
        assert ctx.seq_pos_min(0) == 0 and ctx.seq_pos_max(0) == len(ids) - 1
        assert ctx.kv_blocks_used == 1
        # The next token continues the sequence; logits=None keeps the last token's.
        ctx.step([PARIS], [len(ids)], [0])
        assert len(ctx.logits(0)) == ref_model.n_vocab()
        ctx.seq_copy(0, 1)
        assert ctx.seq_pos_max(1) == len(ids)
        ctx.seq_remove(1, 2)
        assert ctx.seq_pos_max(1) == 1 and ctx.seq_pos_max(0) == len(ids)
        ctx.seq_remove(0, 1, 2)  # a middle position: the rest is recomputed
        assert ctx.seq_pos_max(0) == len(ids) - 1
        ctx.seq_keep(1)
        assert ctx.seq_pos_max(0) == -1 and ctx.seq_pos_min(0) == -1
        ctx.seq_remove(1)
        assert ctx.kv_blocks_used == 0
        assert ctx.seq_pos_max(7) == -1  # not a sequence id


def test_bad_sequence_ids_raise_the_librarys_error(ref_model):
    with halyard.Context(ref_model, max_sequences=2) as ctx:
        with pytest.raises(halyard.InvalidArgument) as info:
            ctx.step([504], [0], [9])
        assert info.value.message == "step: sequence id 9 is outside [0, 2)"
        with pytest.raises(halyard.OutOfRange) as info:
            ctx.seq_copy(0, 5)
        assert info.value.message == "sequence id 5 is outside [0, 2)"
        with pytest.raises(halyard.OutOfRange):
            ctx.seq_keep(-1)
        with pytest.raises(halyard.InvalidArgument) as info:
            ctx.step([504], [3], [0])  # does not continue the sequence
        assert "sequence 0" in info.value.message
        with pytest.raises(halyard.InvalidArgument):
            ctx.step([10**6], [0], [0])  # not a token
        with pytest.raises(halyard.InvalidArgument):
            ctx.step([504, 3575], [0], [0, 0])  # lengths differ
        with pytest.raises(halyard.InvalidArgument):
            ctx.step([], [], [])
        with pytest.raises(halyard.InvalidArgument):
            ctx.step([504], [0], [2**40])
        assert ctx.seq_pos_max(0) == -1  # nothing changed


def test_cache_full_and_capacity_options(ref_model):
    with halyard.Context(ref_model, kv_blocks=1, max_batch_tokens=32) as ctx:
        assert ctx.kv_blocks_total == 1
        with pytest.raises(halyard.KvCacheFull):
            ctx.step([504] * 17, list(range(17)), [0] * 17)
        assert ctx.seq_pos_max(0) == -1
        per_block = ctx.kv_bytes_per_block
    with halyard.Context(ref_model, kv_bytes=3 * per_block + 1) as ctx:
        assert ctx.kv_blocks_total == 3
    with halyard.Context(ref_model, kv_bytes=4 * per_block, kv_dtype="f32") as ctx:
        assert ctx.kv_bytes_per_block == 2 * per_block and ctx.kv_blocks_total == 2
    with halyard.Context(ref_model, kv_dtype="f16") as ctx:
        assert ctx.kv_bytes_per_block == per_block
    with pytest.raises(halyard.InvalidArgument) as info:
        halyard.Context(ref_model, kv_blocks=2, kv_bytes=4 * per_block)
    assert "not both" in info.value.message
    with pytest.raises(halyard.InvalidArgument) as info:
        halyard.Context(ref_model, kv_bytes=per_block - 1)
    assert "less than one KV block" in info.value.message
    with pytest.raises(halyard.InvalidArgument):
        halyard.Context(ref_model, kv_dtype="bf16")
    with pytest.raises(halyard.InvalidArgument):
        halyard.Context(ref_model, max_sequences=0)


def test_closed_context_raises(model_path):
    with halyard.Model(model_path, device="cpu", n_ctx=64, n_threads=2) as m:
        ctx = m.create_context(max_sequences=2)
        ctx.close()
        ctx.close()  # twice is fine
        assert ctx.closed
        for call in (lambda: ctx.step([504], [0], [0]), lambda: ctx.logits(0), lambda: ctx.seq_pos_max(0),
                     lambda: ctx.seq_remove(0), lambda: ctx.kv_blocks_total):
            with pytest.raises(halyard.InvalidArgument) as info:
                call()
            assert info.value.message == "the context is closed"
        # Closing the model closes its open contexts first.
        other = halyard.Context(m, max_sequences=1)
        ids = m.tokenize(PROMPT)
        other.step(ids, list(range(len(ids))), [0] * len(ids))
    assert other.closed
    with pytest.raises(halyard.InvalidArgument):
        other.step([504], [0], [0])
    with pytest.raises(halyard.InvalidArgument):
        halyard.Context(m)  # a closed model


HISTORY = ("The history of the city begins with a small fishing village on the river, where traders from the "
        "north came every summer to sell furs and buy salt. Over the centuries it grew into a market town.")


def test_prefix_cache_hit_gives_the_logits_of_computing_the_prompt(cpu_model):
    ids = cpu_model.tokenize(HISTORY)
    assert len(ids) > 33
    with halyard.Context(cpu_model, max_sequences=2) as ctx:
        assert ctx.attach_prefix(0, ids) == 0
        ctx.step(ids, list(range(len(ids))), [0] * len(ids))
        computed = ctx.logits(len(ids) - 1)
        ctx.seq_remove(0)
        got = ctx.attach_prefix(1, ids)
        assert got == (len(ids) - 1) // 16 * 16 and ctx.seq_pos_max(1) == got - 1
        assert ctx.prefix_hits == got // 16
        rest = ids[got:]
        ctx.step(rest, list(range(got, len(ids))), [1] * len(rest))
        reused = ctx.logits(len(rest) - 1)
        err = sum((a - b) ** 2 for a, b in zip(computed, reused)) / sum(a * a for a in computed)
        assert err < 2e-3  # cpu rounds with the batch size: ContextTest's bound
        assert reused.index(max(reused)) == computed.index(max(computed))
        with pytest.raises(halyard.InvalidArgument):
            ctx.attach_prefix(1, ids)  # not empty
    with halyard.Context(cpu_model, prefix_cache=False) as ctx:
        ctx.step(ids, list(range(len(ids))), [0] * len(ids))
        ctx.seq_remove(0)
        assert ctx.attach_prefix(0, ids) == 0


def test_completion_usage_reports_cached_prompt_tokens(cpu_model):
    first = cpu_model.create_completion(HISTORY, max_tokens=4, temperature=0)
    second = cpu_model.create_completion(HISTORY, max_tokens=4, temperature=0)
    n = second["usage"]["prompt_tokens"]
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] == (n - 1) // 16 * 16
    assert second["choices"][0]["text"] == first["choices"][0]["text"]
