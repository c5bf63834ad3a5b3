"""Interactive widgets for generation: the streaming playground and a small chat (notebook 06).

Both run :func:`lmkit.generate.stream` in a background thread, so the kernel stays free to handle button clicks
while tokens arrive: Stop works in a real browser. Tests (and scripts) click Generate, call ``.wait()`` to join
the thread, then read what is shown through the accessors every lmkit widget has (:class:`Widget`):
``output_text``, ``output_html``, ``output_image`` and ``status_text``.

Modules: :mod:`~lmkit.widgets.base` (the shared shape of every lmkit widget, also used by the attention and
embedding explorers), :mod:`~lmkit.widgets.streaming` (the background thread), :mod:`~lmkit.widgets.playground_widget`,
:mod:`~lmkit.widgets.chat_widget`.
"""
from lmkit.widgets.base import Widget, html_to_text
from lmkit.widgets.chat_widget import Chat, chat
from lmkit.widgets.playground_widget import EOS_MARK, Playground, alternatives_png, playground, prob_color, tokens_html
from lmkit.widgets.streaming import StreamingWidget

__all__ = ["EOS_MARK", "Chat", "Playground", "StreamingWidget", "Widget", "alternatives_png", "chat",
           "html_to_text", "playground", "prob_color", "tokens_html"]
