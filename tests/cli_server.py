"""A warm `python -m dlx.cli` for the tests: one process per pytest worker that has imported
numpy, pandas, matplotlib, Hydra and dlx once, and forks a child for each command.

A child is a real process of its own (its own exit code, files, cwd, environment and signal
handlers; nothing of one command reaches the next), started from a state in which dlx's modules
are imported but nothing has run, as a fresh ``python -m dlx.cli`` would be, without the second
of imports that each fresh interpreter pays (about 300 commands in the suite).

What a fork cannot imitate is anything read while importing: PYTHONPATH and other PYTHON*
variables, the BLAS/OpenMP thread variables, matplotlib's backend and configuration. The client
(tests/conftest.py) runs a command in a fresh interpreter when any of those differ from this
server's. Protocol, one JSON line each way per command: the client sends
``{"args", "cwd", "env", "stdin", "stdout", "stderr"}`` (file paths); the server answers
``{"pid"}`` as soon as the child runs and ``{"returncode"}`` (negative: killed by that signal)
when it ends.
"""

from __future__ import annotations

import json
import os
import sys

IMPORT_SENSITIVE = ("PYTHON", "OPENBLAS_", "OMP_", "MKL_", "GOTO", "MPL", "LD_", "HOME",
                    "XDG_CONFIG_HOME")


def import_sensitive(env: dict) -> dict:
    """The variables of ``env`` that take effect while modules are imported."""
    return {k: v for k, v in env.items() if k.startswith(IMPORT_SENSITIVE)}


def _warm_up() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import hydra  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import omegaconf  # noqa: F401
    import pandas  # noqa: F401

    import dlx.app  # noqa: F401 - what `dlx run` imports
    import dlx.cli  # noqa: F401
    import dlx.figures  # noqa: F401 - the figures every run draws
    import dlx.runner  # noqa: F401


def _child(request: dict) -> None:
    """Become ``python -m dlx.cli ARGS`` in the request's cwd, environment and files."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path, flags in ((0, request["stdin"], os.O_RDONLY),
                                (1, request["stdout"], os.O_WRONLY | os.O_TRUNC),
                                (2, request["stderr"], os.O_WRONLY | os.O_TRUNC)):
            new = os.open(path, flags)
            os.dup2(new, fd)
            os.close(new)
        # the server's stdin may hold read-ahead of the protocol: a fresh one, as a new process
        sys.stdin = open(0, encoding=sys.stdin.encoding, errors=sys.stdin.errors, closefd=False)
        import dlx.cli

        sys.argv = [dlx.cli.__file__, *request["args"]]
        sys.path[0] = os.getcwd()  # as `python -m` puts the working directory first
        try:
            dlx.cli.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: B036 - whatever happens, the child must not return
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def serve() -> None:
    _warm_up()
    requests, replies = sys.stdin, sys.stdout
    replies.write(json.dumps({"ready": os.getpid()}) + "\n")
    replies.flush()
    for line in requests:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        replies.write(json.dumps({"pid": pid}) + "\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        replies.write(json.dumps({"returncode": code}) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve()
