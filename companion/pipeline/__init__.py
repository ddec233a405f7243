"""The companion's build pipeline: what runs the notebooks and builds the book.

The notebook start-up (``session``: ``cp.setup``), the notebooks as data (``notebooks``:
profiles, parameters, cache keys), what a profile needs and its preparation (``plan``), the
generated smoke world (``smoke``), the papermill runner (``runner``: ``python -m companion``
or ``glocal reproduce``, registered by ``cli``), the book build (``book_build``) and the
Jupyter kernelspec (``kernel``).
"""
