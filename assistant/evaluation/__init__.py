"""Measurement beside the product: answer quality (`assistant eval`) and speed (`assistant bench`).

Nothing in the runtime imports this package; the CLI imports it only when ``eval`` or
``bench`` runs. One component per module, imported one way (no cycles):

- ``metrics``: the scoring rules, pure functions;
- ``datasets``: our JSONL question sets (BBC dev); ``realtimeqa``: the RealTime QA folder;
- ``askers``: our pipeline asked one question at a time, timed;
- ``baseline``: the LangChain tutorial pipeline (needs the ``eval`` extra);
- ``report``: the side-by-side table and per-question files;
- ``quality``: the ``assistant eval`` command;
- ``phases``, ``scale``, ``synth_corpus``: the benchmark's timed child processes, the scale
  simulation and its synthetic corpora; ``benchmark``: the ``assistant bench`` command.

Data lives outside the repository; every command takes its location as an argument.
"""
