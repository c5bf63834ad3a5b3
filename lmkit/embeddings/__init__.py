"""Tokens, embeddings and positions (notebook 02). One module per idea; every name is importable from here:

- :mod:`~lmkit.embeddings.token_tables`: :func:`tokens` (ids, BPE pieces, bytes, covered characters),
  :func:`token_counts`, :func:`piece_bytes`;
- :mod:`~lmkit.embeddings.matrix`: :func:`embedding_matrix`, :func:`one_hot_embed` (``onehot · W`` = lookup),
  :func:`word_ids`, :func:`word_vectors`, :func:`neighbours`;
- :mod:`~lmkit.embeddings.maps`: :func:`project_2d` (PCA or t-SNE, guarded against degenerate input),
  :func:`map_coordinates`, :func:`plot_map`, :func:`draw_map`, :func:`parse_groups`;
- :mod:`~lmkit.embeddings.explorer_widget`: :class:`MapExplorer`, the interactive word map (:func:`explorer`);
- :mod:`~lmkit.embeddings.contextual`: :func:`hidden_states_of`, :func:`hidden_states_many`, :func:`word_span`, :func:`contextual_vectors`,
  :func:`mean_hidden_state`, :func:`layer_cosine`, :func:`cosine_matrix`, :func:`sense_gap`, :func:`compare_gaps`,
  :func:`plot_layer_curves`;
- :mod:`~lmkit.embeddings.sentences`: the bundled MiniLM encoder (:func:`load_encoder`),
  :func:`sentence_embeddings`, :func:`mean_pool`, :func:`plot_similarity`;
- :mod:`~lmkit.embeddings.positions`: :func:`sinusoidal_encoding`, :func:`rope_base`, :func:`rope_frequencies`,
  :func:`rope_cos_sin`, :func:`apply_rope` (implemented once, in :mod:`lmkit.layers`) and :func:`plot_positional`.
"""
from lmkit.embeddings.contextual import (compare_gaps, contextual_vectors, cosine_matrix, hidden_states_many,
                                         hidden_states_of, layer_cosine, mean_hidden_state, plot_layer_curves,
                                         sense_gap, word_span)
from lmkit.embeddings.explorer_widget import MapExplorer, explorer
from lmkit.embeddings.maps import METHODS, draw_map, map_coordinates, parse_groups, plot_map, project_2d
from lmkit.embeddings.matrix import embedding_matrix, neighbours, one_hot_embed, word_ids, word_vectors
from lmkit.embeddings.positions import (apply_rope, plot_positional, rope_base, rope_cos_sin, rope_frequencies,
                                        sinusoidal_encoding)
from lmkit.embeddings.sentences import (ENCODER_PACKAGE, ENCODER_PIP, Encoder, encoder_dir, load_encoder, mean_pool,
                                        plot_similarity, sentence_embeddings)
from lmkit.embeddings.token_tables import piece_bytes, token_counts, tokens

__all__ = ["ENCODER_PACKAGE", "ENCODER_PIP", "Encoder", "METHODS", "MapExplorer", "apply_rope", "compare_gaps",
           "contextual_vectors", "cosine_matrix", "sense_gap",
           "draw_map", "embedding_matrix", "encoder_dir", "explorer", "hidden_states_many", "hidden_states_of", "layer_cosine",
           "load_encoder", "map_coordinates", "mean_hidden_state", "mean_pool", "neighbours", "one_hot_embed",
           "parse_groups", "piece_bytes", "plot_layer_curves", "plot_map", "plot_positional", "plot_similarity",
           "project_2d", "rope_base", "rope_cos_sin", "rope_frequencies", "sentence_embeddings", "sinusoidal_encoding",
           "token_counts", "tokens", "word_ids", "word_vectors"]
