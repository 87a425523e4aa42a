"""The Async States engine core: plain Python, no Django.

It owns the task language (``engine.language``), the run-loop algorithm (``engine.runner``),
conditions and instructions as registered plugins, templates and predicates
(``engine.expressions``) and the clock. Persistence is reached only through the ``RunStore``
protocol that ``taskapp`` implements.
"""
