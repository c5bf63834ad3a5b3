"""lmkit.serve: the OpenAI-compatible server gives each of many concurrent clients what the model gives that prompt
alone, refuses bad requests with OpenAI's 4xx error body and keeps serving, and outlives a client that leaves."""
from __future__ import annotations

import concurrent.futures
import json
import random
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")
import httpx  # noqa: E402 - after the skips: openai brings it

from conftest import WORDS  # noqa: E402
from lmkit import serve  # noqa: E402
from lmkit.checks import CheckError  # noqa: E402
from lmkit.serving import Engine  # noqa: E402

STEP_DELAY = 0.01  # seconds added to each engine step, so that requests sent together are in the batch together


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_lm):
    """The app over the tiny model, served by uvicorn in a thread of this process (so the test can read its engine);
    each step slowed by STEP_DELAY."""
    app = serve.make_app(tiny_lm, max_batch=4, block_size=4, max_tokens_per_step=32)
    worker = app.state.worker
    failures = []  # exceptions the next steps raise

    def slow(engine):
        step = engine.step

        def slow_step():
            time.sleep(STEP_DELAY)
            if failures:
                raise failures.pop()
            return step()

        engine.step = slow_step

    slow(worker.engine)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    yield SimpleNamespace(base=base, url=base + "/v1", worker=worker, name=tiny_lm.name, slow=slow, failures=failures,
                          client=openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0, timeout=30))
    uv.should_exit = True
    thread.join(15)
    assert not worker.running, "the engine thread outlived the app"


# ----------------------------------------------------------------------------------------------- references
def _generate(lm, ids, max_new_tokens):
    """model.generate, greedy, on one unpadded prompt: the reference every greedy reply must match."""
    x = torch.tensor([ids])
    out = lm.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
                            temperature=None, top_p=None, top_k=None, pad_token_id=lm.tokenizer.eos_token_id)
    return out[0, len(ids):].tolist()


def _engine_alone(lm, ids, max_new_tokens, **kw):
    engine = Engine(lm, max_len=128)
    rid = engine.add(ids, max_new_tokens, **kw)
    return engine.run()[rid], engine.requests[rid].finish_reason


def _chat_ids(tok, content):
    text = tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
    return tok(text, add_special_tokens=False).input_ids


def _expected(lm, ids, output, finish=None):
    stop = output[-1] == lm.tokenizer.eos_token_id
    return {"text": lm.tokenizer.decode(output, skip_special_tokens=True), "finish": finish or
            ("stop" if stop else "length"), "prompt_tokens": len(ids), "completion_tokens": len(output)}


def _ask(client, name, kind, stream, content, **kw):
    """One request through the OpenAI client: the text, the finish reason and the usage counts."""
    if kind == "chat":
        reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": content}],
                                               stream=stream, **({"stream_options": {"include_usage": True}}
                                                                 if stream else {}), **kw)
    else:
        reply = client.completions.create(model=name, prompt=content, stream=stream,
                                          **({"stream_options": {"include_usage": True}} if stream else {}), **kw)
    if not stream:
        choice = reply.choices[0]
        text = choice.message.content if kind == "chat" else choice.text
        return {"text": text, "finish": choice.finish_reason, "prompt_tokens": reply.usage.prompt_tokens,
                "completion_tokens": reply.usage.completion_tokens}
    parts, finish, usage, chunks = [], [], None, 0
    for chunk in reply:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            parts.append((choice.delta.content if kind == "chat" else choice.text) or "")
            if choice.finish_reason is not None:
                finish.append(choice.finish_reason)
    assert len(finish) == 1, f"one chunk must carry the finish reason, got {finish}"
    assert usage is not None and chunks > 2, "the stream ended without its usage chunk"
    return {"text": "".join(parts), "finish": finish[0], "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens}


# ----------------------------------------------------------------------------------------------- what it serves
def test_models_lists_the_served_model(server, tiny_folder):
    assert [m.id for m in server.client.models.list().data] == [tiny_folder.name] == [server.name]
    assert server.client.models.retrieve(server.name).id == server.name
    with pytest.raises(openai.NotFoundError):
        server.client.models.retrieve("gpt-4")


def test_concurrent_requests_match_generating_alone(server, tiny_lm):
    rng = random.Random(0)
    tok = tiny_lm.tokenizer
    cases = []
    for i in range(8):
        kind, stream = ("chat", "text")[i % 2], i % 4 >= 2
        content = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
        budget = rng.randint(8, 24)
        ids = _chat_ids(tok, content) if kind == "chat" else tok(content, add_special_tokens=False).input_ids
        cases.append((kind, stream, content, budget, _expected(tiny_lm, ids, _generate(tiny_lm, ids, budget))))
    assert any(e["text"] for *_, e in cases), "every reference is empty: the comparison would prove little"
    steps = len(server.worker.engine.history)
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        futures = [pool.submit(_ask, server.client, server.name, kind, stream, content, max_tokens=budget)
                   for kind, stream, content, budget, _ in cases]
        got = [f.result() for f in futures]
    for (kind, stream, content, budget, expected), reply in zip(cases, got):
        assert reply == expected, f"{kind} stream={stream} {content!r}"
        assert reply["prompt_tokens"] + reply["completion_tokens"] > reply["prompt_tokens"]
    assert max(h["running"] for h in server.worker.engine.history[steps:]) > 1, "the requests never shared a batch"


def test_a_seeded_sample_is_what_the_engine_gives_alone_and_can_stop(server, tiny_lm):
    """Sampling draws from each request's own seeded generator, so batching does not change it; the seed is one
    whose sample ends with the end-of-sequence token, so "stop" and its usage count are checked too."""
    tok = tiny_lm.tokenizer
    prompt = "the big dog ran to the house"
    ids = tok(prompt, add_special_tokens=False).input_ids
    seed = next((s for s in range(300) if _engine_alone(tiny_lm, ids, 40, temperature=1.0, seed=s)[1] == "stop"),
                None)
    assert seed is not None, "no seed among 300 sampled an end-of-sequence token"
    stopped = _expected(tiny_lm, ids, _engine_alone(tiny_lm, ids, 40, temperature=1.0, seed=seed)[0])
    chat_ids = _chat_ids(tok, prompt)
    sampled = _expected(tiny_lm, chat_ids, _engine_alone(tiny_lm, chat_ids, 20, temperature=0.8, seed=7)[0])
    assert stopped["finish"] == "stop" and stopped["completion_tokens"] < 40
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        a = pool.submit(_ask, server.client, server.name, "text", False, prompt, max_tokens=40, temperature=1.0,
                        seed=seed)
        b = pool.submit(_ask, server.client, server.name, "text", True, prompt, max_tokens=40, temperature=1.0,
                        seed=seed)
        c = pool.submit(_ask, server.client, server.name, "chat", True, prompt, max_tokens=20, temperature=0.8,
                        seed=7)
        assert a.result() == b.result() == stopped
        assert c.result() == sampled


# ----------------------------------------------------------------------------------------------- bad requests
LONG = " ".join(["the"] * 200)
BAD = [  # (path, body: raw bytes or a JSON value, status, param, a piece of the message)
    ("/v1/completions", b'{"prompt": "the cat", "max_tokens": 4', 400, None, "not valid JSON"),
    ("/v1/completions", b"[1, 2]", 400, None, "not an object"),
    ("/v1/completions", {"model": "gpt-4", "prompt": "the cat"}, 404, "model", "'gpt-4' does not exist"),
    ("/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}, 404, "model",
     "does not exist"),
    ("/v1/completions", {"prompt": "the cat", "max_tokens": 0}, 400, "max_tokens", "max_tokens=0"),
    ("/v1/completions", {"prompt": "the cat", "max_tokens": "ten", "stream": True}, 400, "max_tokens",
     "max_tokens='ten'"),
    ("/v1/completions", {"prompt": "the cat", "max_tokens": 2.5}, 400, "max_tokens", "max_tokens=2.5"),
    ("/v1/completions", {"prompt": "the cat", "temperature": "hot"}, 400, "temperature", "temperature='hot'"),
    ("/v1/completions", {"prompt": "the cat", "temperature": -1}, 400, "temperature", "temperature=-1"),
    ("/v1/completions", {"prompt": "the cat", "seed": -3}, 400, "seed", "seed=-3"),
    ("/v1/completions", {"prompt": "the cat", "stream": "yes"}, 400, "stream", "stream='yes'"),
    ("/v1/completions", {"prompt": 42}, 400, "prompt", "prompt=42"),
    ("/v1/completions", {"prompt": ""}, 400, "prompt", "gives no tokens"),
    ("/v1/completions", {"prompt": [5, 10**6]}, 400, "prompt", "1000000"),
    ("/v1/completions", {"prompt": LONG}, 400, "prompt", "the prompt has 200 tokens and the context is 128"),
    ("/v1/completions", {"prompt": "the cat", "max_tokens": 127}, 400, "max_tokens", "max_tokens=127"),
    ("/v1/completions", {"prompt": "the cat", "n": 2}, 400, "n", "n=2"),
    ("/v1/chat/completions", {"messages": "hi"}, 400, "messages", "messages='hi'"),
    ("/v1/chat/completions", {"max_tokens": 4}, 400, "messages", "messages=None"),
    ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages[0].role",
     "'robot'"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 7}]}, 400, "messages", "content=7"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi <|im_end|>"}]}, 400, "messages",
     "'<|im_end|>'"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": LONG}]}, 400, "messages",
     "the context is 128"),
    ("/v1/nothing", {"prompt": "the cat"}, 404, None, "/v1/nothing"),
]


@pytest.mark.parametrize("path, body, status, param, says", BAD, ids=[f"{i}-{c[4][:20]}" for i, c in enumerate(BAD)])
def test_a_bad_request_gets_a_4xx_json_error_and_the_server_goes_on(server, path, body, status, param, says):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(base_url=server.base, timeout=30) as http:
        reply = http.post(path, content=content, headers={"Content-Type": "application/json"})
        assert reply.status_code == status, reply.text
        assert reply.headers["content-type"].startswith("application/json")  # not a stream, even with stream=true
        error = reply.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param
        assert says in error["message"] and "\n" not in error["message"], error["message"]
        ok = http.post("/v1/completions", json={"prompt": "the cat", "max_tokens": 2})
        assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 2


def test_the_openai_client_sees_the_errors_as_its_own(server):
    with pytest.raises(openai.BadRequestError, match="max_tokens=0 must be an integer >= 1"):
        server.client.completions.create(model=server.name, prompt="the cat", max_tokens=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        server.client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    with httpx.Client(base_url=server.base) as http:  # the framework's own errors get the same body
        reply = http.get("/v1/completions")
        assert reply.status_code == 405 and reply.json()["error"]["type"] == "invalid_request_error"


# ----------------------------------------------------------------------------------------------- leaving early
def test_a_client_that_leaves_mid_stream_does_not_stop_the_others(server, tiny_lm):
    tok = tiny_lm.tokenizer
    worker = server.worker
    ids = tok("the cat sat on the mat", add_special_tokens=False).input_ids
    expected = _expected(tiny_lm, ids, _generate(tiny_lm, ids, 40))
    seen = len(worker.log)
    aborted = worker.counts["aborted"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        other = pool.submit(_ask, server.client, server.name, "text", True, "the cat sat on the mat", max_tokens=40)
        with httpx.Client(base_url=server.base, timeout=30) as http:
            with http.stream("POST", "/v1/completions", json={"prompt": "the dog ran to the house", "max_tokens": 100,
                                                              "stream": True}) as reply:
                assert reply.status_code == 200
                lines = reply.iter_lines()
                first = [next(lines) for _ in range(4)]  # two events, each with its blank line, then hang up
                assert first[0].startswith("data: {") and first[2].startswith("data: {")
        assert other.result() == expected
    deadline = time.monotonic() + 10
    while worker.counts["aborted"] == aborted or worker.engine.has_unfinished:
        assert time.monotonic() < deadline, "the request whose client left was never cut short"
        time.sleep(0.02)
    cut = [e for e in list(worker.log)[seen:] if e["aborted"]]
    assert len(cut) == 1 and cut[0]["completion_tokens"] < 100 and cut[0]["finish_reason"] == "abort"
    worker.engine.allocator.check_no_leak()  # the cut request gave its blocks back
    assert _ask(server.client, server.name, "text", False, "the cat sat on the mat", max_tokens=40) == expected


def test_an_engine_failure_is_a_500_and_the_next_request_is_served(server, tiny_lm):
    ids = tiny_lm.tokenizer("the cat sat", add_special_tokens=False).input_ids
    expected = _expected(tiny_lm, ids, _generate(tiny_lm, ids, 6))
    old = server.worker.engine
    server.failures.append(RuntimeError("a step that breaks"))
    with pytest.raises(openai.InternalServerError, match="the engine failed: RuntimeError: a step that breaks"):
        server.client.completions.create(model=server.name, prompt="the cat sat", max_tokens=6)
    deadline = time.monotonic() + 10
    while server.worker.engine is old:  # the worker starts again from an empty engine
        assert time.monotonic() < deadline, "the engine was not replaced after it failed"
        time.sleep(0.01)
    server.slow(server.worker.engine)
    assert server.worker.counts["engine_errors"] == 1
    assert _ask(server.client, server.name, "text", True, "the cat sat", max_tokens=6) == expected


# ----------------------------------------------------------------------------------------------- a server process
def test_background_serves_from_a_process_and_stops_it_whatever_happens(tiny_folder, tiny_lm):
    with pytest.raises(CheckError, match="max_batchh=2 is not an engine setting"):
        with serve.background(model=tiny_folder, max_batchh=2):
            pass
    ids = _chat_ids(tiny_lm.tokenizer, "the red cat")
    expected = _expected(tiny_lm, ids, _generate(tiny_lm, ids, 12))
    with pytest.raises(KeyError):  # an error inside the block still stops the server
        with serve.background(model=tiny_folder, max_batch=2) as url:
            assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
            client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=30)
            assert _ask(client, tiny_folder.name, "chat", False, "the red cat", max_tokens=12) == expected
            raise KeyError("leaving the block")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/models", timeout=5)
    with pytest.raises(RuntimeError, match="max_len=1 must be an integer >= 2"):  # the process's own one-line error
        with serve.background(model=tiny_folder, max_len=1):
            pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_server_does_not_outlive_a_killed_caller(tiny_folder):
    """A kernel or test run killed with SIGKILL runs no finally: the server must still go (PR_SET_PDEATHSIG)."""
    code = ("import sys, time\nfrom lmkit import serve\nwith serve.background(model=sys.argv[1]) as url:\n"
            "    print(url, flush=True)\n    time.sleep(120)\n")
    caller = subprocess.Popen([sys.executable, "-c", code, str(tiny_folder)], stdout=subprocess.PIPE, text=True)
    url = caller.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(url + "/models", timeout=5).status_code == 200
    caller.kill()
    caller.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/models", timeout=1)
        except httpx.TransportError:
            return  # gone
        time.sleep(0.2)
    pytest.fail(f"the server on {url} still answers 20 s after its caller was killed")
