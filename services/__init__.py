"""Use cases: one function per thing a user does, called by every entry point.

Pages, the command line (:mod:`services.cli`) and the benchmarks call these functions; each
takes the :class:`storage.db.Database`, the acting :class:`storage.actor.Actor` and, where a
model is needed, the classifier the caller already holds (pages pass their cached one). They
return plain dataclasses and never import Streamlit: progress is reported through optional
callbacks, so a page can drive ``st.progress`` and the command line a ``tqdm`` bar.
"""
