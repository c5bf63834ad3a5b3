"""An OpenAI-compatible HTTP server over the continuous-batching :class:`lmkit.serving.Engine` (the serving notebook).

``python -m lmkit.serve [--port 8000] [--host 127.0.0.1] [--model FOLDER] [--max-batch 8] ...`` loads a model
(the bundled SmolLM2-135M-Instruct by default) and serves it with FastAPI and uvicorn (``pip install
'lmkit[serve]'``), on 127.0.0.1 unless told otherwise. Any OpenAI client talks to it:
``OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none")``.

Endpoints (request and reply formats from the OpenAI API reference, "Completions" and "Chat Completions"):

- ``GET /v1/models`` (and ``GET /v1/models/{id}``): the one served model, its id the model's name (the folder name,
  or ``"SmolLM2-135M-Instruct"``).
- ``POST /v1/completions``: ``prompt`` (a string, tokenized as it is with no chat template, or a list of token ids)
  continued for ``max_tokens`` (default 16).
- ``POST /v1/chat/completions``: ``messages`` (``role`` and ``content``) put through the tokenizer's chat template
  with ``add_generation_prompt=True``; ``max_tokens`` (or ``max_completion_tokens``) defaults to what the context
  leaves.
- Both: ``temperature`` (0, the default, is greedy; up to 2), ``seed`` (sampling is reproducible per request,
  whatever else runs beside it), ``stream`` (server-sent events, ``data: {chunk}`` each, ending with
  ``data: [DONE]``; ``stream_options={"include_usage": true}`` adds a last chunk with the usage), ``finish_reason``
  (``"stop"``: an end-of-sequence token; ``"length"``: ``max_tokens`` or the context), ``usage``
  (``prompt_tokens``, ``completion_tokens`` counting the end-of-sequence token when there is one, ``total_tokens``).
- ``GET /stats``: not OpenAI's; the engine's settings, counts, its last steps (batch occupancy) and the last
  finished requests (time to first token, duration), for the notebook's plots.

The engine (Orca's iteration-level scheduling, Yu et al. 2022; vLLM's paged KV cache, Kwon et al. 2023) is not
thread-safe: one background thread owns it, takes new requests from a queue between steps, and hands each
``(request, token)`` it produces to that request's asyncio queue; the event loop only tokenizes, detokenizes and
writes replies. Greedy replies are the tokens ``model.generate`` gives on each prompt alone
(``tests/test_serve.py``).

Errors: a bad request gets a 4xx reply with OpenAI's error body ``{"error": {"message", "type":
"invalid_request_error", "param", "code"}}``, the message one line naming the value and the fix, and the server keeps
serving: malformed JSON, a wrong type or value (400, FastAPI's validation errors included, never 422), an unknown
model (404, ``code: "model_not_found"``), ``max_tokens`` < 1, a prompt the context cannot hold (400), a parameter
this server does not implement with a value that would change the reply (``n`` > 1, ``stop``, ``logprobs``,
penalties, ``top_p`` < 1: 400). A client that disconnects has its request cut short and nobody else notices:
:meth:`lmkit.serving.Engine.abort` takes it out of the queue or the batch and gives its KV blocks back.
"""
import argparse
import asyncio
import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque

from lmkit import checks
from lmkit.logprobs import special_tokens_in
from lmkit.serving.engine import Engine

__all__ = ["APIError", "ENGINE_SETTINGS", "make_app", "background", "main"]

ENGINE_SETTINGS = ("max_batch", "block_size", "num_blocks", "max_tokens_per_step", "max_len", "prefix_caching")
"""The :class:`~lmkit.serving.Engine` settings that :func:`make_app`, :func:`background` and the command line take."""
ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_TEMPERATURE = 2.0  # OpenAI's range for temperature
LOG_SIZE = 1000  # finished requests kept for /stats
HISTORY_SIZE = 4096  # engine steps kept; older ones are dropped so a long-running server does not grow
UNSUPPORTED = {  # parameter -> the values that change nothing (accepted and ignored); any other is refused
    "n": (None, 1), "best_of": (None, 1), "echo": (None, False), "suffix": (None, ""), "stop": (None, "", []),
    "logprobs": (None, False), "top_logprobs": (None, 0), "logit_bias": (None, {}), "top_p": (None, 1),
    "presence_penalty": (None, 0), "frequency_penalty": (None, 0), "tools": (None, []), "tool_choice": (None, "none"),
    "response_format": (None, {"type": "text"}),
}


class APIError(Exception):
    """A request the server refuses: ``status`` (400, 404, ...), a one-line ``message``, the ``param`` at fault,
    an OpenAI error ``code``; :meth:`body` is OpenAI's error object."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def _checked(check, name: str, value, **kw):
    """``check(name, value, **kw)`` from :mod:`lmkit.checks`, its :class:`~lmkit.checks.CheckError` made a 400."""
    try:
        return check(name, value, **kw)
    except checks.CheckError as exc:
        raise APIError(400, str(exc), name) from None


# ----------------------------------------------------------------------------------------------- the engine thread
class _Handle:
    """One request seen from the event loop: the worker puts ``("added", id)``, ``("token", id, finish_reason)``
    or ``("error", APIError)`` on its asyncio queue."""

    def __init__(self, worker: "_Worker", prompt: list[int], max_tokens: int, temperature: float, seed: int | None):
        self.worker, self.prompt, self.max_tokens = worker, prompt, max_tokens
        self.temperature, self.seed = temperature, seed
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.rid: int | None = None
        self.done = self.aborted = False

    def put(self, item) -> None:  # from the worker thread
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    async def started(self) -> int:
        """The engine's request id, once the worker has added it; an :class:`APIError` if the engine refused it."""
        item = await self.queue.get()
        if item[0] == "error":
            self.done = True
            raise item[1]
        self.rid = item[1]
        return self.rid

    async def tokens(self):
        """``(token_id, finish_reason)`` as the engine produces them; the last one has a finish reason."""
        while not self.done:
            item = await self.queue.get()
            if item[0] == "error":
                self.done = True
                raise item[1]
            self.done = item[2] is not None
            yield item[1], item[2]

    def abort(self) -> None:
        """Stop listening (the client is gone); the worker caps the request so that it ends at its next token."""
        if not self.done and not self.aborted:
            self.aborted = True
            self.worker.inbox.put(("abort", self))


class _Worker:
    """The thread that owns the engine: it adds submitted requests between steps, steps while anything runs and
    sleeps on its inbox when nothing does."""

    def __init__(self, lm, settings: dict):
        self.lm, self.settings = lm, settings
        self.engine = Engine(lm, **settings)  # bad settings fail here, before the server starts
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.live: dict[int, _Handle] = {}
        self.aborted: set[int] = set()
        self.log: deque = deque(maxlen=LOG_SIZE)
        self.counts = {"requests": 0, "finished": 0, "aborted": 0, "refused": 0, "engine_errors": 0}
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="lmkit-serve-engine", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.running:
            self.inbox.put(("stop",))
            self.thread.join(timeout)

    def submit(self, prompt: list[int], max_tokens: int, temperature: float, seed: int | None) -> _Handle:
        """A handle for a new request (called on the event loop); the worker adds it before its next step."""
        if not self.running:
            raise APIError(503, "the engine is not running: start the app with its lifespan (uvicorn does)",
                           kind="server_error")
        handle = _Handle(self, prompt, max_tokens, temperature, seed)
        self.inbox.put(("add", handle))
        return handle

    # the rest runs on the worker thread
    def _take(self, block: bool) -> list[tuple]:
        items = []
        try:
            items.append(self.inbox.get(block=block))
            while True:
                items.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        return items

    def _add(self, handle: _Handle) -> None:
        if handle.aborted:  # the client left before its request reached the engine
            return
        try:
            rid = self.engine.add(handle.prompt, handle.max_tokens, temperature=handle.temperature, seed=handle.seed)
        except checks.CheckError as exc:
            self.counts["refused"] += 1
            handle.put(("error", APIError(400, str(exc))))
            return
        self.counts["requests"] += 1
        handle.rid = rid  # set here too: an abort queued behind this add must find it
        self.live[rid] = handle
        handle.put(("added", rid))

    def _abort(self, handle: _Handle) -> None:
        request = self.engine.requests.get(handle.rid)
        if handle.rid is None or self.live.get(handle.rid) is not handle or request is None:
            return  # never added, already finished, or failed with an engine that has since been replaced
        del self.live[handle.rid]
        self.counts["aborted"] += 1
        self.aborted.add(handle.rid)
        if self.engine.abort(handle.rid):  # out of the queue or the batch now, its KV blocks given back
            self._finish(handle.rid)

    def _finish(self, rid: int) -> None:
        request = self.engine.requests.pop(rid)  # finished requests leave, so a long-running server does not grow
        self.live.pop(rid, None)
        aborted = rid in self.aborted
        self.aborted.discard(rid)
        self.counts["finished"] += 1
        self.log.append({"id": rid, "prompt_tokens": len(request.prompt), "completion_tokens": len(request.output),
                         "finish_reason": request.finish_reason, "aborted": aborted,
                         "preempted": request.preempted, "prefix_hit_tokens": request.prefix_hit_tokens,
                         "ttft_s": None if request.first_token is None else request.first_token - request.added,
                         "duration_s": request.finished - request.added})

    def _fail_all(self, error: APIError) -> None:
        for handle in self.live.values():
            handle.put(("error", error))
        self.live.clear()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            for item in self._take(block=not self.engine.has_unfinished):
                if item[0] == "stop" or stopping:
                    stopping = True
                    if item[0] == "add":
                        self.live[-1 - len(self.live)] = item[1]  # answered by _fail_all below, never added
                elif item[0] == "add":
                    self._add(item[1])
                else:
                    self._abort(item[1])
            if stopping:
                self._fail_all(APIError(503, "the server is shutting down: send the request again later",
                                        kind="server_error"))
                return
            if not self.engine.has_unfinished:
                continue
            try:
                events = self.engine.step()
            except Exception as exc:  # noqa: BLE001 - the running requests fail, the server goes on
                self.counts["engine_errors"] += 1
                self._fail_all(APIError(500, f"the engine failed: {type(exc).__name__}: "
                                             f"{str(exc).splitlines()[0] if str(exc) else ''}", kind="server_error"))
                self.engine = Engine(self.lm, **self.settings)  # its state is unknown: start from an empty one
                continue
            for rid, token in events:
                finish = self.engine.requests[rid].finish_reason
                handle = self.live.get(rid)
                if handle is not None:
                    handle.put(("token", token, finish))
                if finish:
                    self._finish(rid)
            if len(self.engine.history) > 2 * HISTORY_SIZE:
                del self.engine.history[:-HISTORY_SIZE]

    def stats(self) -> dict:
        """Settings, counts, how many steps ran (``n_steps``), the last 200 steps and the last finished requests (read
        from the event loop: copies)."""
        engine = self.engine
        return {"settings": {"max_batch": engine.max_batch, "block_size": engine.block_size,
                             "num_blocks": engine.allocator.num_blocks,
                             "max_tokens_per_step": engine.max_tokens_per_step,
                             "max_len": engine.max_len, "prefix_caching": engine.prefix_caching},
                "counts": dict(self.counts), "live": len(self.live), "n_steps": len(engine.history),
                "steps": list(engine.history[-200:]),
                "finished": list(self.log)[-100:]}


# ----------------------------------------------------------------------------------------------- reading requests
def _read_body(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc}): send a JSON object such as "
                            '{"model": "...", "prompt": "Hello"}') from None
    if not isinstance(body, dict):
        raise APIError(400, f"the request body is a JSON {type(body).__name__}, not an object: send a JSON object "
                            'such as {"model": "...", "prompt": "Hello"}')
    return body


class _Reader:
    """Reads and checks one request's JSON body against the served model and the engine's context."""

    def __init__(self, lm, name: str, max_len: int):
        self.lm, self.tok, self.name, self.max_len = lm, lm.tokenizer, name, max_len
        self.vocab_size = int(lm.model.config.vocab_size)

    def model(self, body: dict) -> None:
        model = body.get("model")
        if model is None:
            return
        _checked(checks.text, "model", model, fix=f"pass the served model's id, {self.name!r}")
        if model != self.name:
            raise APIError(404, f"the model {model!r} does not exist: this server serves {self.name!r} "
                                "(GET /v1/models)", "model", "model_not_found")

    def common(self, body: dict) -> dict:
        """model, temperature, seed, stream, stream_options, and the parameters this server refuses."""
        self.model(body)
        for name, harmless in UNSUPPORTED.items():
            value = body.get(name)
            if not any(value == h and isinstance(value, bool) == isinstance(h, bool) for h in harmless):
                raise APIError(400, f"{name}={checks.show(value, 60)} is not supported by this server: leave it out",
                               name)
        temperature = body.get("temperature")
        temperature = 0.0 if temperature is None else _checked(
            checks.real, "temperature", temperature, low=0, high=MAX_TEMPERATURE, fix="0 for greedy, such as 0.7 to "
            "sample")
        seed = body.get("seed")
        seed = None if seed is None else _checked(checks.seed, "seed", seed)
        stream = body.get("stream")
        stream = False if stream is None else _checked(checks.boolean, "stream", stream,
                                                       fix="true for server-sent events")
        options = body.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise APIError(400, f"stream_options={checks.show(options, 60)} must be an object: pass "
                                '{"include_usage": true} or leave it out', "stream_options")
        usage = (options or {}).get("include_usage")
        usage = False if usage is None else _checked(checks.boolean, "stream_options.include_usage", usage)
        return {"temperature": temperature, "seed": seed, "stream": stream, "include_usage": usage}

    def max_tokens(self, body: dict, n_prompt: int, name: str, default: int | None, prompt_param: str) -> int:
        """The token budget ``body[name]``: an integer >= 1 that, with the prompt, fits in the context (OpenAI's and
        vLLM's rule); absent, ``default`` or what the context leaves, whichever is less."""
        room = self.max_len - n_prompt
        if room < 1:
            raise APIError(400, f"the prompt has {n_prompt} tokens and the context is {self.max_len}: shorten the "
                                f"prompt to at most {self.max_len - 1} tokens", prompt_param, "context_length_exceeded")
        value = body.get(name)
        if value is None:
            return room if default is None else min(default, room)
        value = _checked(checks.integer, name, value, low=1, fix="ask for at least one token")
        if value > room:
            raise APIError(400, f"{name}={value} with a prompt of {n_prompt} tokens is more than the context of "
                                f"{self.max_len} holds: ask for at most {room} tokens or shorten the prompt", name,
                           "context_length_exceeded")
        return value

    def prompt(self, body: dict) -> list[int]:
        """/v1/completions: a string (tokenized with no special tokens added, as ``lm.encode``), a list of one
        string, or a list of token ids."""
        prompt = body.get("prompt")
        fix = 'pass a string, such as "Once upon a time", or a list of token ids'
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if isinstance(prompt, str):
            ids = self.tok(prompt, add_special_tokens=False, verbose=False).input_ids  # the length is checked below
            if not ids:
                raise APIError(400, f"prompt={checks.show(prompt, 40)} gives no tokens: {fix}", "prompt")
            return list(ids)
        if isinstance(prompt, list) and prompt and all(checks.is_integer(t) for t in prompt):
            bad = [t for t in prompt if not 0 <= t < self.vocab_size]
            if bad:
                raise APIError(400, f"prompt holds the token id {bad[0]}, outside the vocabulary of "
                                    f"{self.vocab_size}: pass ids from this model's tokenizer", "prompt")
            return [int(t) for t in prompt]
        if isinstance(prompt, list) and len(prompt) > 1:
            raise APIError(400, f"prompt is a list of {len(prompt)} prompts: send one prompt per request", "prompt")
        raise APIError(400, f"prompt={checks.show(prompt, 60)} is not a prompt: {fix}", "prompt")

    def messages(self, body: dict) -> list[int]:
        """/v1/chat/completions: the messages through the chat template, ending with the assistant's header."""
        messages = body.get("messages")
        fix = 'pass a list such as [{"role": "user", "content": "Hello"}]'
        if not isinstance(messages, list) or not messages:
            raise APIError(400, f"messages={checks.show(messages, 60)} must be a non-empty list of messages: {fix}",
                           "messages")
        turns = []
        for i, m in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(m, dict):
                raise APIError(400, f"{where}={checks.show(m, 60)} is not an object: {fix}", "messages")
            role = _checked(checks.one_of, f"{where}.role", m.get("role"), choices=ROLES)
            content = m.get("content")
            if isinstance(content, list):  # content parts: only text ones
                if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                           for p in content):
                    raise APIError(400, f"{where}.content={checks.show(content, 60)} holds a part that is not "
                                        'text: this model reads text only, pass {"type": "text", "text": "..."}',
                                   "messages")
                content = "".join(p["text"] for p in content)
            if content is None and role == "assistant":
                content = ""
            if not isinstance(content, str):
                raise APIError(400, f"{where}.content={checks.show(content, 60)} must be a string: {fix}", "messages")
            found = special_tokens_in(self.tok, content)
            if found:
                raise APIError(400, f"{where}.content writes the special token {found[0]!r} as text, which the chat "
                                    "template would read as a control token: remove it, or write the whole "
                                    "template yourself and send it to /v1/completions", "messages")
            turns.append({"role": role, "content": content})
        if not getattr(self.tok, "chat_template", None):
            raise APIError(400, f"the tokenizer of {self.name!r} has no chat template: send the text to "
                                "/v1/completions instead", "messages")
        try:
            text = self.tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # noqa: BLE001 - the template refused these messages (roles out of order, ...)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise APIError(400, f"the chat template refused these messages ({first}): {fix}", "messages") from None
        return list(self.tok(text, add_special_tokens=False, verbose=False).input_ids)


# ----------------------------------------------------------------------------------------------- writing replies
class _Detokenizer:
    """Text deltas of a growing list of ids: decodes all of them each time (``skip_special_tokens``) and holds back
    an incomplete character (a trailing U+FFFD) until the next token completes it."""

    def __init__(self, tokenizer):
        self.tok, self.ids, self.sent = tokenizer, [], ""

    def add(self, token: int, final: bool) -> str:
        self.ids.append(token)
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        if (text.endswith("\ufffd") and not final) or not text.startswith(self.sent):
            return ""  # wait for the rest of a character, or for the text to extend what was sent
        delta, self.sent = text[len(self.sent):], text
        return delta


def _usage(n_prompt: int, n_output: int) -> dict:
    return {"prompt_tokens": n_prompt, "completion_tokens": n_output, "total_tokens": n_prompt + n_output}


def _sse(payload) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


# ----------------------------------------------------------------------------------------------- the app
def make_app(lm, **engine_settings):
    """The FastAPI app serving ``lm`` (an :class:`lmkit.LM`) through an :class:`~lmkit.serving.Engine` built with
    ``engine_settings`` (:data:`ENGINE_SETTINGS`: ``max_batch``, ``block_size``, ...).

    The engine is built here, so bad settings raise a one-line :class:`~lmkit.checks.CheckError` before anything
    is served; its thread starts and stops with the app's lifespan (uvicorn runs it; in a test, ``with
    TestClient(app)``). ``app.state.worker`` is that thread's owner (``.engine``, ``.stats()``), for tests and
    notebooks that run the app in-process. The endpoints are in the module's docstring."""
    unknown = sorted(set(engine_settings) - set(ENGINE_SETTINGS))
    if unknown:
        checks.fail(f"make_app got {unknown[0]}={checks.show(engine_settings[unknown[0]])}: pass only engine "
                    f"settings ({', '.join(ENGINE_SETTINGS)})")
    from fastapi import FastAPI, Request  # no `from __future__ import annotations` here: FastAPI reads these
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    worker = _Worker(lm, dict(engine_settings))
    name = str(lm.name)
    reader = _Reader(lm, name, worker.engine.max_len)
    created = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker.start()
        try:
            yield
        finally:
            await asyncio.to_thread(worker.stop)

    app = FastAPI(title="lmkit.serve", summary=f"An OpenAI-compatible server for {name}", lifespan=lifespan)
    app.state.worker = worker

    def error_reply(error: APIError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(APIError)
    async def on_api_error(request: Request, exc: APIError):
        return error_reply(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):  # FastAPI's 422, as OpenAI's 400
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the body"
        return error_reply(APIError(400, f"{where}={checks.show(first.get('input'), 60)}: "
                                         f"{first.get('msg', 'invalid')}; fix the request", where))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException):
        return error_reply(APIError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}; see "
                                                     "GET /v1/models, POST /v1/completions, POST /v1/chat/completions"))

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception):
        first = str(exc).splitlines()[0] if str(exc) else ""
        return error_reply(APIError(500, f"internal error: {type(exc).__name__}: {first}", kind="server_error"))

    def model_card() -> dict:
        return {"id": name, "object": "model", "created": created, "owned_by": "lmkit"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model:path}")
    async def one_model(model: str):
        reader.model({"model": model})
        return model_card()

    @app.get("/stats")
    async def stats():
        return worker.stats()

    async def generate(prompt: list[int], max_tokens: int, opts: dict, chat: bool):
        kind = "chat.completion" if chat else "text_completion"
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        handle = worker.submit(prompt, max_tokens, opts["temperature"], opts["seed"])
        try:
            await handle.started()  # an engine refusal is still a 400 here, before any byte of a stream
        except BaseException:
            handle.abort()
            raise
        head = {"id": rid, "object": kind + (".chunk" if opts["stream"] else ""), "created": int(time.time()),
                "model": name}
        if not opts["stream"]:
            finish, ids = None, []
            try:
                async for token, finish in handle.tokens():
                    ids.append(token)
            finally:
                handle.abort()  # does nothing once done; a cancelled handler (client gone) stops its request
            reply = reader.tok.decode(ids, skip_special_tokens=True)
            choice = {"index": 0, "logprobs": None, "finish_reason": finish}
            choice.update({"message": {"role": "assistant", "content": reply}} if chat else {"text": reply})
            return {**head, "choices": [choice], "usage": _usage(len(prompt), len(ids))}

        text = _Detokenizer(reader.tok)

        def chunk(delta: str | None, finish: str | None, role: bool = False) -> str:
            if chat:
                body = {"role": "assistant", "content": ""} if role else {} if delta is None else {"content": delta}
                choice = {"index": 0, "delta": body, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
            return _sse({**head, "choices": [choice], **({"usage": None} if opts["include_usage"] else {})})

        async def events():
            try:
                n = 0
                if chat:
                    yield chunk(None, None, role=True)
                async for token, finish in handle.tokens():
                    n += 1
                    delta = text.add(token, finish is not None)
                    if chat and finish is not None:  # OpenAI's chat stream ends with an empty delta and the reason
                        if delta:
                            yield chunk(delta, None)
                        yield chunk(None, finish)
                    elif delta or finish is not None:
                        yield chunk(delta, finish)
                if opts["include_usage"]:
                    yield _sse({**head, "choices": [], "usage": _usage(len(prompt), n)})
            except APIError as exc:  # the engine failed mid-stream: the status is sent, so say it in the stream
                yield _sse(exc.body())
            finally:
                handle.abort()  # the client left (cancelled) or the stream ended: nothing more to send
            yield "data: [DONE]\n\n"

        class EventStream(StreamingResponse):
            async def __call__(self, scope, receive, send):
                try:
                    await super().__call__(scope, receive, send)
                finally:  # however the response ends, a request nobody reads stops
                    handle.abort()

        return EventStream(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = _read_body(await request.body())
        opts = reader.common(body)
        prompt = reader.prompt(body)
        budget = reader.max_tokens(body, len(prompt), "max_tokens", 16, "prompt")  # OpenAI's default, 16
        return await generate(prompt, budget, opts, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = _read_body(await request.body())
        opts = reader.common(body)
        prompt = reader.messages(body)
        budget = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        return await generate(prompt, reader.max_tokens(body, len(prompt), budget, None, "messages"), opts, chat=True)

    return app


# ----------------------------------------------------------------------------------------------- a server process
def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _flags(engine_settings: dict) -> list[str]:
    """Command-line flags for engine settings, each checked here so that a typo fails before a process starts."""
    flags = []
    for key, value in engine_settings.items():
        if key not in ENGINE_SETTINGS:
            checks.fail(f"{key}={checks.show(value)} is not an engine setting: pass one of "
                        f"{', '.join(ENGINE_SETTINGS)}")
        if key == "prefix_caching":
            if not checks.boolean(key, value):
                flags.append("--no-prefix-caching")
        elif value is not None:
            flags += [f"--{key.replace('_', '-')}", str(checks.integer(key, value, low=1, fix="a positive integer"))]
    return flags


def _die_with_parent():
    """On Linux, a function for ``Popen(preexec_fn=...)`` that asks the kernel to send the child SIGTERM when its
    parent dies (``prctl(PR_SET_PDEATHSIG)``), so that a server outlives neither a killed notebook kernel nor a
    killed test run, where no ``finally`` can run; elsewhere None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    def arm():
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG

    return arm


@contextlib.contextmanager
def background(port: int | None = None, *, model=None, host: str = "127.0.0.1", timeout: float = 180.0,
               device: str = "cpu", **engine_settings):
    """Run ``python -m lmkit.serve`` in a background process for the length of a ``with`` block; yields the base URL
    for an OpenAI client (``"http://127.0.0.1:PORT/v1"``).

    ``port``: None picks a free one. ``model``: a folder or hub id, None for the bundled model; ``device``: where it
    runs. ``engine_settings``: :data:`ENGINE_SETTINGS`, checked before the process starts. Waits until
    ``GET /v1/models`` answers (at most ``timeout`` seconds; a process that exits first raises a ``RuntimeError``
    with the last lines it wrote), and on leaving the block, however it is left, stops the process (SIGTERM, then
    SIGKILL after 10 s; on Linux the process also gets SIGTERM if the caller's process dies first)::

        with serve.background(max_batch=4) as url:
            client = OpenAI(base_url=url, api_key="none")
    """
    flags = _flags(engine_settings)
    checks.text("host", host, fix="pass an address to bind, such as '127.0.0.1'")
    checks.real("timeout", timeout, low=0, low_open=True, fix="seconds to wait for the server, such as 180")
    port = _free_port(host) if port is None else checks.integer("port", port, low=1, high=65535,
                                                                    fix="pass a free port, or None to pick one")
    args = [sys.executable, "-m", "lmkit.serve", "--host", host, "--port", str(port), "--device", str(device),
            "--log-level", "warning", *flags]
    if model is not None:
        args += ["--model", os.fspath(model)]
    connect = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{connect}:{port}/v1"
    with tempfile.TemporaryFile(mode="w+b") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_die_with_parent())

        def tail() -> str:
            log.flush()
            log.seek(0)
            lines = log.read().decode(errors="replace").strip().splitlines()
            return " | ".join(lines[-3:]) or "(no output)"

        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited with code {proc.returncode} before answering: {tail()}")
                try:
                    with urllib.request.urlopen(url + "/models", timeout=2) as reply:
                        if reply.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer on {url} within {timeout:g} s: {tail()}")
                time.sleep(0.2)
            yield url
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# ----------------------------------------------------------------------------------------------- the command line
def main(argv=None) -> None:
    """``python -m lmkit.serve``: parse the arguments, load the model, serve it with uvicorn until interrupted. A bad
    argument or a model that does not load exits with status 2 and one line saying why."""
    parser = argparse.ArgumentParser(prog="python -m lmkit.serve",
                                     description="An OpenAI-compatible server over lmkit's continuous-batching "
                                                 "engine (GET /v1/models, POST /v1/completions, POST "
                                                 "/v1/chat/completions).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--model", default=None, help="a model folder or hub id (default: the bundled model)")
    parser.add_argument("--device", default="cpu", help="where the model runs (default cpu)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--max-batch", type=int, default=8, help="sequences decoded at once (default 8)")
    parser.add_argument("--block-size", type=int, default=16, help="token slots per KV block (default 16)")
    parser.add_argument("--num-blocks", type=int, default=None, help="KV blocks in the pool (default: max-batch "
                                                                        "full-length sequences)")
    parser.add_argument("--max-tokens-per-step", type=int, default=256, help="tokens per forward pass (default 256)")
    parser.add_argument("--max-len", type=int, default=1024, help="longest prompt plus reply (default 1024)")
    parser.add_argument("--no-prefix-caching", dest="prefix_caching", action="store_false",
                        help="do not share prompt blocks between requests")
    args = parser.parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        parser.exit(2, "error: lmkit.serve needs fastapi and uvicorn: pip install 'lmkit[serve]'\n")
    import lmkit

    try:
        checks.integer("port", args.port, low=0, high=65535, fix="pass a free port, such as 8000")
        lm = lmkit.load(args.model, device=args.device)
        app = make_app(lm, **{k: getattr(args, k) for k in ENGINE_SETTINGS})
    except ValueError as exc:  # CheckError, LoadError: one line naming the value and the fix
        parser.exit(2, f"error: {exc}\n")
    print(f"lmkit.serve: {lm.name} on http://{args.host}:{args.port}/v1", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
