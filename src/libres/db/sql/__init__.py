"""The library's raw SQL texts, one module per concern.

Most SQL is built with SQLAlchemy from the models. What is written out by
hand lives here, so it can be read (and its plans checked) in one place:
the spot usage of the booking engine, the batch insert of ``allocate``,
the free intervals of a calendar and the integrity checks. The migrations
keep their own frozen copies; the command line's one-line probes
(``SELECT 1``, ``SHOW server_version``) stay where they are used.
"""
