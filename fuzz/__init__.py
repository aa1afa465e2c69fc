"""Coverage-guided fuzzing of every parser of untrusted bytes (atheris): `python -m fuzz TARGET --seconds N`.

One module per target (`fuzz.dns`, `fuzz.frames`, `fuzz.captures`, `fuzz.feeds`, `fuzz.manifests`), each
with a `TARGETS` list; `fuzz.registry` names them all, `fuzz.seeds` builds their seed corpora from the real
captures and feeds of `pcaps/` at run time, and `fuzz.oracle` holds what every harness checks: no exception
but the documented rejections of the code under test, and no single input slower than 50 ms. docs/fuzzing.md
says how to run them and how a finding becomes a regression test.
"""
